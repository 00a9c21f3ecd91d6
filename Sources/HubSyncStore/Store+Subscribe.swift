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
        for t in targets {
            for e in events where t.include?(e) ?? true { t.continuation.yield(e) }
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
    /// A subscription to the changes `include` accepts (all by default), buffering the newest
    /// `buffering` for a slow reader: a reader that only needs to be woken keeps 1, so a bulk
    /// merge does not pile up thousands of records in memory for it.
    public func subscription(buffering: Int = 10_000,
                             where include: (@Sendable (ChangeEvent) -> Bool)? = nil) -> ChangeSubscription {
        let (stream, continuation) = AsyncStream<ChangeEvent>.makeStream(bufferingPolicy: .bufferingNewest(buffering))
        let id = nextSubscriber.withLock { n in n += 1; return n }
        subscribers.withLock { $0[id] = (continuation, include) }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return ChangeSubscription(events: stream, continuation: continuation)
    }
}
