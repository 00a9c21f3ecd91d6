import HubSyncCore

/// Where the differences between two simulated replicas lie.
enum DifferencePattern: String, CaseIterable, Sendable {
    /// Anywhere in the set.
    case random
    /// At the most recent times: new items and edits of the newest ones.
    case recent
}

/// Two item sets built from one shared base of `count` items and `differences` differences, each
/// an item only the first holds, only the second holds, or one item held with different IDs
/// (two states of one record): replayable from the seed.
func makeReplicaSets(count: Int, differences: Int, pattern: DifferencePattern, seed: UInt64)
    -> (a: [ReconItem], b: [ReconItem])
{
    var rng = SplitMix64(seed: seed)
    let start: UInt64 = 1_700_000_000_000
    func randomID() -> ItemID { ItemID(words: (rng.next(), rng.next(), rng.next(), rng.next())) }
    // A few items share a clock reading, so bounds need ID prefixes.
    func randomTime(below millis: UInt64) -> UInt64 {
        Timestamp(millis: start + UInt64.random(in: 0..<max(millis, 1), using: &rng),
                  counter: UInt16.random(in: 0..<2, using: &rng)).rawValue
    }
    let span = UInt64(max(count, 1)) * 50
    var base = (0..<count).map { _ in ReconItem(time: randomTime(below: span), id: randomID()) }
    base.sort()
    var a = base, b = base
    var removedA = Set<Int>(), removedB = Set<Int>()
    var touched = Set<Int>()
    var newest = base.last.map { Timestamp(rawValue: $0.time).millis } ?? start

    /// A base index no difference has used yet: anywhere, or the newest unused one.
    func freshIndex() -> Int? {
        guard touched.count < count else { return nil }
        if pattern == .recent {
            var i = count - 1
            while touched.contains(i) { i -= 1 }
            touched.insert(i)
            return i
        }
        while true {
            let i = Int.random(in: 0..<count, using: &rng)
            if touched.insert(i).inserted { return i }
        }
    }
    func newItem() -> ReconItem {
        if pattern == .recent {
            newest += UInt64.random(in: 0...2, using: &rng)
            return ReconItem(time: Timestamp(millis: newest, counter: 0).rawValue, id: randomID())
        }
        return ReconItem(time: randomTime(below: span), id: randomID())
    }

    for _ in 0..<differences {
        let kind = Int.random(in: 0..<3, using: &rng)
        // Half of the one-sided differences are new items, half items the other side dropped.
        let existing = Bool.random(using: &rng) ? freshIndex() : nil
        switch (kind, existing) {
        case (0, let i?): removedB.insert(i)
        case (0, nil): a.append(newItem())
        case (1, let i?): removedA.insert(i)
        case (1, nil): b.append(newItem())
        case (_, let i?): b[i] = ReconItem(time: base[i].time, id: randomID())
        case (_, nil):
            let item = newItem()
            a.append(item)
            b.append(ReconItem(time: item.time, id: randomID()))
        }
    }
    a = a.enumerated().filter { !removedA.contains($0.offset) }.map(\.element)
    b = b.enumerated().filter { !removedB.contains($0.offset) }.map(\.element)
    return (a.shuffled(using: &rng), b.shuffled(using: &rng))
}

/// What a full reconciliation between two reconcilers did.
struct ReconcileRun {
    /// Messages the initiator sent that carried ranges (its closing `reconcileDone`, which
    /// nothing waits for, is not a round trip).
    var roundTrips = 0
    /// Every message, `reconcileDone` included.
    var messages = 0
    /// Encoded bytes of every message (tag included), both ways.
    var bytes = 0
    var largestMessage = 0
    var largestFromInitiator = 0
    var largestFromResponder = 0
    var initiatorHave: [ReconItem] = []
    var initiatorNeed: [ItemID] = []
    var responderHave: [ReconItem] = []
    var responderNeed: [ItemID] = []
}

/// Runs a reconciliation to the end, every message going through its wire encoding.
func reconcile(_ a: [ReconItem], _ b: [ReconItem], branching: Int = 16, idListThreshold: Int = 32,
               initiatorMaxBytes: Int = Reconciler.defaultMaxMessageBytes,
               responderMaxBytes: Int = Reconciler.defaultMaxMessageBytes) throws -> ReconcileRun {
    var initiator = Reconciler(set: ReconcileSet(items: a), isInitiator: true, branching: branching,
                               idListThreshold: idListThreshold, maxMessageBytes: initiatorMaxBytes)
    var responder = Reconciler(set: ReconcileSet(items: b), isInitiator: false, branching: branching,
                               idListThreshold: idListThreshold, maxMessageBytes: responderMaxBytes)
    var run = ReconcileRun()
    var next = SyncMessage.reconcile(initiator.initiate())
    var toResponder = true
    run.roundTrips = 1
    for _ in 0..<1_000 {
        let bytes = next.encoded()
        run.messages += 1
        run.bytes += bytes.count
        run.largestMessage = max(run.largestMessage, bytes.count)
        if toResponder {
            run.largestFromInitiator = max(run.largestFromInitiator, bytes.count)
        } else {
            run.largestFromResponder = max(run.largestFromResponder, bytes.count)
        }
        guard case .reconcile(let m) = try SyncMessage.decode(bytes) else { return run }
        if toResponder {
            let outcome = try responder.receive(m)
            run.responderHave += outcome.have
            run.responderNeed += outcome.need
            next = outcome.reply.map { .reconcile($0) } ?? .reconcileDone
        } else {
            let outcome = try initiator.receive(m)
            run.initiatorHave += outcome.have
            run.initiatorNeed += outcome.need
            next = outcome.reply.map { .reconcile($0) } ?? .reconcileDone
            if case .reconcile = next { run.roundTrips += 1 }
        }
        toResponder.toggle()
    }
    throw WireError("reconciliation did not end after 1,000 messages")
}
