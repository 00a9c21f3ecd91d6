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

    /// `parts`: a record state larger than a `changes` batch travels as `statePart` messages
    /// (3.5). Without it, such a state is sent whole when it fits a frame, and otherwise not at
    /// all: status names the record and the reason.
    public static let parts = SyncCapability(rawValue: "parts")

    /// What this implementation supports and lists in its hello.
    public static let supported: Set<SyncCapability> = [.fastPath, .livePush, .reconcile, .parts, .protocol2, .repairAsk]

    /// `repair-ask`: the side that accepted a session may send `repairAsk` (tag 64, 3.4), and the
    /// dialling side then runs a repair round (the dashboard's Sync now on either device).
    public static let repairAsk = SyncCapability(rawValue: "repair-ask")

    /// `protocol-2`: this side speaks protocol version 2 (SPEC 3.6): it stores and relays records
    /// of collections it does not know and ignores optional message kinds (tags 64–127). A
    /// session speaks the highest version both sides list (``protocolVersion(negotiated:)``).
    public static let protocol2 = SyncCapability(rawValue: "protocol-2")

    /// The protocol version a session speaks: the highest both hellos list (`protocol-N`
    /// capabilities), 1 when they list none; the hello's own version field stays 1, which every
    /// release reads.
    public static func protocolVersion(negotiated: Set<SyncCapability>) -> Int {
        negotiated.compactMap { $0.rawValue.hasPrefix("protocol-") ? Int($0.rawValue.dropFirst(9)) : nil }.max() ?? 1
    }
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
