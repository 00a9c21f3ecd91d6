import HubSyncCore
import HubSyncCrypto
import HubSyncTestSupport
@testable import HubSyncNet
import Testing

/// States larger than a batch (protocol/SPEC.md 3.5): sent and received in `statePart` pieces,
/// refused out of order, and skipped with a report when the peer cannot take them.
@Suite struct SyncSessionPartsTests {
    static let withParts = ["fastpath", "live", "reconcile", "parts"]

    /// A record whose one field holds `bytes` bytes of text.
    func large(_ id: String, bytes: Int, fill: Character = "x") -> RecordState {
        var s = RecordState(key: RecordKey(collection: "memories", id: id))
        s.write(field: "text", value: .string(String(repeating: fill, count: bytes)),
                stamp: Stamp(time: Timestamp(millis: 7, counter: 0), device: DeviceID(words: (3, 3, 3, 3))))
        return s
    }

    /// A session that has been asked for its fast path, with its log read pending.
    func asked(peerCapabilities: [String] = withParts) -> Machine {
        var m = Machine.opened(peerCapabilities: peerCapabilities)
        _ = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        return m
    }

    @Test func aStateLargerThanABatchGoesAloneInPiecesBetweenTheBatchesAroundIt() throws {
        var m = asked()
        let big = CanonicalEncoding.encode(large("big", bytes: 1_200_000))
        let small = [record(1), record(2)].map(CanonicalEncoding.encode)
        let actions = m.storeFinished(.logRead(states: [small[0], big, small[1]], sequences: [3, 5, 8], lastSequence: 9))
        // changes(m1, up to 3), three pieces of the big state (sequence 5), changes(m2, up to 9).
        let sends = actions.filter { if case .store = $0 { false } else { true } }
        guard sends.count == 5, case .sendChanges(let first, 3) = sends[0], case .sendChanges(let last, 9) = sends[4] else {
            Issue.record("unexpected sends: \(sends.map { "\($0)".prefix(80) })"); return
        }
        #expect(first == [small[0]] && last == [small[1]])
        let parts = sends[1...3].compactMap { if case .sendPart(let p) = $0 { p } else { nil } }
        #expect(parts.map(\.offset) == [0, 512 * 1024, 1024 * 1024])
        #expect(parts.allSatisfy { $0.lastSequence == 5 && $0.total == big.count })
        #expect(parts.flatMap(\.bytes) == big)
        #expect(parts.last?.isLast == true)
        // Each piece counts against the writes in flight: no more log is read until they drain.
        #expect(m.localChangesCommitted().storeRequests.isEmpty)
        for _ in 0..<3 { #expect(m.changesWritten().storeRequests.isEmpty) }
        #expect(m.changesWritten().storeRequests == [.readLog(after: 9, limit: 512)])
    }

    @Test func aLargeStateLastInTheReadCarriesTheReadsLastSequenceAndNothingEmptyFollows() {
        var m = asked()
        let big = CanonicalEncoding.encode(large("big", bytes: 600_000))
        let actions = m.storeFinished(.logRead(states: [big], sequences: [4], lastSequence: 6))
        let parts = actions.compactMap { if case .sendPart(let p) = $0 { p } else { nil } }
        #expect(parts.count == 2 && parts.allSatisfy { $0.lastSequence == 6 })
        #expect(actions.changesSent.isEmpty)
    }

    @Test func piecesAreAssembledThenMergedAndAcknowledgedLikeOneChangesMessage() throws {
        var m = Machine.opened(peerCapabilities: Self.withParts)
        let state = large("big", bytes: 1_100_000)
        let parts = StatePart.pieces(of: CanonicalEncoding.encode(state), lastSequence: 12)
        #expect(parts.count == 3)
        // Wire round trip of each piece.
        for p in parts { #expect(try SyncMessage.decode(SyncMessage.statePart(p).encoded()) == .statePart(p)) }
        #expect(m.received(.statePart(parts[0]), bytes: 500_000).storeRequests.isEmpty)
        // Other messages may come between the pieces.
        #expect(m.received(.ping(nonce: 9), bytes: 30).sent == [.pong(nonce: 9)])
        #expect(m.received(.statePart(parts[1]), bytes: 500_000).storeRequests.isEmpty)
        let done = m.received(.statePart(parts[2]), bytes: 100_000)
        #expect(done.storeRequests == [.mergeLog([state], epoch: "theirs", upTo: 12)])
        #expect(m.storeFinished(.logMerged).sent.contains(.ack(sequence: 12)))
        // A repair record (sequence 0) merges as one.
        let repair = StatePart.pieces(of: CanonicalEncoding.encode(state), lastSequence: 0)
        for p in repair.dropLast() { _ = m.received(.statePart(p), bytes: 1) }
        #expect(m.received(.statePart(repair.last!), bytes: 1).storeRequests == [.mergeRepairStates([state])])
    }

    @Test(arguments: ["gap", "restart", "otherTotal", "otherSequence", "changesBetween", "notNegotiated", "garbage"])
    func piecesOutOfPlaceEndTheSessionWithAReason(case name: String) {
        var m = Machine.opened(peerCapabilities: name == "notNegotiated" ? ["fastpath", "live", "reconcile"] : Self.withParts)
        let bytes = CanonicalEncoding.encode(large("big", bytes: 1_100_000))
        let parts = StatePart.pieces(of: bytes, lastSequence: 3)
        var actions = m.received(.statePart(parts[0]), bytes: 1)
        switch name {
        case "gap": actions += m.received(.statePart(parts[2]), bytes: 1)
        case "restart": actions += m.received(.statePart(parts[0]), bytes: 1)
        case "otherTotal":
            var p = parts[1]; p.total += 1
            actions += m.received(.statePart(p), bytes: 1)
        case "otherSequence":
            var p = parts[1]; p.lastSequence = 4
            actions += m.received(.statePart(p), bytes: 1)
        case "changesBetween": actions += m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 2)), bytes: 1)
        case "garbage":
            let junk = [UInt8](repeating: 0xEE, count: 1000)
            m = Machine.opened(peerCapabilities: Self.withParts)
            actions = m.received(.statePart(StatePart(lastSequence: 1, total: 1000, offset: 0, bytes: junk)), bytes: 1)
        default: break
        }
        let closing = actions.closing
        #expect(closing != nil, "\(name) did not end the session")
        #expect(closing?.error.code == (name == "garbage" ? .malformed : .unexpectedMessage))
        #expect(actions.storeRequests.isEmpty) // nothing merged
        #expect(m.isClosed)
    }

    @Test func aPieceOutsideItsStateOrAStateOver64MiBIsMalformed() {
        func decodes(_ part: StatePart) -> Bool { (try? SyncMessage.decode(SyncMessage.statePart(part).encoded())) != nil }
        #expect(decodes(StatePart(lastSequence: 1, total: 10, offset: 5, bytes: [1, 2, 3, 4, 5])))
        #expect(!decodes(StatePart(lastSequence: 1, total: 10, offset: 6, bytes: [1, 2, 3, 4, 5])))
        #expect(!decodes(StatePart(lastSequence: 1, total: 10, offset: 0, bytes: [])))
        #expect(!decodes(StatePart(lastSequence: 1, total: StatePart.maxStateBytes + 1, offset: 0, bytes: [1])))
        #expect(!decodes(StatePart(lastSequence: 1, total: 0, offset: 0, bytes: [])))
        #expect(!decodes(StatePart(lastSequence: 1, total: 600_000, offset: 0, bytes: [UInt8](repeating: 1, count: 512 * 1024 + 1))))
    }

    /// One record the peer cannot take never holds back the others: it is reported with the
    /// reason, the rest is sent, and the watermark moves past it.
    @Test func aStateThePeerCannotTakeIsSkippedAndReportedAndTheRestGoesOn() {
        var m = asked(peerCapabilities: ["fastpath", "live", "reconcile"])
        let tooBig = CanonicalEncoding.encode(large("toobig", bytes: 1_100_000))
        let fits = CanonicalEncoding.encode(large("fits", bytes: 700_000)) // whole, as before `parts`
        let small = CanonicalEncoding.encode(record(1))
        let actions = m.storeFinished(.logRead(states: [small, tooBig, fits], sequences: [1, 2, 3], lastSequence: 3))
        #expect(!actions.contains { if case .sendPart = $0 { true } else { false } })
        let reports = actions.compactMap { if case .report(.undeliverable(let key, let reason)) = $0 { (key, reason) } else { nil } }
        #expect(reports.count == 1 && reports.first?.0 == RecordKey(collection: "memories", id: "toobig"))
        #expect(reports.first?.1.contains("cannot take a record in parts") == true)
        let sent = actions.changesSent
        #expect(sent.map(\.states.count) == [1, 1] && sent.last?.lastSequence == 3)
        #expect(sent.last?.states.first?.key.id == "fits")
        #expect(!m.isClosed)
    }
}

/// A state the receiving store refuses never holds back the rest of its batch.
@Suite struct SyncSessionRefusalTests {
    @Test func aRefusedStateIsReportedAndTheBatchIsStillAcknowledged() {
        var m = Machine.opened()
        let asked = m.received(.changes(ChangeBatch(states: [record(1), record(2)], lastSequence: 7)), bytes: 200)
        #expect(asked.storeRequests == [.mergeLog([record(1), record(2)], epoch: "theirs", upTo: 7)])
        let refusal = Machine.Refusal(key: record(2).key, reason: "unknown collection")
        let done = m.storeFinished(.partlyMerged(refused: [refusal], then: .logMerged))
        #expect(done.contains(.report(.notMerged(record(2).key, reason: "unknown collection"))))
        #expect(done.sent.contains(.ack(sequence: 7)))
        #expect(!m.isClosed)
        // The next batch is merged as usual.
        #expect(m.received(.changes(ChangeBatch(states: [record(3)], lastSequence: 8)), bytes: 90).storeRequests
            == [.mergeLog([record(3)], epoch: "theirs", upTo: 8)])
    }
}

/// Hostile `statePart` bytes: any byte string after the tag decodes or is refused, never crashes,
/// and a decoded piece always lies within its state.
@Suite struct StatePartWireTests {
    @Test func randomBytesAfterTheTagAreRefusedOrDecodeToAPieceWithinItsState() {
        var random = SeededRandom(seed: 11)
        var decoded = 0
        for round in 0..<2_000 {
            // Plausible headers half the time, so that the length checks are reached.
            var bytes: [UInt8] = [11]
            if round % 2 == 0 {
                let total = UInt32.random(in: 1...100, using: &random), offset = UInt32.random(in: 0...120, using: &random)
                let length = UInt32.random(in: 0...120, using: &random)
                bytes += [UInt8](repeating: 0, count: 8)
                for v in [total, offset, length] { bytes += withUnsafeBytes(of: v.bigEndian, Array.init) }
                bytes += random.bytes(count: Int(length) + Int.random(in: -2...2, using: &random).clamped(to: -Int(length)...2))
            } else {
                bytes += random.bytes(count: Int.random(in: 0...40, using: &random))
            }
            guard case .statePart(let part)? = try? SyncMessage.decode(bytes) else { continue }
            decoded += 1
            #expect(!part.bytes.isEmpty && part.offset + part.bytes.count <= part.total && part.total <= StatePart.maxStateBytes)
        }
        #expect(decoded > 0)
    }

    @Test func onlyAStateOver64MiBIsTooLargeForAPeerThatTakesParts() {
        let m = Machine.opened(peerCapabilities: SyncSessionPartsTests.withParts)
        #expect(m.undeliverableReason(byteCount: StatePart.maxStateBytes) == nil)
        let reason = m.undeliverableReason(byteCount: StatePart.maxStateBytes + 1)
        #expect(reason?.contains("over the 64 MiB") == true && reason?.contains("resolve its conflicts") == true)
        let old = Machine.opened()
        #expect(old.undeliverableReason(byteCount: Machine.wholeStateLimit) == nil)
        #expect(old.undeliverableReason(byteCount: Machine.wholeStateLimit + 1)?.contains("1023 KiB") == true)
    }

    @Test func aSessionEndedWithoutAnAddressSaysSoAndNamesNoEmptyAddress() {
        struct Reset: Error {}
        let reason = SyncNode.describe(Reset(), address: nil)
        #expect(!reason.contains("unreachable at :"))
        #expect(reason.hasPrefix("the connection ended"))
        #expect(SyncNode.describe(Reset(), address: "10.77.0.2:7400").hasPrefix("unreachable at 10.77.0.2:7400"))
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
