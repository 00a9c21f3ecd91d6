import HubSyncCore
import Synchronization

/// Messages read from a peer and not yet handled, in order, at most `capacity` of them: the
/// reader opens and decodes the next frames while the handler merges, and waits when the
/// handler falls behind, so a fast sender never fills memory.
final class Inbox: Sendable {
    private struct State {
        var items: [SyncMessage] = []
        var head = 0
        var finished = false
        var consumer: CheckedContinuation<SyncMessage?, Never>?
        var producer: CheckedContinuation<Bool, Never>?
        var count: Int { items.count - head }

        mutating func removeFirst() -> SyncMessage {
            let m = items[head]
            head += 1
            if head > 64, head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return m
        }
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Appends a message, waiting while the inbox is full. Returns false once it is finished.
    func push(_ message: SyncMessage) async -> Bool {
        while true {
            enum Step { case done(Bool), resume(CheckedContinuation<SyncMessage?, Never>, SyncMessage), wait }
            let step: Step = state.withLock { s in
                if s.finished { return .done(false) }
                if let c = s.consumer {
                    s.consumer = nil
                    return .resume(c, message)
                }
                guard s.count >= capacity else {
                    s.items.append(message)
                    return .done(true)
                }
                return .wait
            }
            switch step {
            case .done(let ok): return ok
            case .resume(let c, let m):
                c.resume(returning: m)
                return true
            case .wait:
                let open = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                    let now: Bool? = state.withLock { s in
                        if s.finished { return false }
                        if s.count < capacity { return true }
                        s.producer = c
                        return nil
                    }
                    if let now { c.resume(returning: now) }
                }
                if !open { return false }
            }
        }
    }

    /// The next message, waiting for one; nil once the inbox is finished and empty.
    func next() async -> SyncMessage? {
        await withCheckedContinuation { (c: CheckedContinuation<SyncMessage?, Never>) in
            let (message, producer, ready): (SyncMessage?, CheckedContinuation<Bool, Never>?, Bool) = state.withLock { s in
                if s.count > 0 {
                    let m = s.removeFirst()
                    let p = s.producer
                    s.producer = nil
                    return (m, p, true)
                }
                if s.finished { return (nil, nil, true) }
                s.consumer = c
                return (nil, nil, false)
            }
            producer?.resume(returning: true)
            if ready { c.resume(returning: message) }
        }
    }

    /// The next message if one is waiting and `accept` takes it; never waits.
    func next(if accept: (SyncMessage) -> Bool) -> SyncMessage? {
        let (message, producer): (SyncMessage?, CheckedContinuation<Bool, Never>?) = state.withLock { s in
            guard s.count > 0, accept(s.items[s.head]) else { return (nil, nil) }
            let m = s.removeFirst()
            let p = s.producer
            s.producer = nil
            return (m, p)
        }
        producer?.resume(returning: true)
        return message
    }

    /// Ends the inbox: waiting calls return (the handler gets nil once what is queued is taken).
    func finish() {
        let (consumer, producer) = state.withLock { s in
            s.finished = true
            let r = (s.consumer, s.producer)
            s.consumer = nil
            s.producer = nil
            return r
        }
        consumer?.resume(returning: nil)
        producer?.resume(returning: false)
    }
}
