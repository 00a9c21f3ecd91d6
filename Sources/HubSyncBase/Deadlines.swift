#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Sleeps that wake the process once, at their deadline.
///
/// On Linux, while any `Task.sleep` is pending, libdispatch wakes its manager thread every second
/// until the sleep is due, so an idle agent whose repair timer sleeps for ten minutes would wake
/// 60 times a minute for nothing. These sleeps wait on one thread of their own, blocked in
/// `poll(2)` until the earliest deadline (or until a new, earlier one arrives).
public enum Deadlines {
    /// Suspends until `deadline`; throws `CancellationError` when the task is cancelled first.
    public static func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await DeadlineThread.shared.sleep(until: deadline)
    }

    /// Suspends for `duration`; throws `CancellationError` when the task is cancelled first.
    public static func sleep(for duration: Duration) async throws {
        try await sleep(until: .now + duration)
    }
}

/// The thread behind ``Deadlines``: the waiting sleeps, and a pipe that wakes it when one is
/// added.
final class DeadlineThread: Sendable {
    static let shared = DeadlineThread()

    private struct Sleeper {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var sleepers: [UInt64: Sleeper] = [:]
        /// Sleeps cancelled before they were registered.
        var cancelledEarly: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    /// The pipe's read and write ends.
    private let wakeRead: Int32, wakeWrite: Int32

    private init() {
        var ends: [Int32] = [-1, -1]
        _ = pipe(&ends)
        for fd in ends {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        (wakeRead, wakeWrite) = (ends[0], ends[1])
        let thread = Thread { [self] in run() }
        thread.name = "hubsync-deadlines"
        thread.stackSize = 256 << 10
        thread.start()
    }

    func sleep(until deadline: ContinuousClock.Instant) async throws {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { s -> Bool in
                    if s.cancelledEarly.remove(id) != nil { return true }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) } else { wake() }
            }
        } onCancel: {
            let sleeper = state.withLock { s -> Sleeper? in
                guard let sleeper = s.sleepers.removeValue(forKey: id) else {
                    s.cancelledEarly.insert(id)
                    return nil
                }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1) // a full pipe already holds a wake-up
    }

    private func run() {
        while true {
            let now = ContinuousClock.now
            let (due, earliest) = state.withLock { s -> ([Sleeper], ContinuousClock.Instant?) in
                let dueIDs = s.sleepers.filter { $0.value.deadline <= now }.map(\.key)
                let due = dueIDs.compactMap { s.sleepers.removeValue(forKey: $0) }
                return (due, s.sleepers.values.map(\.deadline).min())
            }
            for sleeper in due { sleeper.continuation.resume() }
            var timeout: Int32 = -1
            if let earliest {
                let left = earliest - ContinuousClock.now
                let millis = left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
                timeout = Int32(clamping: max(0, millis))
            }
            var descriptor = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            if poll(&descriptor, 1, timeout) > 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                while read(wakeRead, &drain, drain.count) > 0 {}
            }
        }
    }
}
