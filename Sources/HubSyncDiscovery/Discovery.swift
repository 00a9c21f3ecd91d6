import Foundation
public import HubSyncCrypto

/// What to publish and browse for.
public struct DiscoveryConfiguration: Sendable {
    /// The DNS-SD service type, published and browsed alike.
    public var serviceType = Discovery.serviceType
    /// The sync port to advertise.
    public var port: Int
    /// TXT records (`v`, and `g` when there is a group key); see ``Discovery/txt(groupKey:at:)``.
    public var txt: [String: String]
    /// The service name: random per agent start, so adverts carry no device identity and the
    /// agent can tell its own advert from others.
    public var serviceName = Discovery.randomServiceName()
    /// Whether to advertise; `false` only browses.
    public var publishes = true
    /// How long to wait before trying again after the daemon or the system bus was unreachable.
    public var retryInterval: Duration = .seconds(2)

    public init(port: Int, txt: [String: String]) {
        self.port = port
        self.txt = txt
    }
}

/// Publishes this agent's `_hubsync._tcp` service and browses for others through the system's
/// avahi-daemon (avahi-client over D-Bus), on avahi's own thread.
///
/// Events arrive in ``events`` (one consumer). Avahi callbacks never block: they only update
/// state and yield events. When the daemon goes away the state becomes
/// ``DiscoveryState/daemonUnavailable(reason:)``; when it comes back the service is published
/// again and browsing starts over, so every peer is found again.
public final class Discovery: Sendable {
    /// The service type HubSync agents advertise.
    public static let serviceType = "_hubsync._tcp"
    /// The protocol version advertised in TXT `v=`.
    public static let protocolVersion = "1"

    let engine: AvahiEngine
    /// Found, lost and state events, in order; finishes after ``stop()``.
    public let events: AsyncStream<DiscoveryEvent>

    public init(_ configuration: DiscoveryConfiguration) {
        let (stream, continuation) = AsyncStream.makeStream(of: DiscoveryEvent.self, bufferingPolicy: .bufferingNewest(1024))
        events = stream
        engine = AvahiEngine(configuration: configuration, continuation: continuation)
    }

    deinit { engine.stop() }

    /// The TXT records for an advert: `v=1`, `g=` the blinded tag when there is a group key, and
    /// `i=` the public names of the open pairing invites, comma-separated, when there are any.
    public static func txt(groupKey: SymmetricKey?, invites: [String] = [], at date: Date = Date()) -> [String: String] {
        var txt = ["v": protocolVersion]
        if let groupKey { txt["g"] = GroupTag.tag(groupKey: groupKey, epoch: GroupTag.epoch(at: date)) }
        if !invites.isEmpty { txt["i"] = invites.joined(separator: ",") }
        return txt
    }

    /// The invite names an advert offers (its `i=` record), upper case.
    public static func invites(in txt: [String: String]) -> [String] {
        (txt["i"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
    }

    /// A fresh service name, `hubsync-` and 8 random hex digits.
    public static func randomServiceName() -> String {
        "hubsync-" + Hex.encode((0..<4).map { _ in UInt8.random(in: 0...255) })
    }

    /// Starts avahi's thread; connecting to the daemon happens there.
    public func start() throws(DiscoveryError) { try engine.start() }

    /// Withdraws the advert, stops browsing and ends ``events``. Idempotent.
    public func stop() { engine.stop() }

    /// The connection state now.
    public var state: DiscoveryState { engine.state }

    /// The name the service is published under now (it changes after a collision).
    public var serviceName: String { engine.currentServiceName }

    /// Replaces the advert's TXT records (a new day's tag, a new group key).
    public func update(txt: [String: String]) { engine.update(txt: txt) }
}

/// Discovery could not start at all (not: the daemon is absent — that is a state).
public struct DiscoveryError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
