import HubSyncCore

/// An optional feature of the sync protocol, named in `hello` (protocol/SPEC.md 3.2).
///
/// Each side lists what it supports; a session uses what both list (``negotiate(ours:theirs:)``).
/// A name this implementation does not know is ignored, so a newer peer can add features.
public struct SyncCapability: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// `fastpath`: the delta exchange from the peer's watermark. Required in protocol version 1.
    public static let fastPath = SyncCapability(rawValue: "fastpath")
    /// `live`: changes after the fast path are pushed as they happen. Without it, a side sends
    /// only the fast path; the peer gets later changes at its next connection.
    public static let livePush = SyncCapability(rawValue: "live")
    /// `reconcile`: repair rounds (3.4). Without it on both sides, no round is started, and a
    /// `reconcile` message is a protocol error.
    public static let reconcile = SyncCapability(rawValue: "reconcile")

    /// What this implementation supports and lists in its hello.
    public static let supported: Set<SyncCapability> = [.fastPath, .livePush, .reconcile]
    /// What a peer's hello must list for a session to go on.
    public static let required: Set<SyncCapability> = [.fastPath]

    public var description: String { rawValue }

    /// The capabilities a session uses: those both sides list. Unknown names are ignored.
    ///
    /// - Throws: ``NetError`` with code `versionMismatch` when the peer lacks a required one.
    public static func negotiate(ours: Set<SyncCapability>, theirs: [String]) throws(NetError) -> Set<SyncCapability> {
        let theirs = Set(theirs.map(SyncCapability.init(rawValue:)))
        let missing = required.subtracting(theirs)
        guard missing.isEmpty else {
            let names = missing.map(\.rawValue).sorted().joined(separator: ", ")
            throw NetError(.versionMismatch, "the peer's hello lacks the capability \(names), which protocol version "
                + "\(Hello.currentProtocolVersion) requires; update HubSync on that device")
        }
        return ours.intersection(theirs)
    }
}
