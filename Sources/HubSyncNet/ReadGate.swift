import Synchronization

/// Lets a session's reader read while the state machine has room for more inbound messages:
/// closed at ``SyncSessionStateMachine/Action/pauseReading``, opened at `resumeReading`.
final class ReadGate: Sendable {
    private struct State {
        var open = true
        var finished = false
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let state = Mutex(State())

    /// Returns true at once while open, else once opened; false once finished.
    func waitUntilOpen() async -> Bool {
        await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            let now: Bool? = state.withLock { s in
                if s.finished { return false }
                if s.open { return true }
                s.waiter = c
                return nil
            }
            if let now { c.resume(returning: now) }
        }
    }

    /// Stops the reader before its next read.
    func close() { state.withLock { $0.open = false } }

    /// Lets the reader go on.
    func open() { resume { $0.open = true } }

    /// Ends the gate: the reader's wait returns false, now and later.
    func finish() { resume { $0.finished = true } }

    private func resume(_ change: (inout State) -> Void) {
        let (waiter, value): (CheckedContinuation<Bool, Never>?, Bool) = state.withLock { s in
            change(&s)
            let w = s.waiter
            s.waiter = nil
            return (w, !s.finished)
        }
        waiter?.resume(returning: value)
    }
}
