public import HubSyncCore

extension Store {
    /// Every change applied from now on, local or remote, in sequence order.
    ///
    /// The stream buffers the newest 10,000 events for a slow reader; a reader that falls
    /// further behind should catch up with ``changes(after:limit:)``.
    public func subscribe() -> AsyncStream<ChangeEvent> {
        subscription().events
    }

    func publish(_ events: [ChangeEvent]) {
        guard !events.isEmpty else { return }
        let targets = subscribers.withLock { Array($0.values) }
        for c in targets {
            for e in events { c.yield(e) }
        }
    }
}

/// A subscription that can be ended from outside its reader (shutdown, a closed client).
public struct ChangeSubscription: Sendable {
    public let events: AsyncStream<ChangeEvent>
    let continuation: AsyncStream<ChangeEvent>.Continuation

    /// Ends the stream: the reader's loop finishes after the events already delivered.
    public func cancel() { continuation.finish() }
}

extension Store {
    public func subscription() -> ChangeSubscription {
        let (stream, continuation) = AsyncStream<ChangeEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = nextSubscriber.withLock { n in n += 1; return n }
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return ChangeSubscription(events: stream, continuation: continuation)
    }
}
