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
        lengthPrefixed(in: bytes, at: 1).map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    /// The collection name's and the ID's bytes in a record's canonical encoding (1.6.2: a
    /// format byte, then each as a 32-bit big-endian length and its bytes), without decoding
    /// the rest; nil when it is cut short.
    public static func collectionAndID(ofEncoded bytes: [UInt8]) -> (collection: ArraySlice<UInt8>, id: ArraySlice<UInt8>)? {
        guard let collection = lengthPrefixed(in: bytes, at: 1), let id = lengthPrefixed(in: bytes, at: collection.upperBound) else {
            return nil
        }
        return (bytes[collection], bytes[id])
    }

    /// Where the bytes of the length-prefixed string at `start` are; nil when cut short.
    private static func lengthPrefixed(in bytes: [UInt8], at start: Int) -> Range<Int>? {
        guard bytes.count >= start + 4 else { return nil }
        let n = Int(bytes[start]) << 24 | Int(bytes[start + 1]) << 16 | Int(bytes[start + 2]) << 8 | Int(bytes[start + 3])
        guard bytes.count >= start + 4 + n else { return nil }
        return start + 4 ..< start + 4 + n
    }
}
