import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// The live-record counts a status shows are kept by the write path in the store file (table
/// `record_counts`; a trigger takes off rows deleted from outside), not counted by a scan: these
/// check them against the records themselves through every kind of write, on a store made before
/// the table existed, and after writes from outside.
@Suite struct StoreCountTests {
    let dir = TemporaryDirectory()

    /// Live records by collection, from the records themselves.
    func scanned(_ store: Store) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for c in ["memories", "personas"] {
            let n = try store.list(c).filter(\.isAlive).count
            if n > 0 { out[c] = n }
        }
        return out
    }

    @Test func countsFollowPutsDeletesUndeletesMergesAndRefusals() throws {
        let a = try makeStore(dir, name: "a", device: 1)
        let b = try makeStore(dir, name: "b", device: 2)
        try a.apply((0..<40).map { .put(key("memories", "m\($0)"), ["text": .string("note \($0)")]) })
        try a.apply(.put(key("personas", "p1"), ["name": "Ada"]))
        #expect(try a.counts() == ["memories": 40, "personas": 1])

        // Deletes count down, a second delete of the same record does not, undeletes count up.
        try a.apply((0..<10).map { .delete(key("memories", "m\($0)")) })
        try a.apply(.delete(key("memories", "m0")))
        try a.apply(.undelete(key("memories", "m1")))
        #expect(try a.counts() == ["memories": 31, "personas": 1])

        // A refused batch leaves the counts as they were.
        #expect(throws: StoreError.self) {
            try a.apply([.put(key("memories", "fresh"), ["text": "lost"]), .put(key("memories", "bad"), ["mood": "no text"])])
        }
        #expect(try a.counts() == ["memories": 31, "personas": 1])

        // Merges: B takes every state (the deleted ones too), then A's later deletes and B's own edits.
        try b.merge(try a.list("memories", includeDeleted: true) + a.list("personas", includeDeleted: true))
        #expect(try b.counts() == ["memories": 31, "personas": 1])
        try a.apply(.delete(key("personas", "p1")))
        try b.apply(.put(key("memories", "m5"), ["text": "back on B"]))
        try b.merge(try a.list("personas", includeDeleted: true))
        #expect(try b.counts() == ["memories": 32])
        for store in [a, b] { #expect(try store.counts() == scanned(store)) }
    }

    /// Runs Python's sqlite3 (not HubSync) on the store at `path`.
    func sqlite(_ path: String, _ script: String) throws {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\ndb.executescript(sys.argv[2])\ndb.commit()\ndb.close()",
                            path, script]
        try python.run()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0)
    }

    @Test func aStoreMadeBeforeTheCountsTableGetsThemOnOpening() throws {
        let path = "\(dir.path)/old.sqlite"
        do {
            let store = try Store(path: path, device: device(1))
            try store.apply((0..<25).map { .put(key("memories", "m\($0)"), ["text": .string("note \($0)")]) })
            try store.apply((0..<5).map { .delete(key("memories", "m\($0)")) })
        }
        // The store as the release before the counts table left it.
        try sqlite(path, "DROP TRIGGER records_count_delete; DROP TABLE record_counts; DELETE FROM meta WHERE key = 'counts_seq'; "
            + "DELETE FROM grdb_migrations WHERE identifier = 'v5-counts';")
        let store = try Store(path: path, device: device(1))
        #expect(try store.counts() == ["memories": 20])
        try store.apply(.put(key("memories", "new"), ["text": "after the upgrade"]))
        #expect(try store.counts() == ["memories": 21])
    }

    @Test func rowsWrittenOrDeletedFromOutsideAreCountedAgain() throws {
        let path = "\(dir.path)/shell.sqlite"
        do {
            let store = try Store(path: path, device: device(1))
            try store.apply((0..<30).map { .put(key("memories", "m\($0)"), ["text": .string("note \($0)")]) })
            #expect(try store.counts() == ["memories": 30])
        }
        // Deleted rows are taken off at once (a trigger); a row marked deleted by a writer that
        // keeps no counts (an older HubSync, here the shell) is counted again on the next opening.
        try sqlite(path, "DELETE FROM records WHERE id IN ('m0', 'm1', 'm2');")
        try sqlite(path, "UPDATE records SET alive = 0, seq = (SELECT max(seq) + 1 FROM records) WHERE id = 'm3';")
        let store = try Store(path: path, device: device(1))
        #expect(try store.counts() == ["memories": 26])
        #expect(try store.counts() == scanned(store))
    }
}
