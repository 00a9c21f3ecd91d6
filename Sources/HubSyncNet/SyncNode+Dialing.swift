import HubSyncBase
public import HubSyncCrypto
import HubSyncStore
public import NIOCore
import NIOPosix

/// The node's dialers: one per known peer, and one per address discovery finds.
extension SyncNode {
    /// Keeps one peer connected: dials its address, and after a failure or disconnect dials again
    /// with backoff (0.25 s doubling to 30 s), until cancelled.
    ///
    /// A connection that lasted resets the backoff; one that ended soon does not, whichever side
    /// dialed it (refused, a clock too far off, a peer that hangs up at once): otherwise two
    /// agents that end each other's sessions would redial each other without pause.
    public func maintain(peer: DeviceID, address: String) async {
        let changes = sessionChanges.subscribe()
        defer { sessionChanges.unsubscribe(changes) }
        var delay: Duration = .milliseconds(250)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            if sessions.withLock({ $0[peer] != nil }) {
                // Connected (maybe by the peer dialing us): wait until that session ends.
                while sessions.withLock({ $0[peer] != nil }) {
                    guard await changes.wait() else { return }
                }
            } else {
                do {
                    try await dial(peer: peer, address: address)
                } catch {
                    setStatus(peer) { $0.connected = false; $0.reason = Self.describe(error, address: address, clockAdvice: clockSkewAdvice(error)) }
                    logger.debug("dial failed", metadata: peerMetadata(peer).merging(["error": "\(error)"]) { $1 })
                }
            }
            if ContinuousClock.now - started > .seconds(10) { delay = .milliseconds(250) }
            // A store that cannot keep what is sent (a full disk, here or there) waits 10 s at least:
            // every new session would re-send what cannot be kept.
            if statuses.withLock({ $0[peer]?.storeTrouble ?? false }) { delay = max(delay, .seconds(10)) }
            // Back off, unless the peer connects to us meanwhile (then wait for its session's end).
            var outcome = WakeSignal.Outcome.signalled
            let retry = ContinuousClock.now + delay
            while outcome == .signalled, sessions.withLock({ $0[peer] == nil }) {
                outcome = await changes.wait(until: retry)
            }
            if outcome == .ended { return }
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// Opens a framed TCP connection to `address` (HOST:PORT) without the secure channel, for
    /// pairing (CPace authenticates its plaintext frames); giving up after 5 s.
    static func connect(to address: String, group: any EventLoopGroup) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await SecureChannel.connect(to: address, group: group) { channel in
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
            try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
            return try SecureChannel.wrap(channel)
        }
    }

    func dial(peer: DeviceID, address: String) async throws {
        let admission = Admission(expected: peer)
        let channel = try await SecureChannel.open(to: address, for: .sync, identity: identity.signingKey, group: group) {
            [self] device in try await admit(device, for: .sync, admission)
        }
        await serveSync(channel, initiator: true)
    }

    /// Dials an address that discovery found, whoever answers there: the handshake refuses an
    /// untrusted device; a trusted one gets this address recorded as its last-known address (so
    /// it is dialled again without mDNS) and a session until it ends. Returns the device that
    /// answered and whether it was trusted; throws when nothing could be reached.
    public func dial(discovered address: String) async throws -> (device: DeviceID?, trusted: Bool) {
        let admission = Admission(expected: nil)
        do {
            let channel = try await SecureChannel.open(to: address, for: .sync, identity: identity.signingKey, group: group) {
                [self] device in try await admit(device, for: .sync, admission)
            }
            await serveSync(channel, initiator: true, discoveredAt: address)
        } catch let error as NetError {
            ended(admission, error)
        }
        return (admission.seen.withLock { $0 }, admission.trusted.withLock { $0 })
    }

    /// Splits `HOST:PORT` (`[v6]:PORT` too) into its parts; nil unless the host is there and the
    /// port is 0–65535 (a bigger number would wrap to another port).
    public static func split(_ address: String) -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }

    /// Whether `address` is `HOST:PORT` with a port a peer can listen on (1–65535).
    public static func isDialable(_ address: String) -> Bool {
        split(address).map { $0.1 > 0 } ?? false
    }

    /// Whether a session ended because a store could not keep what it was sent: this side's
    /// (``SyncSessionStateMachine/storeFailed(_:)``) or the peer's, as its goodbye says.
    static func isStoreTrouble(_ error: any Error) -> Bool {
        guard let e = error as? NetError else { return false }
        if e.code == .io, e.message.hasPrefix("the store failed") { return true }
        return e.code == .closed && SyncSessionStateMachine.storeFailureGoodbyes.contains { e.message.hasSuffix($0) }
    }

    /// Why a connection with a peer failed or ended, for status; `address` when this side dialed.
    /// `clockAdvice`: what to do about a clock-skew refusal, from ``clockSkewAdvice(_:)``.
    static func describe(_ error: any Error, address: String?, clockAdvice: String? = nil) -> String {
        if let e = error as? NetError {
            switch e.code {
            case .untrusted: return "refused: not trusted (\(e.message))"
            case .clockSkew: return "clock skew: \(e.message)\(clockAdvice.map { "; " + $0 } ?? "")"
            case .handshakeFailed: return "handshake failed: \(e.message)"
            default: return e.message
            }
        }
        guard let address else { return "the connection ended: \(NetError.describe(error))" }
        return "unreachable at \(address): \(NetError.describe(error))"
    }

    /// What to do when the peer refused this device's clock readings (its goodbye), from what this
    /// device's own clock shows: a saved reading ahead of the wall clock (the clock was set ahead
    /// once and then corrected) is this side's doing and passes with time; otherwise one of the two
    /// wall clocks is wrong, and this side cannot tell which. Nil for any other error.
    func clockSkewAdvice(_ error: any Error) -> String? {
        guard let e = error as? NetError, e.code == .clockSkew,
              e.message.hasPrefix(SyncSessionStateMachine.refusedByPeerPrefix) else { return nil }
        let lead = store.clockLeadMillis
        guard lead >= 1000 else {
            return "one of the two clocks is wrong: check the date and time on both devices (`timedatectl`, NTP)"
        }
        let wait = lead > store.maxDriftMillis ? (lead - store.maxDriftMillis + 999) / 1000 : 0
        return "this device's clock was set ahead before and has been set back: its last clock reading is still "
            + "\(lead / 1000) s ahead of its wall clock, and readings never go backwards, so its changes are refused "
            + "until the wall clock catches up (in about \(Self.spell(seconds: wait))); they are kept and sent then"
    }

    /// A wait in seconds in the largest unit that reads well.
    static func spell(seconds: UInt64) -> String {
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        if seconds < 172_800 { return "\(seconds / 3600) h" }
        return "\(seconds / 86400) days"
    }
}
