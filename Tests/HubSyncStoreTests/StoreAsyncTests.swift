import Foundation
import HubSyncCore
import HubSyncCrypto
@testable import HubSyncStore
import Synchronization
import Testing

/// The store's async API: reads and writes on GRDB's own queues (Store+Access.swift).
@Suite struct StoreAsyncTests {
    let dir = TemporaryDirectory()

    /// Two async reads are inside their read transactions at the same moment: each waits, in
    /// its transaction, until the other has arrived. Were reads serialised (as on one queue),
    /// the first would never see the second and would give up at the deadline.
    @Test func asyncReadsRunAtTheSameTime() async throws {
        let store = try makeStore(dir)
        try store.apply(.put(key("memories", "m"), ["text": "t"]))
        let meeting = Meeting(parties: 2)
        let read = Store.Read<(sequence: Int64, metTheOther: Bool)> { store, db in
            let sequence = try Store.Read<Int64>.lastSequence.body(store, db)
            return (sequence, meeting.arriveAndWait(until: Date().addingTimeInterval(30)))
        }
        async let a = store.read(read)
        async let b = store.read(read)
        let (first, second) = try await (a, b)
        #expect(first.metTheOther && second.metTheOther)
        #expect(first.sequence == 1 && second.sequence == 1)
    }

    /// Concurrent async writes never overlap in the writer, and each gets its own sequences.
    @Test func asyncWritesRunOneAtATime() async throws {
        let store = try makeStore(dir)
        let inside = Overlap()
        let sequences = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for w in 0..<16 {
                let apply = Store.Write<[ChangeEvent]>.apply((0..<20).map { .put(key("memories", "w\(w)-\($0)"), ["text": "x"]) })
                let counted = Store.Write<[ChangeEvent]>(body: { store, db in
                    inside.enter()
                    defer { inside.leave() }
                    return try apply.body(store, db)
                })
                group.addTask { try await store.write(counted).map(\.sequence) }
            }
            var all: [[Int64]] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(inside.most == 1)
        // Each write's changes are one unbroken run: no other write came in between.
        for run in sequences { #expect(run == Array(run[0]..<run[0] + 20)) }
        #expect(sequences.flatMap { $0 }.sorted() == Array(1...320))
        #expect(try store.lastSequence() == 320)
    }

    /// The same writes, blocking on one store and awaited on another, give the same changes,
    /// the same change feed and the same wake-ups of a filtered subscription.
    @Test func asyncWritesPublishTheirChangesLikeBlockingWrites() async throws {
        let clock = ManualClock()
        let peer = device(9)
        let remote = try makeStore(dir, name: "remote", device: 9, clock: clock)
        try remote.apply(.put(key("memories", "from-peer"), ["text": "p"]))
        let states = try remote.list("memories")

        var outcomes: [[String]] = []
        for (name, awaited) in [("blocking", false), ("async", true)] {
            let store = try makeStore(dir, name: name, clock: clock)
            try store.addPeer(peer, address: nil)
            let feed = try store.changeFeed(after: 0)
            let personas = store.changeSignal { $0.state.key.collection == "personas" }
            var log: [String] = []
            func note(_ events: [ChangeEvent]) async {
                log += events.map { "\($0.sequence) \($0.state.key.collection)/\($0.state.key.id) \($0.origin) \($0.source?.short ?? "-") \($0.echoesSource)" }
                log.append("personas woken: \(await personas.signal.wait(until: .now) == .signalled)")
            }
            let memory: [RecordOperation] = [.put(key("memories", "a"), ["text": "1"])]
            let persona: [RecordOperation] = [.put(key("personas", "p"), ["name": "P"])]
            if awaited {
                await note(try await store.write(.apply(memory)))
                await note(try await store.write(.apply(persona)))
                try await store.write(.merge(states, from: peer, epoch: "e", upTo: 1))
            } else {
                // The named methods block (in an async context `write(_:)` would be the async one).
                let first = try store.apply(memory)
                await note(first)
                let second = try store.apply(persona)
                await note(second)
                try store.merge(states, from: peer, epoch: "e", upTo: 1)
            }
            var fed: [ChangeEvent] = []
            for try await e in feed {
                fed.append(e)
                if fed.count == 3 { break }
            }
            await note(fed)
            #expect(try store.peer(peer)?.theirSequence == 1)
            outcomes.append(log)
        }
        #expect(outcomes[0] == outcomes[1])
        #expect(outcomes[1].contains("3 memories/from-peer remote \(peer.short) true"))
    }

    /// A refused async write throws the store's own error, with its code, and changes nothing.
    @Test func anAsyncWriteFailureIsAStoreError() async throws {
        let store = try makeStore(dir)
        let missing = await #expect(throws: StoreError.self) {
            try await store.write(.apply([.put(key("memories", "ok"), ["text": "x"]), .delete(key("memories", "nope"))]))
        }
        #expect(missing?.code == .notFound)
        #expect(try await store.read(.lastSequence) == 0)
        let own = await #expect(throws: StoreError.self) { try await store.write(.addPeer(device(1), address: nil)) }
        #expect(own?.code == .invalidInput)

        // SQLite's own refusal comes as a StoreError too: a store opened read-only cannot write.
        let readOnly = try Store(path: store.path, device: device(1), readOnly: true)
        let refused = await #expect(throws: StoreError.self) {
            try await readOnly.write(.apply([.put(key("memories", "m"), ["text": "x"])]))
        }
        #expect(refused?.code == .database)
    }
}

/// Counts the writes inside the writer at once, and the most there ever were.
final class Overlap: Sendable {
    private let counts = Mutex((now: 0, most: 0))
    func enter() { counts.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { counts.withLock { $0.now -= 1 } }
    var most: Int { counts.withLock { $0.most } }
}

/// Lets threads wait, each inside its own work, until all of them have arrived.
/// `@unchecked Sendable`: a lock box; `arrived` is touched only while `condition` is locked.
final class Meeting: @unchecked Sendable {
    private let condition = NSCondition()
    private let parties: Int
    private var arrived = 0

    init(parties: Int) { self.parties = parties }

    /// Arrives, then blocks until every party has arrived (true) or `deadline` passes (false).
    func arriveAndWait(until deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        arrived += 1
        condition.broadcast()
        while arrived < parties {
            if !condition.wait(until: deadline) { return arrived >= parties }
        }
        return true
    }
}
