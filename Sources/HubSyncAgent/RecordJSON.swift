import Foundation
public import HubSyncCore

/// The JSON shape of a record that `get` and `list` print.
public func recordJSON(_ s: RecordState) -> Value {
    var out: [String: Value] = [
        "collection": .string(s.key.collection),
        "id": .string(s.key.id),
        "fields": .object(s.visibleFields),
        "deleted": .bool(!s.isAlive),
        "updated": .string(s.updated.description),
    ]
    let conflicts = s.conflictedFields
    if !conflicts.isEmpty {
        out["conflicts"] = .array(conflicts.map { conflictJSON(s, field: $0) })
    }
    return .object(out)
}

/// One conflicted field: its competing values, the visible winner first.
public func conflictJSON(_ s: RecordState, field: String) -> Value {
    let reg = s.fields[field]!
    return [
        "collection": .string(s.key.collection),
        "id": .string(s.key.id),
        "field": .string(field),
        "value": reg.value,
        "values": .array(reg.versions.map(\.value)),
        "versions": .array(reg.versions.map { v in
            ["value": v.value, "device": .string(v.stamp.device.description), "time": .string(v.stamp.time.description),
             "written": .string(isoTime(v.stamp.time))]
        }),
    ]
}

/// A clock reading as an ISO 8601 time, for people.
public func isoTime(_ t: Timestamp) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date(timeIntervalSince1970: Double(t.millis) / 1000))
}

