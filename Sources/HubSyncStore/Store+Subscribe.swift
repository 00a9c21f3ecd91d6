import HubSyncCrypto
public import HubSyncCore

/// Change subscriptions carry wake-ups, not events: a subscriber that falls behind loses
/// nothing, because it reads the change log from its own last sequence (``ChangeFeed``). Memory
/// stays bounded however far behind it is.
extension Store {
    /// Every change committed from now on, local or remote, in sequence order, read from the log
    /// (see ``ChangeFeed``).
    public func subscribe() throws(StoreError) -> ChangeFeed {
        try changeFeed(after: nil)
    }

    /// The changes after `sequence` (nil: after the last one committed now), in sequence order,
    /// read from the log in pages of `pageSize` as the reader asks for them.
    public func changeFeed(after sequence: Int64?, pageSize: Int = 500) throws(StoreError) -> ChangeFeed {
        // Subscribed before the start is read, so nothing committed in between is missed.
        let subscription = changeSignal()
        let start: Int64
        if let sequence { start = sequence } else { start = try lastSequence() }
        return ChangeFeed(store: self, subscription: subscription, after: start, pageSize: pageSize)
    }

    /// A wake-up for every committed transaction with a change that `include` accepts (all by
    /// default); the subscriber then reads what it needs (the log after its cursor, a collection).
    public func changeSignal(where include: (@Sendable (ChangeEvent) -> Bool)? = nil) -> ChangeSubscription {
        let signal = WakeSignal()
        let id = nextSubscriber.withLock { n in n += 1; return n }
        subscribers.withLock { $0[id] = (signal, include) }
        return ChangeSubscription(store: self, id: id, signal: signal)
    }

    /// Change subscriptions open now (``changeSignal(where:)``, ``subscribe()``).
    public var subscriptionCount: Int { subscribers.withLock { $0.count } }

    func publish(_ events: [ChangeEvent]) {
        guard !events.isEmpty else { return }
        echoRun.withLock { run in for event in events { run.note(event) } }
        let targets = subscribers.withLock { Array($0.values) }
        for t in targets where t.include.map({ events.contains(where: $0) }) ?? true {
            t.signal.signal()
        }
    }
}

/// A change subscription: ``wait()`` returns once a change it accepts has been committed since
/// the last wait (changes coalesce into one wake-up). Ends at ``cancel()`` or when released.
public final class ChangeSubscription: Sendable {
    weak let store: Store?
    let id: UInt64
    let signal: WakeSignal

    init(store: Store, id: UInt64, signal: WakeSignal) {
        self.store = store
        self.id = id
        self.signal = signal
    }

    deinit { cancel() }

    /// Waits for the next wake-up; false once cancelled (or when the waiting task is).
    public func wait() async -> Bool { await signal.wait() }

    /// Waits for the next wake-up until `deadline`: signalled, timed out, or ended (cancelled).
    public func wait(until deadline: ContinuousClock.Instant) async -> WakeSignal.Outcome { await signal.wait(until: deadline) }

    /// Ends the subscription: a wait in progress, and every later one, returns false.
    public func cancel() {
        _ = store?.subscribers.withLock { $0.removeValue(forKey: id) }
        signal.finish()
    }
}

/// Every change after a sequence, in sequence order, with none missing however slowly it is
/// read: it pages the change log (``Store/Read/changes(after:limit:)``) from the last sequence it
/// delivered, and waits for a wake-up when it has caught up.
///
/// The log is compacted (a record stands at its latest change), so a reader that is behind
/// when a record changes twice sees that record once, at its latest change and sequence; the
/// states it ends with are the store's. Ends (returns nil) once its subscription is cancelled.
public struct ChangeFeed: AsyncSequence, Sendable {
    public typealias Element = ChangeEvent
    let store: Store
    public let subscription: ChangeSubscription
    let after: Int64
    let pageSize: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let store: Store
        let subscription: ChangeSubscription
        let pageSize: Int
        /// The last sequence delivered.
        public private(set) var cursor: Int64
        var page: [ChangeEvent] = []
        var index = 0

        public mutating func next() async throws -> ChangeEvent? {
            while index == page.count {
                if subscription.signal.isFinished || Task.isCancelled { return nil }
                page = try await store.read(.changes(after: cursor, limit: pageSize))
                index = 0
                // Caught up: wait for the next commit (a commit since the read left the signal set).
                if page.isEmpty, !(await subscription.wait()) { return nil }
            }
            defer { index += 1 }
            cursor = page[index].sequence
            return page[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(store: store, subscription: subscription, pageSize: pageSize, cursor: after)
    }

    /// Ends the feed: a reader waiting for changes gets nil.
    public func cancel() { subscription.cancel() }
}

/// A stretch of the change log's sequences that were each, when written, exactly what one peer
/// sent (echoes of it, which are never pushed back to it): the merges of a full sync from that
/// peer. A session pushing to it skips the stretch without reading the rows
/// (``Store/echoesOnly(of:after:)``): at 100k records that read took about 6 % of the receiver's
/// CPU. A row in the stretch can only leave it (a later change moves a record to a new
/// sequence), so what it says stays true; any other change, or a gap in the sequences seen (a
/// commit noted out of order), starts it anew.
struct EchoRun: Sendable {
    var peer: DeviceID?
    var first: Int64 = 0
    var last: Int64 = 0

    mutating func note(_ event: ChangeEvent) {
        guard event.echoesSource, let source = event.source else {
            self = EchoRun(peer: nil, first: 0, last: event.sequence)
            return
        }
        if peer == source, event.sequence == last + 1 {
            last = event.sequence
        } else {
            self = EchoRun(peer: source, first: event.sequence, last: event.sequence)
        }
    }
}

extension Store {
    /// The last sequence of a stretch of the log after `sequence` that holds only echoes of
    /// `peer`, when this store saw it written; nil when the log must be read.
    public func echoesOnly(of peer: DeviceID, after sequence: Int64) -> Int64? {
        echoRun.withLock { run in
            guard run.peer == peer, sequence >= run.first - 1, sequence < run.last else { return nil }
            return run.last
        }
    }
}
