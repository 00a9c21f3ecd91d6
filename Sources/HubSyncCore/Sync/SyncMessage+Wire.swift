import HubSyncBase
/// The byte layout of sync messages (protocol/SPEC.md 3.1).
extension SyncMessage {
    /// The message's bytes: a tag byte, then its fields, big-endian.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .hello(let h):
            w.u8(Tag.hello.rawValue)
            w.u16(h.protocolVersion)
            w.u16(h.schemaVersion)
            w.u32(UInt32(h.capabilities.count))
            for c in h.capabilities { w.string(c) }
            w.string(h.logEpoch)
            w.u64(h.clock.rawValue)
            if let release = h.release { w.string(release) }
            w.bytes.append(contentsOf: h.unknown)
        case .fastPathRequest(let since, let epoch):
            w.u8(Tag.fastPathRequest.rawValue)
            w.u64(UInt64(bitPattern: since))
            w.string(epoch)
        case .changes(let batch):
            w.u8(Tag.changes.rawValue)
            w.u64(UInt64(bitPattern: batch.lastSequence))
            w.u8(batch.isFinal ? 1 : 0)
            w.u32(UInt32(batch.states.count))
            for s in batch.states { w.blob(CanonicalEncoding.encode(s)) }
        case .ack(let sequence):
            w.u8(Tag.ack.rawValue)
            w.u64(UInt64(bitPattern: sequence))
        case .reconcile(let m):
            w.u8(Tag.reconcile.rawValue)
            m.append(to: &w)
        case .request(let ids):
            w.u8(Tag.request.rawValue)
            w.u32(UInt32(ids.count))
            for id in ids { id.append(to: &w.bytes) }
        case .reconcileDone:
            w.u8(Tag.reconcileDone.rawValue)
        case .ping(let nonce):
            w.u8(Tag.ping.rawValue)
            w.u64(nonce)
        case .pong(let nonce):
            w.u8(Tag.pong.rawValue)
            w.u64(nonce)
        case .goodbye(let reason):
            w.u8(Tag.goodbye.rawValue)
            w.string(reason)
        case .statePart(let part):
            w.u8(Tag.statePart.rawValue)
            w.u64(UInt64(bitPattern: part.lastSequence))
            w.u32(UInt32(part.total))
            w.u32(UInt32(part.offset))
            w.blob(part.bytes)
        case .repairAsk:
            w.u8(Tag.repairAsk.rawValue)
        }
        return w.bytes
    }

    /// Decodes one message, checking every tag, length and count against the bytes given; never
    /// allocates more than a small multiple of `bytes.count`.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> SyncMessage {
        var r = WireReader(bytes, context: "message")
        let rawTag = try r.u8()
        guard let tag = Tag(rawValue: rawTag) else { throw r.error("unknown message type \(rawTag)") }
        r.context = "\(tag)"
        let message: SyncMessage
        switch tag {
        case .hello:
            message = .hello(try readHello(&r))
        case .fastPathRequest:
            let since = Int64(bitPattern: try r.u64())
            guard since >= 0 else { throw r.error("negative sequence \(since)") }
            message = .fastPathRequest(since: since, epoch: try r.string("log epoch"))
        case .changes:
            message = .changes(try readChanges(&r))
        case .ack:
            let sequence = Int64(bitPattern: try r.u64())
            guard sequence >= 0 else { throw r.error("negative sequence \(sequence)") }
            message = .ack(sequence: sequence)
        case .reconcile:
            message = .reconcile(try ReconcileMessage.read(from: &r))
        case .request:
            let n = try r.count(minSize: ItemID.byteCount, of: "IDs")
            var ids: [ItemID] = []
            ids.reserveCapacity(n)
            for _ in 0..<n { ids.append(ItemID(bytes: try r.take(ItemID.byteCount))!) }
            message = .request(ids: ids)
        case .reconcileDone:
            message = .reconcileDone
        case .ping:
            message = .ping(nonce: try r.u64())
        case .pong:
            message = .pong(nonce: try r.u64())
        case .goodbye:
            message = .goodbye(reason: try r.string("reason"))
        case .statePart:
            message = .statePart(try readStatePart(&r))
        case .repairAsk:
            message = .repairAsk
        }
        try r.expectEnd()
        return message
    }

    private static func readHello(_ r: inout WireReader) throws(WireError) -> Hello {
        let protocolVersion = try r.u16()
        let schemaVersion = try r.u16()
        let n = try r.count(minSize: 4, of: "capabilities")
        var capabilities: [String] = []
        capabilities.reserveCapacity(n)
        for i in 0..<n { capabilities.append(try r.string("capability \(i)")) }
        let epoch = try r.string("log epoch")
        let clock = Timestamp(rawValue: try r.u64())
        // The release, when the sender names one (0.2.0 on): a string of 1 to 64 bytes. Bytes
        // that do not read as one are a newer peer's and are kept as they are.
        var release: String?
        var probe = r
        if r.remaining > 0, let text = try? probe.string("release"), (1...Hello.maxReleaseBytes).contains(text.utf8.count),
           !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            release = text
            r = probe
        }
        let unknown = Array(try r.take(r.remaining))
        return Hello(protocolVersion: protocolVersion, schemaVersion: schemaVersion, capabilities: capabilities,
                     logEpoch: epoch, clock: clock, release: release, unknown: unknown)
    }

    private static func readStatePart(_ r: inout WireReader) throws(WireError) -> StatePart {
        let lastSequence = Int64(bitPattern: try r.u64())
        guard lastSequence >= 0 else { throw r.error("negative sequence \(lastSequence)") }
        let total = Int(try r.u32())
        let offset = Int(try r.u32())
        guard total > 0, total <= StatePart.maxStateBytes else {
            throw r.error("a state of \(total) bytes; states sent in parts are 1 to \(StatePart.maxStateBytes) bytes")
        }
        let length = Int(try r.u32())
        guard length > 0, length <= StatePart.maxPieceBytes, offset <= total - length else {
            throw r.error("a piece of \(length) bytes at offset \(offset) of a \(total)-byte state; pieces are 1 to "
                + "\(StatePart.maxPieceBytes) bytes within the state")
        }
        let bytes = Array(try r.take(length))
        return StatePart(lastSequence: lastSequence, total: total, offset: offset, bytes: bytes)
    }

    private static func readChanges(_ r: inout WireReader) throws(WireError) -> ChangeBatch {
        let lastSequence = Int64(bitPattern: try r.u64())
        guard lastSequence >= 0 else { throw r.error("negative sequence \(lastSequence)") }
        let flags = try r.u8()
        guard flags & ~1 == 0 else { throw r.error("unknown flags \(flags)") }
        let n = try r.count(minSize: 4, of: "states")
        var states: [RecordState] = []
        states.reserveCapacity(n)
        for i in 0..<n {
            let length = Int(try r.u32())
            let start = r.position
            let slice = try r.take(length)
            do {
                states.append(try CanonicalEncoding.decode(Array(slice)))
            } catch {
                r.position = start
                throw r.error("state \(i): \(error.message) at byte \(error.offset) of the state")
            }
        }
        return ChangeBatch(states: states, lastSequence: lastSequence, isFinal: flags & 1 == 1)
    }
}
