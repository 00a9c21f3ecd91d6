public import HubSyncCrypto

/// The JSON form of a record's CRDT state, as exports carry it (protocol/SPEC.md, "Export").
public enum StateJSON {
    /// The state as a JSON object: `cl`, `updated`, `fields` (context and versions), `sets`.
    public static func object(_ s: RecordState) -> Value {
        var fields: [String: Value] = [:]
        for (name, reg) in s.fields {
            var ctx: [String: Value] = [:]
            for e in reg.context.entries { ctx[e.device.hex] = .string(e.time.description) }
            let versions: [Value] = reg.versions.map {
                ["t": .string($0.stamp.time.description), "d": .string($0.stamp.device.hex), "v": $0.value]
            }
            fields[name] = ["ctx": .object(ctx), "versions": .array(versions)]
        }
        var sets: [String: Value] = [:]
        for (name, set) in s.sets {
            let elems = set.lengths.sorted { CanonicalEncoding.valueLess($0.key, $1.key) }
            sets[name] = .array(elems.map { ["v": $0.key, "cl": .int(Int64(clamping: $0.value))] })
        }
        return [
            "cl": .int(Int64(clamping: s.causalLength)),
            "updated": .string(s.updated.description),
            "fields": .object(fields),
            "sets": .object(sets),
        ]
    }

    /// Reads a state object back; every malformed part is named in the error.
    public static func state(key: RecordKey, from v: Value) throws(ValidationFailure) -> RecordState {
        guard let o = v.objectValue else { throw ValidationFailure("\"state\" must be an object") }
        guard case .int(let cl) = o["cl"] ?? .null, cl >= 0 else {
            throw ValidationFailure("state.cl must be a non-negative integer")
        }
        let updated = try timestamp(o["updated"], "state.updated")
        guard let fieldsObject = o["fields"]?.objectValue, let setsObject = o["sets"]?.objectValue else {
            throw ValidationFailure("state.fields and state.sets must be objects")
        }
        var fields: [String: Register] = [:]
        for (name, fv) in fieldsObject {
            guard let f = fv.objectValue, let ctxObj = f["ctx"]?.objectValue, let vs = f["versions"]?.arrayValue,
                  !vs.isEmpty else {
                throw ValidationFailure("state.fields.\(name) needs \"ctx\" and a non-empty \"versions\"")
            }
            var ctx: [(device: DeviceID, time: Timestamp)] = []
            for (dev, t) in ctxObj {
                ctx.append((try device(dev, "state.fields.\(name).ctx"), try timestamp(t, "state.fields.\(name).ctx")))
            }
            var versions: [Version] = []
            for ver in vs {
                guard let vo = ver.objectValue, let value = vo["v"], let d = vo["d"]?.stringValue else {
                    throw ValidationFailure("state.fields.\(name).versions holds an entry without \"v\" or \"d\"")
                }
                let stamp = Stamp(time: try timestamp(vo["t"], "state.fields.\(name).versions"),
                                  device: try device(d, "state.fields.\(name).versions"))
                guard !versions.contains(where: { $0.stamp == stamp }) else {
                    throw ValidationFailure("state.fields.\(name).versions has two versions with one stamp")
                }
                versions.append(Version(stamp: stamp, value: value))
            }
            fields[name] = Register(versions: versions, context: CausalContext(entries: ctx))
        }
        var sets: [String: CausalSet] = [:]
        for (name, sv) in setsObject {
            guard let elems = sv.arrayValue else { throw ValidationFailure("state.sets.\(name) must be an array") }
            var lengths: [Value: UInt64] = [:]
            for e in elems {
                guard let eo = e.objectValue, let v = eo["v"], case .int(let l) = eo["cl"] ?? .null, l >= 0 else {
                    throw ValidationFailure("state.sets.\(name) holds an entry without \"v\" and a causal length \"cl\"")
                }
                guard lengths.updateValue(UInt64(l), forKey: v) == nil else {
                    throw ValidationFailure("state.sets.\(name) lists one element twice")
                }
            }
            sets[name] = CausalSet(lengths: lengths)
        }
        return RecordState(key: key, causalLength: UInt64(cl), updated: updated, fields: fields, sets: sets)
    }

    private static func timestamp(_ v: Value?, _ at: String) throws(ValidationFailure) -> Timestamp {
        guard let s = v?.stringValue, let t = Timestamp(text: s) else {
            throw ValidationFailure("\(at): expected a clock reading \"MILLIS:COUNTER\"")
        }
        return t
    }

    private static func device(_ s: String, _ at: String) throws(ValidationFailure) -> DeviceID {
        do { return try DeviceID(hex: s) } catch { throw ValidationFailure("\(at): \"\(s)\" is not a device (64 hex digits)") }
    }
}
