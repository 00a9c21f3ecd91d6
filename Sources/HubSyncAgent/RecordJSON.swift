import Foundation
import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto

/// The JSON shape of a record that `get` and `list` print; `names` (DeviceNames) name the
/// devices of its conflicts.
public func recordJSON(_ s: RecordState, names: [DeviceID: String] = [:]) -> Value {
    var out: [String: Value] = [
        "collection": .string(s.key.collection),
        "id": .string(s.key.id),
        "fields": .object(s.visibleFields),
        "deleted": .bool(!s.isAlive),
        "updated": .string(isoTime(s.updated)),
        "updated_hlc": .string(s.updated.description),
    ]
    let conflicts = s.conflictedFields
    if !conflicts.isEmpty {
        out["conflicts"] = .array(conflicts.map { conflictJSON(s, field: $0, names: names) })
    }
    return .object(out)
}

/// One conflicted field: its competing values, the visible winner first; each version names its
/// device by ID (`device`) and, when `names` has it, by name (`device_name`).
public func conflictJSON(_ s: RecordState, field: String, names: [DeviceID: String] = [:]) -> Value {
    let reg = s.fields[field]!
    return [
        "collection": .string(s.key.collection),
        "id": .string(s.key.id),
        "field": .string(field),
        "value": reg.value,
        "values": .array(reg.versions.map(\.value)),
        "versions": .array(reg.versions.map { v in
            ["value": v.value, "device": .string(v.stamp.device.description),
             "device_name": names[v.stamp.device].map { .string($0) } ?? .null, "hlc": .string(v.stamp.time.description),
             "written": .string(isoTime(v.stamp.time))]
        }),
    ]
}

/// A clock reading as the one time format of every JSON output: RFC 3339 in UTC with
/// milliseconds (`2026-11-30T22:41:07.123Z`). The HLC reading itself goes in fields named `…hlc`.
public func isoTime(_ t: Timestamp) -> String { rfc3339(millis: t.millis) }

