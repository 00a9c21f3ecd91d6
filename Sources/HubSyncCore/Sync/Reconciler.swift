/// What one reconciliation message taught the side that received it.
public struct ReconcileOutcome: Sendable, Equatable {
    /// The message to send back; nil when there is nothing more to say (send `reconcileDone`).
    public var reply: ReconcileMessage?
    /// Items this side holds that the peer lacks: push their records.
    public var have: [ReconItem]
    /// The index in this side's set of each item of ``have``, in the same order.
    public var haveIndices: [Int] = []
    /// IDs of items the peer holds that this side lacks: request them.
    public var need: [ItemID]

    public init(reply: ReconcileMessage?, have: [ReconItem] = [], need: [ItemID] = []) {
        self.reply = reply
        self.have = have
        self.need = need
    }
}

/// Range-based set reconciliation (Meyer; the Negentropy protocol) between this side's set and a
/// peer's, as a pure state machine (protocol/SPEC.md 3.4).
///
/// The initiator calls ``initiate()`` and sends the message; from then on each side passes every
/// message it receives to ``receive(_:)`` and sends the reply, or `reconcileDone` when there is
/// none. Whichever side receives the ID list of a range learns both directions for that range
/// (``ReconcileOutcome/have`` and ``ReconcileOutcome/need``); the other side learns nothing about
/// it. So when the exchange ends, each side has learned exactly the differences in the ranges it
/// settled, and pushing its `have` and requesting its `need` transfers the whole symmetric
/// difference, each item once.
public struct Reconciler: Sendable {
    public let set: ReconcileSet
    public let isInitiator: Bool
    /// How many sub-ranges a differing range is split into.
    public let branching: Int
    /// A differing range holding at most this many of our items is answered with their IDs.
    public let idListThreshold: Int
    /// No reply, tag byte included, is larger than this. The default, 1,000,000, leaves room in
    /// one 1 MiB frame for the seal; at a million items the 1,000 differences of a repair then
    /// fit in 3 round trips (with 500,000, deferred ranges took more).
    public let maxMessageBytes: Int

    var started: Bool
    /// Items of ours reported as the peer's lack or sent on its request this round, one bit an
    /// item by index (allocated at the first): each is sent once however often a peer makes a
    /// range be settled or asks again, so a round sends at most every item once.
    var served: [UInt64] = []
    /// IDs of the peer's reported as this side's lack, so that each is requested once.
    var reportedNeed: Set<ItemID> = []
    /// The index ranges of the ID lists in this side's last reply: the peer learns our IDs only
    /// from those, and requests what it lacks of them in one `request` before its next message
    /// (SPEC 3.4). Emptied by that request.
    var listed: [Range<Int>] = []

    /// - Precondition: `branching` in 2...256, `idListThreshold` in 1...1024, and
    ///   `maxMessageBytes` in 1...1 MiB and at least twice the largest single answer to one range
    ///   (so that every reply settles at least one differing range).
    public init(set: ReconcileSet, isInitiator: Bool, branching: Int = 16, idListThreshold: Int = 32,
                maxMessageBytes: Int = Reconciler.defaultMaxMessageBytes) {
        precondition((2...256).contains(branching), "branching must be 2...256")
        precondition((1...1024).contains(idListThreshold), "idListThreshold must be 1...1024")
        let largestAnswer = max(branching * (Self.maxBoundSize + 1 + Fingerprint.byteCount),
                                Self.maxBoundSize + 1 + 10 + ItemID.byteCount * idListThreshold)
        precondition(maxMessageBytes <= FrameCodec.maxFrameSize && maxMessageBytes >= 2 * largestAnswer + 64,
                     "maxMessageBytes must be \(2 * largestAnswer + 64)...\(FrameCodec.maxFrameSize)")
        self.set = set
        self.isInitiator = isInitiator
        self.branching = branching
        self.idListThreshold = idListThreshold
        self.maxMessageBytes = maxMessageBytes
        started = !isInitiator
    }

    /// The default limit of a reply, tag byte included.
    public static let defaultMaxMessageBytes = 1_000_000

    /// The largest encoded bound: a 10-byte varint, the length byte, a 32-byte prefix.
    static let maxBoundSize = 10 + 1 + ItemID.byteCount

    /// The first message (initiator only): one range, the fingerprint of the whole set.
    public mutating func initiate() -> ReconcileMessage {
        precondition(isInitiator, "only the initiator starts a reconciliation")
        started = true
        return ReconcileMessage(ranges: [
            ReconcileRange(upperBound: .infinity, mode: .fingerprint(set.fingerprint(of: 0..<set.count))),
        ])
    }

    /// The indices of the items the peer asked for (`request`), in the order asked, and marks
    /// them sent.
    ///
    /// Only the ID lists of this side's last reply are looked in (at most 32 items each), and
    /// only by the first request after it: the peer knows no other ID of ours and asks for what
    /// it lacks of them in one request before its next message (SPEC 3.4). An ID not there, a
    /// second request for one reply, and an item already sent this round give nothing. So each
    /// reply costs at most one pass over its own lists, never one over the set, and a round
    /// sends no item twice.
    public mutating func serve(requested ids: [ItemID]) -> [Int] {
        defer { listed = [] }
        var found: [ItemID: Int] = [:]
        let wanted = Set(ids)
        search: for range in listed {
            for i in range where wanted.contains(set[i].id) {
                found[set[i].id] = i
                if found.count == wanted.count { break search }
            }
        }
        return ids.compactMap { id in
            guard let i = found.removeValue(forKey: id), markServed(i) else { return nil }
            return i
        }
    }

    /// Marks the item at `index` sent; false when it already was.
    mutating func markServed(_ index: Int) -> Bool {
        if served.isEmpty { served = [UInt64](repeating: 0, count: (set.count + 63) / 64) }
        let bit: UInt64 = 1 << UInt64(index % 64)
        if served[index / 64] & bit != 0 { return false }
        served[index / 64] |= bit
        return true
    }
}
