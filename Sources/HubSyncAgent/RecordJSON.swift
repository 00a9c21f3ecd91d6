import Foundation
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
///
/// Written out by hand from the milliseconds (the proleptic Gregorian calendar, days to a civil
/// date as in Howard Hinnant's `civil_from_days`): a change feed writes one for every version
/// of every field of every record it sends, and making an `ISO8601DateFormatter` for each was
/// most of the feed's time. `RecordJSONTests` compares it with Foundation's formatter.
public func isoTime(_ t: Timestamp) -> String {
    let millis = t.millis  // at most 2^48 − 1: the year stays below 10,900
    let seconds = millis / 1000, days = Int64(seconds / 86_400), secondOfDay = Int(seconds % 86_400)
    let z = days + 719_468  // days since 0000-03-01
    let era = z / 146_097, dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    var out: [UInt8] = []
    out.reserveCapacity(24)
    func put(_ value: Int, digits: Int) {
        var text = Array(String(value).utf8)
        if text.count < digits { text.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits - text.count), at: 0) }
        out += text
    }
    put(Int(year), digits: 4); out.append(UInt8(ascii: "-"))
    put(Int(month), digits: 2); out.append(UInt8(ascii: "-"))
    put(Int(day), digits: 2); out.append(UInt8(ascii: "T"))
    put(secondOfDay / 3600, digits: 2); out.append(UInt8(ascii: ":"))
    put(secondOfDay / 60 % 60, digits: 2); out.append(UInt8(ascii: ":"))
    put(secondOfDay % 60, digits: 2); out.append(UInt8(ascii: "."))
    put(Int(millis % 1000), digits: 3); out.append(UInt8(ascii: "Z"))
    return String(decoding: out, as: UTF8.self)
}

