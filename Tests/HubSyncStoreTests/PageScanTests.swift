import Foundation
import HubSyncCore
@testable import HubSyncStore
import Testing

/// ``PageScan`` reads records from a store file's pages without SQLite: it finds what is there,
/// and whatever bytes a damaged file holds, it never makes up or changes a record.
@Suite struct PageScanTests {
    let dir = TemporaryDirectory()

    /// A store of 600 records (some on overflow pages), closed, its WAL folded into the file.
    func storeFile() throws -> (path: String, states: [RecordKey: [UInt8]]) {
        var states: [RecordKey: [UInt8]] = [:]
        do {
            let store = try makeStore(dir)
            for start in stride(from: 0, to: 600, by: 100) {
                try store.apply((start..<start + 100).map { i in
                    .put(key("memories", String(format: "m%04d", i)),
                         ["text": .string(String(repeating: "memory \(i) ", count: i % 50 == 0 ? 900 : 12))])
                })
            }
            try store.forEachRecord { states[$0.key] = CanonicalEncoding.encode($0) }
        }
        return (dir.path + "/a.sqlite", states)
    }

    @Test func anUndamagedFileGivesEveryRecordAndTheClock() throws {
        let (path, states) = try storeFile()
        let found = PageScan.scan(path: path)
        #expect(found.states.count == states.count && found.rejected.isEmpty)
        for (key, (_, state)) in found.states { #expect(CanonicalEncoding.encode(state) == states[key], "\(key)") }
        #expect(found.clock != nil)
    }

    /// Records changed after the last checkpoint are read as the WAL last commits them, also
    /// with the file's root pages lost (a helper saw a repair bring back an older text and undo a
    /// delete, the WAL beside the file unread); a WAL whose salts do not match gives nothing.
    @Test func theWALsCommittedFramesGiveTheNewestStates() throws {
        let (path, _) = try storeFile()
        let store = try makeStore(dir)
        try store.apply((0..<10).map { .put(key("memories", String(format: "m%04d", $0)), ["text": .string("changed \($0)")]) })
        try store.apply(.delete(key("memories", "m0020")))
        var current: [RecordKey: [UInt8]] = [:]
        try store.forEachRecord { current[$0.key] = CanonicalEncoding.encode($0) }
        let copy = dir.path + "/copy.sqlite"
        for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + suffix) }
        #expect((try FileManager.default.attributesOfItem(atPath: copy + "-wal")[.size] as? Int ?? 0) > 0)
        // Pages 1 to 8 (the schema and the tables' roots) zeroed in the file.
        let handle = try #require(FileHandle(forUpdatingAtPath: copy))
        try handle.write(contentsOf: Data(count: 8 * 4096))
        try handle.close()
        let found = PageScan.scan(path: copy)
        for id in (0..<10).map({ String(format: "m%04d", $0) }) + ["m0020"] {
            let k = key("memories", id)
            #expect(found.states[k].map { CanonicalEncoding.encode($0.state) } == current[k], "\(id)")
        }
        // The same frames under other salts are an earlier WAL's: not read.
        var wal = [UInt8](try #require(FileManager.default.contents(atPath: copy + "-wal")))
        wal[16] ^= 0xFF
        try Data(wal).write(to: URL(fileURLWithPath: copy + "-wal"))
        #expect(PageScan.scan(path: copy).states[key("memories", "m0000")].map { CanonicalEncoding.encode($0.state) } != current[key("memories", "m0000")])
    }

    /// Bytes overwritten at random places, 40 runs of 60 each: every record found is one the
    /// store held, byte for byte (a flipped state fails its digest; a flipped length or header
    /// makes no record), and nothing traps.
    @Test func aDamagedFileGivesOnlyRecordsItHeld() throws {
        let (path, states) = try storeFile()
        let original = try #require(FileManager.default.contents(atPath: path))
        var random = SeededRandom(seed: 15)
        for _ in 0..<40 {
            var bytes = [UInt8](original)
            for _ in 0..<60 {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                let run = Int.random(in: 1...64, using: &random)
                for i in at..<min(at + run, bytes.count) { bytes[i] = UInt8.random(in: 0...255, using: &random) }
            }
            let damaged = dir.path + "/damaged.sqlite"
            try Data(bytes).write(to: URL(fileURLWithPath: damaged))
            let found = PageScan.scan(path: damaged)
            #expect(found.states.count > states.count / 2)
            for (key, (_, state)) in found.states { #expect(CanonicalEncoding.encode(state) == states[key], "\(key)") }
        }
        // Garbage and a file shorter than a page give nothing.
        let garbage = dir.path + "/garbage.sqlite"
        try Data((0..<200_000).map { _ in UInt8.random(in: 0...255, using: &random) }).write(to: URL(fileURLWithPath: garbage))
        #expect(PageScan.scan(path: garbage).states.isEmpty)
        try Data(original.prefix(1_000)).write(to: URL(fileURLWithPath: garbage))
        #expect(PageScan.scan(path: garbage).states.isEmpty)
    }
}
