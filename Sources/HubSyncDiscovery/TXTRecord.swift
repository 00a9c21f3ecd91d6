/// TXT record helpers: `key=value` strings, as DNS-SD defines them (RFC 6763, section 6).
enum TXTRecord {
    /// Parses `key=value` entries; keys are case-insensitive, the first occurrence wins.
    static func parse(_ entries: [[UInt8]]) -> [String: String] {
        var result: [String: String] = [:]
        for entry in entries where !entry.isEmpty {
            let key: String, value: String
            if let eq = entry.firstIndex(of: UInt8(ascii: "=")) {
                key = String(decoding: entry[..<eq], as: UTF8.self).lowercased()
                value = String(decoding: entry[(eq + 1)...], as: UTF8.self)
            } else {
                key = String(decoding: entry, as: UTF8.self).lowercased()
                value = ""
            }
            if !key.isEmpty, result[key] == nil { result[key] = value }
        }
        return result
    }

    /// Encodes key/value pairs as `key=value` strings, sorted by key (stable adverts).
    static func encode(_ txt: [String: String]) -> [String] {
        txt.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }
}
