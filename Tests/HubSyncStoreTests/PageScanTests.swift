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
        #expect(found.states.count == states.count && found.rejected == 0)
        for (key, (_, state)) in found.states { #expect(CanonicalEncoding.encode(state) == states[key], "\(key)") }
        #expect(found.clock != nil)
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
