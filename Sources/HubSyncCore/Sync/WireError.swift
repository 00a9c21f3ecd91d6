/// A frame or sync message was refused: it is damaged, too large, or not HubSync's.
///
/// The network layer ends the connection on this error (protocol/SPEC.md, chapter 3, "Errors"); the message
/// names what was wrong, for the log.
public struct WireError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was wrong, e.g. "changes: state 3: truncated".
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "invalid sync message from the peer: \(message)" }
}
