public import HubSyncBase

/// The reader of membership statements and key grants: fixed layouts of keys, hashes and
/// big-endian integers; what does not fit them is `.malformed`.
typealias MembershipReader = ByteReader<PairingError>

extension ByteReader where Failure == PairingError {
    /// A 32-byte Ed25519 public key.
    mutating func key() throws(PairingError) -> PublicSigningKey {
        let bytes = try take(PublicSigningKey.byteCount)
        do {
            return try PublicSigningKey(rawRepresentation: bytes)
        } catch {
            throw PairingError(code: .malformed, message: "\(context) holds an invalid key: \(error.message)")
        }
    }

    /// The next `n` bytes, as an array.
    mutating func bytes(_ n: Int) throws(PairingError) -> [UInt8] { Array(try take(n)) }
}

extension PairingError: ByteReadFailure {
    /// A statement or grant too short for its layout, or with a malformed field.
    public init(_ problem: ByteReadProblem) {
        let detail = switch problem.kind {
        case .truncated(let needed): "is truncated: \(needed) more bytes expected, \(problem.remaining) left"
        case .invalid(let text): text
        }
        self.init(.malformed, "\(problem.context) \(detail) (at byte \(problem.position))")
    }
}
