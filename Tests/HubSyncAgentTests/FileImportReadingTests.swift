import Foundation
import HubSyncAgent
import HubSyncCore
import HubSyncCrypto
import HubSyncMigration
import HubSyncStore
import HubSyncTestSupport
import Testing

/// The check reads a HubSync file in blocks of about 1 MiB parsed on two threads: over many
/// blocks it takes every line once, numbers lines as the file does (blank lines, CRLF endings,
/// a last line without a line break, lines cut at a block's edge), and names the first bad line.
@Suite struct FileImportReadingTests {
    let folder = TemporaryDirectory(prefix: "hubsync-reading")

    /// About 7 MB of lines of about 1 KB, each kind of line ending among them; returns the file
    /// and the number of records.
    func writeFile(badLine: Int? = nil, lines count: Int = 7_000) throws -> (path: String, records: Int) {
        var text = ""
        var records = 0
        var rng = SplitMix64(seed: 7)
        for line in 1...count {
            let ending = line == count ? "" : (line % 7 == 0 ? "\r\n" : "\n")
            if line == badLine {
                text += "{\"collection\": \"memories\", \"id\": \"m\(line)\", \"fields\": {\"text\": \"cut" + ending
            } else if line % 101 == 0 {
                text += (line % 2 == 0 ? "  \t " : "") + ending
            } else {
                // Lengths that vary, so lines fall across the blocks' edges at every offset.
                let filler = String(repeating: "x", count: Int.random(in: 700...1300, using: &rng))
                text += "{\"collection\": \"memories\", \"id\": \"m\(line)\", \"fields\": {\"text\": \"\(filler)\"}}" + ending
                records += 1
            }
        }
        let path = folder.path + "/records-\(badLine ?? 0).jsonl"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return (path, records)
    }

    func store() throws -> Store {
        try Store(path: folder.path + "/store-\(UInt64.random(in: 0...UInt64.max)).sqlite", device: Identity(signingKey: .generate()).deviceID)
    }

    @Test func everyLineOfAManyBlockFileIsCheckedOnce() throws {
        let (path, records) = try writeFile()
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int > 6 << 20)
        let job = FileImport(path: path, displayName: "records.jsonl", format: .hubsync, persona: nil)
        let store = try store()
        let plan = try job.check(store: store)
        #expect(plan.created == records)
        #expect(plan.records == records)
        let outcome = try job.apply(batch: 500, store: store, write: { writes in
            try store.apply(writes).map { $0.sequence != nil }
        }, progress: { _ in })
        #expect(outcome.written == records)
        #expect(try store.get(RecordKey(collection: "memories", id: "m\(7_000)")) != nil)
    }

    @Test(arguments: [2, 1_234, 3_333, 6_999, 7_000])
    func theFirstBadLineIsNamedByItsNumber(bad: Int) throws {
        let (path, _) = try writeFile(badLine: bad)
        let job = FileImport(path: path, displayName: "records.jsonl", format: .hubsync, persona: nil)
        let store = try store()
        let error = try #require(throws: MigrationError.self) { try job.check(store: store) }
        #expect(error.line == bad, "\(error)")
        #expect((try store.counts()["memories"] ?? 0) == 0)
    }

    /// A file an editor began with UTF-8's byte-order mark is read as without it, by the check
    /// and the writing alike; anywhere after the first line's start, those bytes are an error.
    @Test func aByteOrderMarkAtTheStartIsReadAsNothing() throws {
        let line = #"{"collection": "memories", "id": "b1", "fields": {"text": "tea"}}"#
        let path = folder.path + "/bom.jsonl"
        try Data([0xEF, 0xBB, 0xBF] + Array((line + "\n" + line.replacingOccurrences(of: "b1", with: "b2") + "\n").utf8))
            .write(to: URL(fileURLWithPath: path))
        let job = FileImport(path: path, displayName: "bom.jsonl", format: .hubsync, persona: nil)
        let store = try store()
        #expect(try job.check(store: store).records == 2)
        let outcome = try job.apply(batch: 10, store: store, write: { try store.apply($0).map { $0.sequence != nil } }, progress: { _ in })
        #expect(outcome.written == 2)

        let second = folder.path + "/bom-second.jsonl"
        try Data(Array((line + "\n").utf8) + [0xEF, 0xBB, 0xBF] + Array(line.utf8)).write(to: URL(fileURLWithPath: second))
        let error = try #require(throws: MigrationError.self) {
            try FileImport(path: second, displayName: "bom-second.jsonl", format: .hubsync, persona: nil).check(store: store)
        }
        #expect(error.line == 2, "\(error)")
    }

    /// A file of JSON Lines whose lines end in CR alone is one line to the reader: the refusal
    /// says so and how to mend it, and a file with CRLF endings is read as lines.
    @Test func linesEndingInACarriageReturnAloneAreNamed() throws {
        let lines = ["b1", "b2"].map { #"{"collection": "memories", "id": "\#($0)", "fields": {"text": "tea"}}"# }
        let store = try store()
        let crOnly = folder.path + "/cr.jsonl"
        try Data((lines.joined(separator: "\r") + "\r").utf8).write(to: URL(fileURLWithPath: crOnly))
        // Found by content, the file is one JSON value and then more; read as HubSync's lines, one
        // line holding two records.
        let found = try #require(throws: MigrationError.self) { try Migration.detect(path: crOnly, displayName: "cr.jsonl") }
        let read = try #require(throws: MigrationError.self) {
            try FileImport(path: crOnly, displayName: "cr.jsonl", format: .hubsync, persona: nil).check(store: store)
        }
        for error in [found, read] {
            #expect(error.message.contains("old Mac line endings"), "\(error)")
            #expect(error.message.contains("tr '\\r' '\\n'"), "\(error)")
        }
        let job = FileImport(path: crOnly, displayName: "cr.jsonl", format: .hubsync, persona: nil)
        #expect(throws: MigrationError.self) {
            try job.apply(batch: 10, store: store, write: { try store.apply($0).map { $0.sequence != nil } }, progress: { _ in })
        }
        #expect(try store.list("memories").isEmpty)

        let crlf = folder.path + "/crlf.jsonl"
        try Data((lines.joined(separator: "\r\n") + "\r\n").utf8).write(to: URL(fileURLWithPath: crlf))
        #expect(try FileImport(path: crlf, displayName: "crlf.jsonl", format: .hubsync, persona: nil).check(store: store).records == 2)
    }

    /// A plain record line on a deleted record brings it back with the fields it kept, as `put`
    /// does: the check does not ask it for the fields a new record needs.
    @Test func aLineOnADeletedRecordBringsItBack() throws {
        let store = try store()
        try store.apply(.put(RecordKey(collection: "memories", id: "d1"), ["text": "kept", "extra": "e0"]))
        try store.apply(.delete(RecordKey(collection: "memories", id: "d1")))
        let path = folder.path + "/back.jsonl"
        try Data(#"{"collection": "memories", "id": "d1", "fields": {"extra": null}}"#.utf8).write(to: URL(fileURLWithPath: path))
        let job = FileImport(path: path, displayName: "back.jsonl", format: .hubsync, persona: nil)
        #expect(try job.check(store: store).records == 1)
        _ = try job.apply(batch: 10, store: store, write: { try store.apply($0).map { $0.sequence != nil } }, progress: { _ in })
        let back = try #require(try store.get(RecordKey(collection: "memories", id: "d1")))
        #expect(back.isAlive && back.visibleFields == ["text": "kept"])
    }
}
