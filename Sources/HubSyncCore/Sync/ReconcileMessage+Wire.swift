import HubSyncBase
/// The byte layout of reconciliation messages (protocol/SPEC.md 3.4).
extension ReconBound {
    /// `varint(time − previous bound's time) ‖ u8 prefix length ‖ prefix`, or `00 ff` for infinity.
    func encodedSize(after previousTime: UInt64) -> Int {
        isInfinity ? 2 : Varint.size(time &- previousTime) + 1 + prefixLength
    }

    func append(after previousTime: UInt64, to w: inout ByteWriter) {
        if isInfinity {
            w.varint(0)
            w.u8(0xFF)
            return
        }
        w.varint(time &- previousTime)
        w.u8(UInt8(prefixLength))
        w.bytes.append(contentsOf: padded.bytes.prefix(prefixLength))
    }
}

extension ReconcileRange {
    enum ModeTag: UInt8 { case skip = 0, fingerprint = 1, idList = 2 }

    /// The range's size on the wire when the previous bound had time `previousTime`.
    func encodedSize(after previousTime: UInt64) -> Int {
        let payload = switch mode {
        case .skip: 0
        case .fingerprint: Fingerprint.byteCount
        case .idList(let ids): Varint.size(UInt64(ids.count)) + ItemID.byteCount * ids.count
        }
        return upperBound.encodedSize(after: previousTime) + 1 + payload
    }

    func append(after previousTime: UInt64, to w: inout ByteWriter) {
        upperBound.append(after: previousTime, to: &w)
        switch mode {
        case .skip:
            w.u8(ModeTag.skip.rawValue)
        case .fingerprint(let fp):
            w.u8(ModeTag.fingerprint.rawValue)
            fp.append(to: &w.bytes)
        case .idList(let ids):
            w.u8(ModeTag.idList.rawValue)
            w.varint(UInt64(ids.count))
            for id in ids { id.append(to: &w.bytes) }
        }
    }
}

extension ReconcileMessage {
    /// The size of the ranges on the wire (the message tag not included).
    public var encodedSize: Int {
        var size = 0, previous: UInt64 = 0
        for r in ranges {
            size += r.encodedSize(after: previous)
            previous = r.upperBound.time
        }
        return size
    }

    func append(to w: inout ByteWriter) {
        var previous: UInt64 = 0
        for r in ranges {
            r.append(after: previous, to: &w)
            previous = r.upperBound.time
        }
    }

    /// Reads ranges up to and including the one ending at infinity.
    static func read(from r: inout WireReader) throws(WireError) -> ReconcileMessage {
        var ranges: [ReconcileRange] = []
        var previousTime: UInt64 = 0
        while true {
            let delta = try r.varint()
            let length = try r.u8()
            let bound: ReconBound
            if length == 0xFF {
                guard delta == 0 else { throw r.error("infinity bound with a time") }
                bound = .infinity
            } else {
                guard length <= ItemID.byteCount else { throw r.error("ID prefix of \(length) bytes") }
                let (time, overflow) = previousTime.addingReportingOverflow(delta)
                guard !overflow else { throw r.error("bound time overflows") }
                bound = ReconBound(time: time, idPrefix: try r.take(Int(length)))
                previousTime = time
            }
            let mode: ReconcileRange.Mode
            switch ReconcileRange.ModeTag(rawValue: try r.u8()) {
            case .skip: mode = .skip
            case .fingerprint: mode = .fingerprint(Fingerprint(bytes: try r.take(Fingerprint.byteCount))!)
            case .idList:
                let n = try r.varint()
                guard n <= UInt64(r.remaining / ItemID.byteCount) else {
                    throw r.error("\(n) IDs cannot fit in the \(r.remaining) bytes left")
                }
                var ids: [ItemID] = []
                ids.reserveCapacity(Int(n))
                for _ in 0..<n { ids.append(ItemID(bytes: try r.take(ItemID.byteCount))!) }
                mode = .idList(ids)
            case nil: throw r.error("unknown range mode")
            }
            ranges.append(ReconcileRange(upperBound: bound, mode: mode))
            if bound.isInfinity { break }
        }
        let message = ReconcileMessage(ranges: ranges)
        try message.validate()
        return message
    }
}
