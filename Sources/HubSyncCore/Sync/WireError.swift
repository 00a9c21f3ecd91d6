public import HubSyncBase

/// A frame or sync message was refused: it is damaged, too large, or not HubSync's.
///
/// The network layer ends the connection on this error (protocol/SPEC.md 3); the message
/// names what was wrong, for the log.
public struct WireError: CodedError, Sendable, Equatable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }

    /// A refused message; `message` says what was wrong, e.g. "changes: state 3: truncated".
    public init(_ message: String) { self.init(.malformed, message) }

    public var description: String { "invalid sync message from the peer: \(message)" }
}

extension WireError: ByteReadFailure {
    /// "CONTEXT: WHAT (at byte N)".
    public init(_ problem: ByteReadProblem) {
        let detail = switch problem.kind {
        case .truncated(let needed): "truncated: \(needed) more bytes expected, \(problem.remaining) left"
        case .invalid(let text): text
        }
        self.init("\(problem.context): \(detail) (at byte \(problem.position))")
    }
}
