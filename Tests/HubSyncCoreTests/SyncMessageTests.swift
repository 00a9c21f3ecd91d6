import HubSyncCore
import HubSyncCrypto
import Testing

/// Samples of every message type, used by the round-trip and fuzz tests.
func sampleSyncMessages(seed: UInt64) -> [SyncMessage] {
    var rng = SplitMix64(seed: seed)
    let states = simulate(seed: seed, steps: 12).snapshots.suffix(3)
    let ids = (0..<Int.random(in: 0...4, using: &rng)).map { _ in
        ItemID(words: (rng.next(), rng.next(), rng.next(), rng.next()))
    }
    let (a, b) = makeReplicaSets(count: 300, differences: 6, pattern: .random, seed: seed)
    var initiator = Reconciler(set: ReconcileSet(items: a), isInitiator: true)
    var responder = Reconciler(set: ReconcileSet(items: b), isInitiator: false)
    let first = initiator.initiate()
    let second = try! responder.receive(first).reply!
    let third = try! initiator.receive(second).reply!
    return [
        .hello(Hello(schemaVersion: 3, capabilities: ["zstd", "blobs/2", ""], logEpoch: "epoch-\(seed)",
                     clock: Timestamp(rawValue: rng.next()), unknown: seed % 2 == 0 ? [] : [1, 2, 3])),
        .hello(Hello(protocolVersion: 9, schemaVersion: 0, capabilities: [], logEpoch: "", clock: .zero)),
        .fastPathRequest(since: Int64.random(in: 0...Int64.max, using: &rng), epoch: "é-\(seed)"),
        .fastPathRequest(since: 0, epoch: ""),
        .changes(ChangeBatch(states: Array(states), lastSequence: Int64(seed), isFinal: seed % 2 == 0)),
        .changes(ChangeBatch(states: [], lastSequence: 0, isFinal: true)),
        .ack(sequence: Int64(seed * 1_000)),
        .reconcile(first), .reconcile(second), .reconcile(third),
        .request(ids: ids),
        .reconcileDone,
        .ping(nonce: rng.next()),
        .pong(nonce: rng.next()),
        .goodbye(reason: "shutting down 🌙"),
    ]
}

@Suite struct SyncMessageTests {
    @Test(arguments: Array(UInt64(1)...40))
    func everyMessageRoundTrips(seed: UInt64) throws {
        for m in sampleSyncMessages(seed: seed) {
            let bytes = m.encoded()
            #expect(try SyncMessage.decode(bytes) == m, "\(m)")
            #expect(try SyncMessage.decode(bytes).encoded() == bytes)
        }
    }

    /// Message layouts of protocol/SPEC.md 3.1, byte for byte.
    @Test func layoutExamples() throws {
        let clock = Timestamp(millis: 1_700_000_000_000, counter: 0)
        let examples: [(SyncMessage, String)] = [
            (.hello(Hello(protocolVersion: 1, schemaVersion: 1, capabilities: ["zstd"], logEpoch: "ab",
                          clock: clock, unknown: [0xAA])),
             "01 0001 0001 00000001 00000004 7a737464 00000002 6162 018bcfe568000000 aa"),
            (.fastPathRequest(since: 7, epoch: "e1"), "02 0000000000000007 00000002 6531"),
            (.ack(sequence: 42), "04 000000000000002a"),
            (.request(ids: [ItemID(words: (0x0102_0304_0506_0708, 0, 0, 0xFF))]),
             "06 00000001 0102030405060708 0000000000000000 0000000000000000 00000000000000ff"),
            (.reconcileDone, "07"),
            (.ping(nonce: 1), "08 0000000000000001"),
            (.pong(nonce: 2), "09 0000000000000002"),
            (.goodbye(reason: "bye"), "0a 00000003 627965"),
            (.reconcile(ReconcileMessage(ranges: [
                ReconcileRange(upperBound: ReconBound(time: 1_000),
                               mode: .fingerprint(Fingerprint(bytes: [UInt8](repeating: 0x11, count: 16))!)),
                ReconcileRange(upperBound: ReconBound(time: 1_000, idPrefix: [0xAB]), mode: .skip),
                ReconcileRange(upperBound: .infinity, mode: .idList([ItemID(words: (0, 0, 0, 5))])),
            ])), "05 8768 00 01 11111111111111111111111111111111 00 01 ab 00 00 ff 02 01"
                + " 0000000000000000 0000000000000000 0000000000000000 0000000000000005"),
        ]
        for (message, hex) in examples {
            let expected = Hex.decode(hex.replacing(" ", with: ""))!
            #expect(message.encoded() == expected, "\(message)")
            #expect(try SyncMessage.decode(expected) == message)
        }
        var s = RecordState(key: RecordKey(collection: "c", id: "i"))
        s.write(field: "f", value: 1, stamp: Stamp(time: clock, device: device(1)))
        let state = CanonicalEncoding.encode(s)
        let changes = SyncMessage.changes(ChangeBatch(states: [s], lastSequence: 3, isFinal: true)).encoded()
        #expect(changes == Hex.decode("03 0000000000000003 01 00000001".replacing(" ", with: ""))!
            + [0, 0, 0, UInt8(state.count)] + state)
    }

    /// A newer peer's extra hello fields survive decoding and re-encoding.
    @Test func helloKeepsUnknownFields() throws {
        let old = SyncMessage.hello(Hello(schemaVersion: 2, capabilities: ["a"], logEpoch: "x", clock: .zero))
        let extra: [UInt8] = [0x00, 0x00, 0x00, 0x02, 0xBE, 0xEF, 0x07]
        let bytes = old.encoded() + extra
        guard case .hello(let h) = try SyncMessage.decode(bytes) else { Issue.record("not a hello"); return }
        #expect(h.unknown == extra)
        #expect(SyncMessage.hello(h).encoded() == bytes)
    }

    @Test func malformedMessagesAreRefused() {
        let bad: [(String, [UInt8])] = [
            ("empty", []),
            ("unknown tag", [0x00]),
            ("unknown tag 0xff", [0xFF, 1, 2]),
            ("trailing bytes", [0x07, 0x00]),
            ("truncated ping", [0x08, 0, 0, 0]),
            ("negative ack", [0x04, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            ("negative since", [0x02, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("huge request count", [0x06, 0xFF, 0xFF, 0xFF, 0xFF]),
            ("request count beyond data", [0x06, 0, 0, 0, 2] + [UInt8](repeating: 0, count: 33)),
            ("huge capability count", [0x01, 0, 1, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF]),
            ("invalid UTF-8", [0x0A, 0, 0, 0, 2, 0xC3, 0x28]),
            ("string past the end", [0x0A, 0, 0, 0, 9, 0x41]),
            ("changes flags", [0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0]),
            ("changes bad state", [0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0, 0, 0, 1, 0, 0, 0, 1, 9]),
            ("changes huge count", [0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]),
            ("reconcile without ranges", [0x05]),
            ("reconcile without infinity", [0x05, 0x01, 0x00, 0x00]),
            ("reconcile non-minimal varint", [0x05, 0x80, 0x01, 0x00, 0x00, 0x00, 0xFF, 0x00]),
            ("reconcile infinity with time", [0x05, 0x01, 0xFF, 0x00]),
            ("reconcile prefix too long", [0x05, 0x01, 33] + [UInt8](repeating: 1, count: 33) + [0x00, 0x00, 0xFF, 0x00]),
            ("reconcile unknown mode", [0x05, 0x00, 0xFF, 0x03]),
            ("reconcile bounds not ascending", [0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00]),
            ("reconcile empty first range", [0x05, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00]),
            ("reconcile time overflow", [0x05, 0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x00,
                                         0x01, 0x00, 0x00, 0x00, 0xFF, 0x00]),
            ("reconcile id list beyond data", [0x05, 0x00, 0xFF, 0x02, 0x02] + [UInt8](repeating: 0, count: 32)),
            ("reconcile bytes after infinity", [0x05, 0x00, 0xFF, 0x00, 0x00]),
        ]
        for (label, bytes) in bad {
            #expect(throws: WireError.self, "\(label)") { try SyncMessage.decode(bytes) }
        }
        do {
            _ = try SyncMessage.decode([0x06, 0xFF, 0xFF, 0xFF, 0xFF])
        } catch {
            #expect(error.description.contains("cannot fit"), "\(error)")
        }
    }

    @Test func everyTruncationIsRefused() {
        for m in sampleSyncMessages(seed: 77) {
            let bytes = m.encoded()
            // A hello cut inside its unknown trailing bytes is a shorter valid hello.
            var required = bytes.count
            if case .hello(let h) = m { required -= h.unknown.count }
            for n in 0..<required {
                #expect(throws: WireError.self, "\(m) cut at \(n)") { try SyncMessage.decode(Array(bytes.prefix(n))) }
            }
        }
    }
}
