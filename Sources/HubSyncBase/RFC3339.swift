/// Unix milliseconds as RFC 3339 in UTC: `2026-11-30T22:41:07.123Z`, or without `.123` when
/// `fractional` is false. The milliseconds are written as given, from the integer. A year past
/// 9999, which RFC 3339 does not cover, is written with five digits: an HLC reading (48-bit
/// milliseconds) reaches 10889, and the agent refuses clocks that far ahead.
///
/// Written out by hand (the proleptic Gregorian calendar; days to a civil date as in Howard
/// Hinnant's `civil_from_days`): a change feed writes one for every version of every field of
/// every record it sends, and making an `ISO8601DateFormatter` for each was most of the feed's
/// time. `RFC3339Tests` compares it with Foundation's formatter.
public func rfc3339(millis: UInt64, fractional: Bool = true) -> String {
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
    func put(_ value: Int64, digits: Int, then separator: Character) {
        let text = Array(String(value).utf8)
        if text.count < digits { out += repeatElement(UInt8(ascii: "0"), count: digits - text.count) }
        out += text
        out.append(separator.asciiValue!)
    }
    put(year, digits: 4, then: "-")
    put(month, digits: 2, then: "-")
    put(day, digits: 2, then: "T")
    put(Int64(secondOfDay / 3600), digits: 2, then: ":")
    put(Int64(secondOfDay / 60 % 60), digits: 2, then: ":")
    if fractional {
        put(Int64(secondOfDay % 60), digits: 2, then: ".")
        put(Int64(millis % 1000), digits: 3, then: "Z")
    } else {
        put(Int64(secondOfDay % 60), digits: 2, then: "Z")
    }
    return String(decoding: out, as: UTF8.self)
}
