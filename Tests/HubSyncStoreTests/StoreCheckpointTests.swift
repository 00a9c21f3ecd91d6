import Foundation
import HubSyncCore
@testable import HubSyncStore
import Testing

/// The store copies its WAL back into the database file on a thread of its own (Checkpointer):
/// these write a few MiB and watch the store's thread copy pages into the file with no other
/// write or close, and check that a writer whose thread is behind checkpoints on its own.
@Suite struct StoreCheckpointTests {
    let dir = TemporaryDirectory()

    func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    /// `count` memories of about 1 KB, written `batch` to a transaction.
    func fill(_ store: Store, count: Int, batch: Int = 500) throws {
        let text = String(repeating: "a quiet morning by the river ", count: 35)
        for start in stride(from: 0, to: count, by: batch) {
            try store.apply((start..<min(start + batch, count)).map { .put(key("memories", "m\($0)"), ["text": .string("\($0) \(text)")]) })
        }
    }

    @Test func theStoresThreadCheckpointsWhatCommitsLeaveInTheWAL() throws {
        let store = try makeStore(dir)
        let path = store.path
        let before = fileSize(path)
        try fill(store, count: 6000)
        // About 7 MiB went to the WAL; the thread copies what was there past 1,000 pages into the
        // file without a further write (the rest waits for the next 1,000, as with SQLite's own).
        let deadline = Date().addingTimeInterval(30)
        while store.checkpointer!.checkpoints == 0, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(store.checkpointer!.checkpoints > 0, "the store's thread copied pages into the file")
        #expect(fileSize(path) > before)
        #expect(try store.list("memories").count == 6000)
    }

    @Test func aWriterWhoseThreadIsBehindCheckpointsItself() throws {
        let store = try makeStore(dir)
        // The thread is never woken; past 1.2 MB each commit checkpoints on the writer.
        store.checkpointer!.thresholds = (soon: .max, now: 300 * 4096)
        let path = store.path
        try fill(store, count: 6000)
        // Right after the writes, with no thread: the file has the pages, and the WAL (about
        // 7 MiB written) restarted after each checkpoint instead of growing.
        #expect(store.checkpointer!.checkpoints == 0)
        #expect(fileSize(path) >= 5 << 20)
        #expect(fileSize(path + "-wal") < 3 << 20)
        #expect(try store.list("memories").count == 6000)
    }

    /// Released while its thread is running, a store waits for the thread's connection to close,
    /// so its writer's close is the last one and copies the whole WAL into the file.
    @Test func aStoreReleasedWhileItsThreadRunsLeavesEveryPageInTheFile() throws {
        let path: String
        let checkpointer: Checkpointer
        do {
            let store = try makeStore(dir)
            path = store.path
            checkpointer = try #require(store.checkpointer)
            try fill(store, count: 3000)
            checkpointer.wake()
            #expect(checkpointer.isRunning)
        }
        #expect(!checkpointer.isRunning, "the release waited for the thread to close its connection")
        #expect(fileSize(path + "-wal") == 0, "the WAL was copied into the file and removed on the last close")
        let again = try makeStore(dir)
        #expect(try again.list("memories").count == 3000)
    }
}
