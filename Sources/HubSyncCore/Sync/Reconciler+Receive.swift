extension Reconciler {
    /// Answers one message from the peer (protocol/SPEC.md 3.4).
    ///
    /// Each range is answered in order: a skip is skipped; an ID list is compared with our items
    /// (both directions learned) and skipped; a fingerprint equal to ours is skipped, and a
    /// differing one is answered with our ID list when we hold at most ``idListThreshold`` items
    /// in it, else with the fingerprints of ``branching`` sub-ranges. An answer that would make
    /// the reply larger than ``maxMessageBytes`` is deferred: the range is sent back with our own
    /// fingerprint, so the peer answers it in the next round.
    public mutating func receive(_ message: ReconcileMessage) throws(WireError) -> ReconcileOutcome {
        guard started else { throw WireError("reconcile: message received before this side initiated") }
        try message.validate()
        let ranges = message.ranges
        let budget = maxMessageBytes - 1
        let (foldAt, reserve) = plan(ranges, budget: budget)

        var out = ReplyWriter()
        var outcome = ReconcileOutcome(reply: nil)
        listed = []
        var lower = ReconBound.zero
        var lowerIndex = 0
        for i in 0..<foldAt {
            let r = ranges[i]
            let upperIndex = set.index(of: r.upperBound, from: lowerIndex)
            let range = lowerIndex..<upperIndex
            switch r.mode {
            case .skip:
                out.skip(to: r.upperBound)
            case .idList(let ids):
                learn(theirs: ids, mine: range, into: &outcome)
                out.skip(to: r.upperBound)
            case .fingerprint(let theirs):
                let mine = set.fingerprint(of: range)
                if mine == theirs {
                    out.skip(to: r.upperBound)
                    break
                }
                let answer = self.answer(range, upper: r.upperBound)
                if out.size(adding: answer, lower: lower) + reserve[i + 1] <= budget {
                    out.append(answer, lower: lower)
                    if case .idList = answer.first?.mode { listed.append(range) }
                } else {
                    out.append([ReconcileRange(upperBound: r.upperBound, mode: .fingerprint(mine))], lower: lower)
                }
            }
            lower = r.upperBound
            lowerIndex = upperIndex
        }
        if foldAt < ranges.count {
            let rest = ReconcileRange(upperBound: .infinity,
                                      mode: .fingerprint(set.fingerprint(of: lowerIndex..<set.count)))
            out.append([rest], lower: lower)
        }
        outcome.reply = out.finish()
        return outcome
    }

    /// Where to stop answering range by range, and for each range `i` an upper bound on the bytes
    /// needed to answer ranges `i...` as cheaply as possible (echo, skip) plus the folded rest.
    ///
    /// The cheapest answer to a range is never larger than the range as received (its bound and
    /// mode byte, plus the fingerprint if it carried one), so this is what is reserved. When the
    /// whole message would reserve more than half the budget, the ranges past that point are not
    /// answered but folded into one fingerprint up to infinity (at most 19 bytes).
    func plan(_ ranges: [ReconcileRange], budget: Int) -> (foldAt: Int, reserve: [Int]) {
        var costs: [Int] = []
        costs.reserveCapacity(ranges.count)
        var previous: UInt64 = 0
        for r in ranges {
            var cost = r.upperBound.encodedSize(after: previous) + 1
            if case .fingerprint = r.mode { cost += Fingerprint.byteCount }
            costs.append(cost)
            previous = r.upperBound.time
        }
        let foldCost = 2 + 1 + Fingerprint.byteCount
        var foldAt = ranges.count
        if costs.reduce(0, +) > budget / 2 {
            var total = foldCost
            foldAt = 0
            while foldAt < ranges.count - 1, total + costs[foldAt] <= budget / 2 {
                total += costs[foldAt]
                foldAt += 1
            }
        }
        var reserve = [Int](repeating: 0, count: foldAt + 1)
        reserve[foldAt] = foldAt < ranges.count ? foldCost : 0
        for i in stride(from: foldAt - 1, through: 0, by: -1) { reserve[i] = reserve[i + 1] + costs[i] }
        return (foldAt, reserve)
    }

    /// Our answer to a range whose fingerprints differ: our ID list, or sub-range fingerprints.
    func answer(_ range: Range<Int>, upper: ReconBound) -> [ReconcileRange] {
        if range.count <= idListThreshold {
            return [ReconcileRange(upperBound: upper, mode: .idList(set.items[range].map(\.id)))]
        }
        let buckets = min(branching, range.count)
        var result: [ReconcileRange] = []
        result.reserveCapacity(buckets)
        var start = range.lowerBound
        for b in 1...buckets {
            let end = range.lowerBound + range.count * b / buckets
            let bound = b == buckets ? upper : set.bound(before: end)
            result.append(ReconcileRange(upperBound: bound, mode: .fingerprint(set.fingerprint(of: start..<end))))
            start = end
        }
        return result
    }

    /// Compares the peer's IDs for a range with our items there, reporting each difference once.
    mutating func learn(theirs ids: [ItemID], mine range: Range<Int>, into outcome: inout ReconcileOutcome) {
        var theirs = Set(ids)
        for i in range where theirs.remove(set[i].id) == nil && markServed(i) {
            outcome.have.append(set[i])
            outcome.haveIndices.append(i)
        }
        for id in theirs.sorted() where reportedNeed.insert(id).inserted {
            outcome.need.append(id)
        }
    }
}

/// Builds a reply: merges consecutive skips and keeps its exact encoded size.
struct ReplyWriter {
    private(set) var ranges: [ReconcileRange] = []
    private(set) var byteCount = 0
    private var lastTime: UInt64 = 0
    private var pendingSkip: ReconBound?
    private var hasContent = false

    mutating func skip(to bound: ReconBound) {
        pendingSkip = bound
    }

    /// The size after appending `answer` to a range starting at `lower` (the pending skip, if any,
    /// ends there).
    func size(adding answer: [ReconcileRange], lower: ReconBound) -> Int {
        var size = byteCount, previous = lastTime
        if pendingSkip != nil {
            size += lower.encodedSize(after: previous) + 1
            previous = lower.time
        }
        for r in answer {
            size += r.encodedSize(after: previous)
            previous = r.upperBound.time
        }
        return size
    }

    mutating func append(_ answer: [ReconcileRange], lower: ReconBound) {
        if pendingSkip != nil {
            pendingSkip = nil
            emit(ReconcileRange(upperBound: lower, mode: .skip))
        }
        for r in answer { emit(r) }
        hasContent = true
    }

    private mutating func emit(_ r: ReconcileRange) {
        byteCount += r.encodedSize(after: lastTime)
        lastTime = r.upperBound.time
        ranges.append(r)
    }

    /// The reply, or nil when every range was skipped.
    mutating func finish() -> ReconcileMessage? {
        guard hasContent else { return nil }
        if let bound = pendingSkip {
            pendingSkip = nil
            emit(ReconcileRange(upperBound: bound, mode: .skip))
        }
        return ReconcileMessage(ranges: ranges)
    }
}
