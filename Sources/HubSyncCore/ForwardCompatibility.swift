/// The rules that let a device keep what a newer HubSync writes (protocol/SPEC.md 3.6).
public enum ForwardCompatibility {
    /// Whether a collection name may be stored and relayed though this version does not know it:
    /// 1 to 128 bytes of UTF-8, no control character. Local writes still take only the user
    /// collections (``HubCollection/named(_:)``).
    public static func isWellFormed(collection name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// Whether this version knows the collection (one of the five of SPEC 1.9).
    public static func isKnown(collection name: String) -> Bool { HubCollection(rawValue: name) != nil }

    /// The collection of a record's canonical encoding (SPEC 1.6.2: a format byte, then the
    /// collection as a length-prefixed string), without decoding the rest; nil when it is cut short.
    public static func collection(ofEncoded bytes: [UInt8]) -> String? {
        guard bytes.count >= 5 else { return nil }
        let n = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        guard bytes.count >= 5 + n else { return nil }
        return String(decoding: bytes[5 ..< 5 + n], as: UTF8.self)
    }
}
