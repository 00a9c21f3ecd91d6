public import HubSyncCore
import HubSyncCrypto

/// One record an importer makes from another tool's file: written as a local put.
public struct ImportedRecord: Sendable, Equatable {
    public var collection: String
    public var id: String
    public var fields: [String: Value]

    public init(collection: String, id: String, fields: [String: Value]) {
        self.collection = collection
        self.id = id
        self.fields = fields
    }
}

/// What an importer reports besides records: something it left out, and why.
public struct ImportNote: Sendable, Equatable {
    /// Where in the file: "conversation 3, node abc".
    public var place: String
    public var reason: String
    public init(place: String, reason: String) {
        self.place = place
        self.reason = reason
    }
}

/// Receives what an importer reads, in file order.
public protocol ImportSink {
    mutating func record(_ record: ImportedRecord) throws
    mutating func skipped(_ note: ImportNote)
}

/// Stable record IDs made from a source's own IDs, so importing the same file again writes the
/// same records (protocol/SPEC.md 7.2).
public enum SourceID {
    /// `PREFIX.PART.PART…`, or, when that would pass the 256-byte limit of record IDs or holds a
    /// control character, `PREFIX.h` and 32 hex digits of the parts' BLAKE2b hash.
    public static func make(_ prefix: String, _ parts: String...) -> String {
        make(prefix, parts: parts)
    }

    public static func make(_ prefix: String, parts: [String]) -> String {
        let joined = ([prefix] + parts).joined(separator: ".")
        if joined.utf8.count <= 256, !joined.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return joined
        }
        return prefix + ".h" + hash(parts.joined(separator: "\u{0}"))
    }

    /// 32 hex digits of BLAKE2b-128 of the text.
    public static func hash(_ text: String) -> String { hash(bytes: Array(text.utf8)) }

    /// 32 hex digits of BLAKE2b-128 of the bytes.
    public static func hash(bytes: [UInt8]) -> String {
        Hex.encode(Blake2b.hash(bytes, outputLength: 16))
    }
}
