import HubSyncBase
import HubSyncCrypto

/// The request/response protocol between a device and the peer that stores its repository
/// (protocol/SPEC.md 5.12). Both ends use these encodings; the transport (the marker frame, a
/// SIGMA-authenticated, secretstream-encrypted connection, messages split into frames) is
/// HubSyncNet's `BackupClient` and `BackupChannel`.
public enum PeerProtocol {

    /// What a request asks for.
    public enum Operation: UInt8, Sendable {
        case put = 1, get = 2, range = 3, list = 4, delete = 5, exists = 6, prune = 7, usage = 8
    }

    /// How a response ended.
    public enum Status: UInt8, Sendable {
        case ok = 0, notFound = 1, overQuota = 2, refused = 3, io = 4, invalid = 5
    }

    /// One request: an operation, a file or folder name, and the operation's arguments.
    public struct Request: Sendable {
        public var operation: Operation
        public var name: String
        public var replacing = false
        public var offset: UInt64 = 0
        public var length: UInt32 = 0
        public var data: [UInt8] = []

        public init(_ operation: Operation, _ name: String = "") {
            self.operation = operation
            self.name = name
        }

        /// `op ‖ u16 name length ‖ name ‖ arguments` (put: `u8 flags ‖ data`; range: `u64 offset ‖
        /// u32 length`; prune: the signed plan).
        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.u8(operation.rawValue)
            let n = Array(name.utf8)
            w.u16(UInt16(n.count))
            w.append(n)
            switch operation {
            case .put: w.u8(replacing ? 1 : 0); w.append(data)
            case .range: w.u64(offset); w.u32(length)
            case .prune: w.append(data)
            default: break
            }
            return w.bytes
        }

        /// Decodes a request; anything that does not parse is `invalidInput` (status 5, malformed),
        /// never an I/O failure the client would retry.
        public static func decode(_ bytes: [UInt8]) throws(BackupError) -> Request {
            do { return try decodeFields(bytes) } catch {
                if error.code == .invalidInput { throw error }
                throw BackupError(.invalidInput, "a malformed backup request: \(error.message)")
            }
        }

        static func decodeFields(_ bytes: [UInt8]) throws(BackupError) -> Request {
            var r = RepositoryReader(bytes, context: "backup request")
            guard let op = Operation(rawValue: try r.u8()) else {
                throw BackupError(.invalidInput, "unknown backup request \(bytes.first ?? 0)")
            }
            let length = Int(try r.u16())
            guard let name = String(validating: try r.take(length), as: UTF8.self) else {
                throw BackupError(.invalidInput, "a file name in a backup request is not UTF-8")
            }
            var q = Request(op, name)
            switch op {
            case .put: q.replacing = try r.u8() & 1 == 1; q.data = Array(try r.take(r.remaining))
            case .range: q.offset = try r.u64(); q.length = try r.u32()
            case .prune: q.data = Array(try r.take(r.remaining))
            default: break
            }
            return q
        }
    }

    /// A response: `status ‖ body` (ok: the operation's result; otherwise a UTF-8 message).
    public static func response(_ status: Status, _ body: [UInt8]) -> [UInt8] { [status.rawValue] + body }

    /// A failure response carrying `error`'s message.
    public static func response(_ error: BackupError) -> [UInt8] {
        let status: Status = switch error.code {
        case .notFound: .notFound
        case .overQuota: .overQuota
        case .refused: .refused
        case .invalidInput: .invalid
        default: .io
        }
        return response(status, Array(error.message.utf8))
    }

    /// Splits a response into its status and body, turning failures into errors.
    public static func result(_ bytes: [UInt8], from peer: String) throws(BackupError) -> ArraySlice<UInt8> {
        guard let first = bytes.first, let status = Status(rawValue: first) else {
            throw BackupError(.io, "\(peer) sent a malformed answer; is it a HubSync agent of this version?")
        }
        let body = bytes.dropFirst()
        let text = String(decoding: body, as: UTF8.self)
        switch status {
        case .ok: return body
        case .notFound: throw BackupError(.notFound, text)
        case .overQuota: throw BackupError(.overQuota, "\(peer): \(text)")
        case .refused: throw BackupError(.refused, "\(peer) refused: \(text)")
        case .invalid: throw BackupError(.invalidInput, "\(peer) rejected the request: \(text)")
        case .io: throw BackupError(.io, "\(peer): \(text)")
        }
    }

    /// A `list` answer: `u32 count ‖ (u16 name length ‖ name ‖ u64 size)*`.
    public static func encodeList(_ files: [(name: String, size: Int)]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(files.count))
        for f in files {
            let n = Array(f.name.utf8)
            w.u16(UInt16(n.count))
            w.append(n)
            w.u64(UInt64(f.size))
        }
        return w.bytes
    }

    public static func decodeList(_ bytes: [UInt8]) throws(BackupError) -> [(name: String, size: Int)] {
        var r = RepositoryReader(bytes, context: "list answer")
        var out: [(String, Int)] = []
        for _ in 0..<Int(try r.u32()) {
            let n = Int(try r.u16())
            let name = String(decoding: try r.take(n), as: UTF8.self)
            out.append((name, Int(try r.u64())))
        }
        return out
    }

    /// A `usage` answer: `u64 used ‖ u64 quota ‖ u64 in quarantine` (bytes; quarantine counts in used).
    public struct Usage: Sendable, Equatable {
        public var used: Int
        public var quota: Int
        public var quarantined: Int

        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.u64(UInt64(used)); w.u64(UInt64(quota)); w.u64(UInt64(quarantined))
            return w.bytes
        }

        public static func decode(_ bytes: [UInt8]) throws(BackupError) -> Usage {
            var r = RepositoryReader(bytes, context: "usage answer")
            return Usage(used: Int(try r.u64()), quota: Int(try r.u64()), quarantined: Int(try r.u64()))
        }
    }

    /// A `prune` answer: `u64 release time (Unix ms) ‖ u32 count ‖ (u16 length ‖ name)*`, the
    /// files moved into quarantine.
    public static func encodeMoved(release: UInt64, names: [String]) -> [UInt8] {
        var w = ByteWriter()
        w.u64(release)
        w.u32(UInt32(names.count))
        for n in names { let b = Array(n.utf8); w.u16(UInt16(b.count)); w.append(b) }
        return w.bytes
    }

    public static func decodeMoved(_ bytes: [UInt8]) throws(BackupError) -> (release: UInt64, names: [String]) {
        var r = RepositoryReader(bytes, context: "prune answer")
        let release = try r.u64()
        var names: [String] = []
        for _ in 0..<Int(try r.u32()) { names.append(String(decoding: try r.take(Int(try r.u16())), as: UTF8.self)) }
        return (release, names)
    }

    /// The longest range a `range` request may ask for: far more than any blob a repository
    /// reads from a pack, well under a message's 64 MiB.
    public static let maxRangeLength: UInt32 = 32 << 20
    /// The largest signed prune plan a peer takes (about 150,000 names).
    public static let maxPrunePlanSize = 8 << 20
    /// The most `/`-separated parts a name may have (a repository uses at most 3: `data/XX/ID`).
    public static let maxNameDepth = 4

    /// Whether a name is one a repository uses: relative, `/`-separated non-empty parts of
    /// `[A-Za-z0-9._-]`, none `.`/`..` or starting with `.tmp-`, at most 512 bytes and
    /// ``maxNameDepth`` parts.
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 512 else { return false }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= maxNameDepth else { return false }
        for part in parts {
            // 255 bytes: what a file system takes for one name, so a longer part is malformed, not an I/O failure.
            guard !part.isEmpty, part.utf8.count <= 255, part != ".", part != "..", !part.hasPrefix(".tmp-") else { return false }
            guard part.utf8.allSatisfy({ c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                    || c == 0x2e || c == 0x5f || c == 0x2d
            }) else { return false }
        }
        return true
    }
}

/// A prune plan: the files a group member asks the peer to take out of its repository (into
/// quarantine), signed with the member's identity key.
///
/// Signed bytes: `"HSPP" ‖ 0x01 ‖ signer public key (32) ‖ storing peer's device ID (32) ‖
/// u64 time (Unix ms) ‖ u32 count ‖ (u16 length ‖ name)*`; the plan is those bytes followed by
/// the 64-byte Ed25519 signature.
public struct PrunePlan: Sendable {
    public static let magic: [UInt8] = Array("HSPP".utf8) + [1]
    public var signer: PublicSigningKey
    public var server: DeviceID
    public var time: UInt64
    public var names: [String]

    public init(signer: PublicSigningKey, server: DeviceID, time: UInt64, names: [String]) {
        self.signer = signer
        self.server = server
        self.time = time
        self.names = names
    }

    /// The bytes the signature covers.
    public var signedBytes: [UInt8] {
        var w = ByteWriter()
        w.append(Self.magic)
        w.append(signer.rawRepresentation)
        w.append(server.bytes)
        w.u64(time)
        w.u32(UInt32(names.count))
        for n in names { let b = Array(n.utf8); w.u16(UInt16(b.count)); w.append(b) }
        return w.bytes
    }

    /// The plan signed by `key` (whose public half must be `signer`).
    public func signed(by key: SigningKey) -> [UInt8] {
        let bytes = signedBytes
        return bytes + key.signature(for: bytes)
    }

    /// Reads a signed plan and checks its signature.
    public static func verify(_ bytes: [UInt8]) throws(BackupError) -> PrunePlan {
        guard bytes.count >= 5 + 32 + 32 + 8 + 4 + 64, Array(bytes.prefix(5)) == magic else {
            throw BackupError(.invalidInput, "the prune plan is malformed")
        }
        let body = Array(bytes.dropLast(64)), signature = Array(bytes.suffix(64))
        var r = RepositoryReader(body, context: "prune plan", from: 5)
        let signer: PublicSigningKey
        do { signer = try PublicSigningKey(rawRepresentation: try r.take(32)) } catch {
            throw BackupError(.invalidInput, "the prune plan's signer key is invalid")
        }
        guard let server = try? DeviceID(bytes: try r.take(32)) else {
            throw BackupError(.invalidInput, "the prune plan's peer ID is invalid")
        }
        let time = try r.u64()
        var names: [String] = []
        for _ in 0..<Int(try r.u32()) {
            guard let name = String(validating: try r.take(Int(try r.u16())), as: UTF8.self) else {
                throw BackupError(.invalidInput, "a name in the prune plan is not UTF-8")
            }
            names.append(name)
        }
        guard r.remaining == 0 else { throw BackupError(.invalidInput, "the prune plan has trailing bytes") }
        guard signer.isValidSignature(signature, for: body) else {
            throw BackupError(.refused, "the prune plan's signature does not verify; nothing was removed")
        }
        return PrunePlan(signer: signer, server: server, time: time, names: names)
    }
}
