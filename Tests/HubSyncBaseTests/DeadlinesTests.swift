import Foundation
import HubSyncBase
import HubSyncTestSupport
import Testing

@Suite struct DeadlinesTests {
    @Test func aSleepEndsAtItsDeadlineNotBefore() async throws {
        let start = ContinuousClock.now
        try await Deadlines.sleep(for: .milliseconds(80))
        #expect(ContinuousClock.now - start >= .milliseconds(80))
    }

    @Test func sleepsEndInDeadlineOrderWhateverOrderTheyStartIn() async throws {
        let order = OrderBox()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for millis in [120, 40, 80, 0] {
                group.addTask {
                    try await Deadlines.sleep(for: .milliseconds(millis))
                    order.append(millis)
                }
            }
            try await group.waitForAll()
        }
        #expect(order.values == [0, 40, 80, 120])
    }

    /// The bound is half the sleep, not a moment: on a 2-core machine the other suites of the
    /// run can hold both of the pool's threads for minutes, and the cancelled task only ends once
    /// one is free (it took 98–132 s in three full unit runs on a slower machine, and under a
    /// second alone). A sleep that ignored its cancellation would take the whole 600 s.
    @Test func cancellingALongSleepEndsItAtOnce() async throws {
        let start = ContinuousClock.now
        let task = Task { try await Deadlines.sleep(for: .seconds(600)) }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - start < .seconds(300))
    }
}

/// Values appended from several tasks.
final class OrderBox: Sendable {
    private let lock = NSLock()
    nonisolated(unsafe) private var stored: [Int] = []
    func append(_ value: Int) { lock.withLock { stored.append(value) } }
    var values: [Int] { lock.withLock { stored } }
}

@Suite struct WriterLockTests {
    let dir = TemporaryDirectory()

    @Test func oneHolderAtATimeNamedByTheKernel() async throws {
        let directory = DataDirectory(path: dir.path)
        let first = try #require(try WriterLock.acquire(in: directory, role: "test"))
        #expect(try WriterLock.acquire(in: directory, role: "second") == nil)
        let holder = try #require(WriterLock.holder(in: directory))
        #expect(holder.pid == getpid())
        #expect(holder.role == "test")
        first.release()
        // Released: once no child that another test is spawning right now still holds a copy
        // of this process's descriptors (a child has them from fork until exec).
        try await waitUntil("the released lock is free", timeout: 20) { WriterLock.holder(in: directory) == nil }
        #expect(try WriterLock.acquire(in: directory, role: "again") != nil)
    }
}
