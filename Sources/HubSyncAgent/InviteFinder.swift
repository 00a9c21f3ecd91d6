import HubSyncBase
import Foundation
import HubSyncDiscovery
import Synchronization

/// Finds the agent offering a pairing invite on the local network: browses `_hubsync._tcp`
/// through avahi-daemon for an advert whose `i=` record names the invite (protocol/SPEC.md 6).
///
/// Runs in the joining CLI's own process, so it works whether or not this device's agent runs.
public enum InviteFinder {
    /// What the search found.
    public enum Outcome: Sendable, Equatable {
        /// The inviting agent's sync address, `HOST:PORT`.
        case found(String)
        /// No advert offered the invite within the time allowed.
        case notFound
        /// mDNS cannot be used here (no avahi-daemon, no system bus); the reason.
        case unavailable(String)
    }

    /// Browses for up to `timeout` for an advert offering the invite `name`. An IPv4 address is
    /// preferred: an IPv6 one is taken only when no IPv4 one came by the end of a round.
    ///
    /// Discovery resolves each advert once, and an advert seen before the invite opened may come
    /// back from avahi's cache without its `i=` record; so the browse starts over in short rounds
    /// (0.3 s, 0.6 s, then 1 s), each reading the daemon's updated cache.
    public static func find(name: String, timeout: Duration = .seconds(5)) async -> Outcome {
        let deadline = ContinuousClock.now + timeout
        var round: Duration = .milliseconds(300)
        while true {
            let left = deadline - .now
            guard left > .zero else { return .notFound }
            let outcome = await browseOnce(for: name.uppercased(), timeout: min(round, left))
            if outcome != .notFound { return outcome }
            round = min(round * 2, .seconds(1))
        }
    }

    static func browseOnce(for wanted: String, timeout: Duration) async -> Outcome {
        var configuration = DiscoveryConfiguration(port: 0, txt: [:])
        configuration.publishes = false
        let discovery = Discovery(configuration)
        do { try discovery.start() } catch { return .unavailable(error.description) }
        defer { discovery.stop() }
        // An IPv6 match waits here for the end of the round, in case an IPv4 one follows.
        let ipv6 = Box()
        let outcome = await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                for await event in discovery.events {
                    switch event {
                    case .found(let service):
                        guard service.txt["v"] == Discovery.protocolVersion,
                              Discovery.invites(in: service.txt).contains(wanted) else { continue }
                        if !service.address.contains(":") { return .found(service.endpoint) }
                        ipv6.value.withLock { if $0 == nil { $0 = service.endpoint } }
                    case .stateChanged(.daemonUnavailable(let reason)):
                        return .unavailable(reason)
                    default:
                        continue
                    }
                }
                return nil
            }
            group.addTask {
                try? await Deadlines.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            discovery.stop()
            return first
        }
        return outcome ?? ipv6.value.withLock { $0 }.map { .found($0) } ?? .notFound
    }

    /// An IPv6 endpoint found during a round, shared between its tasks.
    final class Box: Sendable {
        let value = Mutex<String?>(nil)
    }
}
