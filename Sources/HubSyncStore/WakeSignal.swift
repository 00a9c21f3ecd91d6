import HubSyncBase
import Synchronization

/// A wake-up for one waiting task: any number of producers ``signal()``, one consumer
/// ``wait()``s. Signals coalesce (ten signals before a wait wake it once) and are never lost
/// (a signal with nobody waiting is kept for the next wait). A cancelled wait leaves the signal
/// usable, unlike a cancelled `for await` over an `AsyncStream`, which ends the stream.
///
/// The agent's wake-ups are events carried by these: a consumer loops
/// `while await signal.wait() { … look at what changed … }`.
public final class WakeSignal: Sendable {
    /// How a wait ended.
    public enum Outcome: Sendable, Equatable {
        /// ``signal()`` was called (before or during the wait).
        case signalled
        /// The deadline passed with no signal.
        case timedOut
        /// ``finish()`` was called, or the waiting task was cancelled.
        case ended
    }

    struct State {
        var pending: Bool
        var finished = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Bool, Never>)?
        var nextID: UInt64 = 0
    }

    let state: Mutex<State>

    /// A signal; `pending: true` makes the first wait return at once (work to do at start).
    public init(pending: Bool = false) { state = Mutex(State(pending: pending)) }

    /// Wakes the waiting task, or the next one to wait.
    public func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            guard !s.finished else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                return w.continuation
            }
            s.pending = true
            return nil
        }
        waiter?.resume(returning: true)
    }

    /// Ends the signal: the current and every later wait return ``Outcome/ended``.
    public func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter?.continuation
        }
        waiter?.resume(returning: false)
    }

    /// Whether ``finish()`` was called.
    public var isFinished: Bool { state.withLock { $0.finished } }

    /// Whether a signal is kept for the next wait.
    public var isPending: Bool { state.withLock { $0.pending } }

    /// Waits for a signal; false once finished or when the task is cancelled.
    public func wait() async -> Bool {
        let id = state.withLock { s in s.nextID += 1; return s.nextID }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate = state.withLock { s -> Bool? in
                    if s.finished || Task.isCancelled { return false }
                    if s.pending {
                        s.pending = false
                        return true
                    }
                    precondition(s.waiter == nil, "a WakeSignal has one consumer")
                    s.waiter = (id, continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
                guard let w = s.waiter, w.id == id else { return nil }
                s.waiter = nil
                return w.continuation
            }
            waiter?.resume(returning: false)
        }
    }

    /// Waits for a signal until `deadline` (nil: no deadline). Time is a reason to wake only
    /// where a caller has one (a backoff, an expiry); a signal that races the deadline is kept.
    public func wait(until deadline: ContinuousClock.Instant?) async -> Outcome {
        guard let deadline else { return await wait() ? .signalled : .ended }
        if deadline <= .now {
            return state.withLock { s in
                if s.finished { return .ended }
                if s.pending { s.pending = false; return .signalled }
                return .timedOut
            }
        }
        return await withTaskGroup(of: Outcome.self) { group in
            group.addTask { await self.wait() ? .signalled : .ended }
            group.addTask {
                // Cancelled when the signal came first.
                do { try await Deadlines.sleep(until: deadline) } catch { return .ended }
                return .timedOut
            }
            let first = await group.next()!
            group.cancelAll()
            // The other child may have finished too (a signal resumed the wait just as the
            // timer fired): a signal is never dropped.
            var outcomes = [first]
            for await other in group { outcomes.append(other) }
            if outcomes.contains(.signalled) { return .signalled }
            if Task.isCancelled || isFinished { return .ended }
            return outcomes.contains(.timedOut) ? .timedOut : .ended
        }
    }
}

/// Signals every subscribed ``WakeSignal`` at once: one producer side, many consumers, each
/// with its own coalescing signal (a session's end, an invite's change, trust changing).
public final class WakeBroadcast: Sendable {
    let subscribers = Mutex<[ObjectIdentifier: WakeSignal]>([:])

    public init() {}

    /// A new signal that every later ``signal()`` wakes; `pending: true` wakes its first wait.
    public func subscribe(pending: Bool = false) -> WakeSignal {
        let s = WakeSignal(pending: pending)
        subscribers.withLock { $0[ObjectIdentifier(s)] = s }
        return s
    }

    /// Adds a signal another broadcast may wake too (one consumer waiting on several sources).
    public func subscribe(_ signal: WakeSignal) {
        subscribers.withLock { $0[ObjectIdentifier(signal)] = signal }
    }

    /// Stops signalling `signal`, and leaves it as it is (for one subscribed to several).
    public func remove(_ signal: WakeSignal) {
        _ = subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(signal)) }
    }

    /// Stops signalling `signal` and finishes it.
    public func unsubscribe(_ signal: WakeSignal) {
        _ = subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(signal)) }
        signal.finish()
    }

    /// Wakes every subscriber.
    public func signal() {
        for s in subscribers.withLock({ Array($0.values) }) { s.signal() }
    }
}
