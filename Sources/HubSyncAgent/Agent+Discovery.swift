import Foundation
public import HubSyncCore
import HubSyncCrypto
import HubSyncDiscovery
import HubSyncHousehold
import HubSyncNet
import HubSyncStore
import Logging
import ServiceLifecycle
import Synchronization

extension Agent {
    /// The household's group key, for the blinded tag in adverts (`hubsync init` founds a
    /// household; a data directory made before that has none, and its adverts carry only `v=1`).
    func groupKey() async -> SymmetricKey? { household.current.groupKey }

    /// Whether this device trusts a device outside its household (added by hand with `hubsync
    /// peers add`): such a device advertises another group's tag, so every `v=1` advert is dialled
    /// (the handshake still refuses whoever is not trusted).
    func trustsDevicesOutsideHousehold() async -> Bool {
        guard let peers = try? await store.read(.peers) else { return false }
        let household = self.household.current
        guard household.isFounded else { return !peers.isEmpty }
        return peers.contains { !household.isMember($0.device) }
    }

    /// mDNS for status: `{"state": "running" | "unavailable" | "starting" | "disabled", ...}`.
    func discoveryStatus() -> AgentStatus.Discovery {
        guard configuration.mdns else { return .init(state: "disabled", reason: "turned off (--no-mdns or \"mdns\": false)") }
        guard let discovery = discovery.withLock({ $0 }) else { return .init(state: "starting") }
        var status = AgentStatus.Discovery(state: "running", serviceName: discovery.serviceName)
        switch discovery.state {
        case .running: break
        case .collisionRenamed(let name): status.reason = "the service name collided; renamed to \(name)"
        case .daemonUnavailable(let reason):
            status.state = "unavailable"
            status.reason = reason
        case .starting: status.state = "starting"
        case .stopped: status.state = "stopped"
        }
        return status
    }

    /// Advertises this agent and dials every `v=1` advert of our group; the handshake keeps out
    /// devices that are not trusted and records trusted ones' addresses (SyncNode).
    struct DiscoveryService: Service {
        let agent: Agent
        /// Its open invites are offered in the advert (`i=`), so joiners find them without --host.
        let desk: PairingDesk

        func run() async throws {
            // Advertise the port actually bound (port 0 picks one), once the listener has it.
            let address = await cancelWhenGracefulShutdown { await agent.node.waitForBoundAddress() }
            guard let port = address?.port else { return }
            var configuration = DiscoveryConfiguration(port: port, txt: await advertTXT())
            configuration.retryInterval = .seconds(2)
            // An agent listening on loopback only cannot be reached from the network: browse, but
            // do not advertise.
            if let (host, _) = SyncNode.split(agent.configuration.listen),
               host == "localhost" || host == "::1" || host.hasPrefix("127.") {
                configuration.publishes = false
            }
            let discovery = Discovery(configuration)
            let published = configuration.txt
            agent.discovery.withLock { $0 = discovery }
            do {
                try discovery.start()
            } catch {
                // Status shows why; the agent keeps syncing over static and last-known addresses.
                agent.logger.error("mDNS discovery could not start", metadata: ["error": "\(error)"])
                try? await gracefulShutdown()
                return
            }
            let dialer = DiscoveryDialer(agent: agent)
            agent.logger.info("mDNS discovery started", metadata: ["service": "\(discovery.serviceName)", "port": "\(port)"])
            try? await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { await dialer.run() }
                    group.addTask { await renewAdvert(discovery, publishing: published) }
                    for await event in discovery.events {
                        switch event {
                        case .found(let service):
                            guard await accepts(service) else { continue }
                            agent.logger.debug("found on mDNS", metadata: ["service": "\(service.name)", "address": "\(service.endpoint)"])
                            dialer.found(service)
                        case .lost(let name):
                            dialer.lost(name)
                        case .stateChanged(let state):
                            agent.logger.info("mDNS \(state)")
                        }
                    }
                    throw CancellationError()
                }
            }
            dialer.cancelAll()
            // Stopping frees avahi's client, which talks to the daemon over D-Bus.
            _ = try? await BlockingIO.run { discovery.stop() }
        }

        /// Only our protocol version, and with a group key only adverts tagged for our group.
        func accepts(_ service: DiscoveredService) async -> Bool {
            guard service.txt["v"] == Discovery.protocolVersion else { return false }
            guard let key = await agent.groupKey(), !(await agent.trustsDevicesOutsideHousehold()) else { return true }
            guard let tag = service.txt["g"] else { return false }
            return GroupTag.matches(tag, groupKey: key)
        }

        /// The TXT records now: `v=1`, the day's group tag, and `i=` the names of open invites
        /// (and of those closed in the last two minutes, so a late joiner hears why it is refused).
        func advertTXT() async -> [String: String] {
            Discovery.txt(groupKey: await agent.groupKey(), invites: desk.advertisedInviteNames())
        }

        /// Re-publishes the TXT records when they change: at once on an event (an invite opened,
        /// attempted or withdrawn; trust or the group key changed), and at the times when they
        /// change by themselves (an invite expires or stops lingering, the day's tag at 00:00 UTC).
        func renewAdvert(_ discovery: Discovery, publishing txt: [String: String]) async {
            let wake = WakeSignal(pending: true)
            desk.changes.subscribe(wake)
            agent.trustChanges.subscribe(wake)
            defer {
                desk.changes.remove(wake)
                agent.trustChanges.remove(wake)
            }
            var current = txt
            while true {
                let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
                let nextDay = (GroupTag.epoch() + 1) * GroupTag.defaultEpochSeconds * 1000
                let due = min(nextDay, desk.nextTimedChange() ?? .max)
                let deadline = ContinuousClock.now + .milliseconds(Int64(due - min(due, now)) + 1)
                guard await wake.wait(until: deadline) != .ended else { return }
                let next = await advertTXT()
                if next != current {
                    // Avahi updates the record over D-Bus, waiting for the daemon's answer.
                    _ = try? await BlockingIO.run { discovery.update(txt: next) }
                    current = next
                }
            }
        }
    }

    /// Dials services found on mDNS until the device behind each is known and connected.
    final class DiscoveryDialer: Sendable {
        struct Entry {
            var service: DiscoveredService
            var device: DeviceID?
            var task: Task<Void, Never>?
            var nextAttempt = ContinuousClock.now
            var delay: Duration = .milliseconds(250)
            /// Refused (not trusted): try again only once trust changed, or after a minute.
            var refusedAtGeneration: Int?
        }

        let agent: Agent
        let entries = Mutex<[String: Entry]>([:])
        /// Wakes ``run()``: services found or lost, dials ended, sessions, trust.
        let wake = WakeSignal(pending: true)

        init(agent: Agent) { self.agent = agent }

        func found(_ service: DiscoveredService) {
            entries.withLock { all in
                if var e = all[service.name], e.service.endpoint == service.endpoint {
                    e.service = service
                    all[service.name] = e
                } else {
                    all[service.name]?.task?.cancel()
                    all[service.name] = Entry(service: service)
                }
            }
            wake.signal()
        }

        func lost(_ name: String) {
            // A running session stays up (the recorded address dials it again if it drops);
            // only stop trying to reach a service that is gone.
            entries.withLock { all in
                if all[name]?.task == nil { all.removeValue(forKey: name) }
            }
        }

        func cancelAll() {
            entries.withLock { all in for e in all.values { e.task?.cancel() } }
            wake.finish()
        }

        /// Starts a dial for each service whose device is not connected and whose retry time has
        /// come; then waits for an event (a service found, a dial ended, a session started or
        /// ended, trust changed) or the next retry time.
        func run() async {
            agent.node.sessionChanges.subscribe(wake)
            agent.trustChanges.subscribe(wake)
            defer {
                agent.node.sessionChanges.remove(wake)
                agent.trustChanges.remove(wake)
            }
            while true {
                let next = startDue()
                guard await wake.wait(until: next) != .ended else { return }
            }
        }

        /// Starts the dials that are due; returns when the next one is (nil: none waits on time).
        func startDue() -> ContinuousClock.Instant? {
            let connected = Set(agent.node.status().filter(\.connected).map(\.device))
            let generation = agent.trustGeneration.load(ordering: .acquiring)
            let now = ContinuousClock.now
            return entries.withLock { all -> ContinuousClock.Instant? in
                var next: ContinuousClock.Instant?
                for (name, e) in all where e.task == nil {
                    if let device = e.device, connected.contains(device) { continue }
                    var due = e.nextAttempt
                    // Refused (not trusted): again once trust changed, or after a minute.
                    if let g = e.refusedAtGeneration, g == generation { due = e.nextAttempt + .seconds(60) }
                    if now < due {
                        next = min(next ?? due, due)
                        continue
                    }
                    var e = e
                    let endpoint = e.service.endpoint
                    e.task = Task { [self] in await attempt(name: name, endpoint: endpoint) }
                    all[name] = e
                }
                return next
            }
        }

        func attempt(name: String, endpoint: String) async {
            let generation = agent.trustGeneration.load(ordering: .acquiring)
            var device: DeviceID?, trusted = false, reached = false
            let started = ContinuousClock.now
            do {
                (device, trusted) = try await agent.node.dial(discovered: endpoint)
                reached = true
            } catch {
                agent.logger.debug("could not reach a discovered service", metadata: ["address": "\(endpoint)", "error": "\(error)"])
            }
            entries.withLock { all in
                guard var e = all[name], e.service.endpoint == endpoint else { return }
                e.task = nil
                if let device { e.device = device }
                if reached && device != nil && !trusted {
                    e.refusedAtGeneration = generation
                    e.nextAttempt = .now + .seconds(1)
                } else if reached && trusted && ContinuousClock.now - started > .seconds(10) {
                    // A session ran and ended: dial again soon if it is not back by other means.
                    e.refusedAtGeneration = nil
                    e.delay = .milliseconds(250)
                    e.nextAttempt = .now + e.delay
                } else {
                    // Unreachable, or the other side refused us: back off.
                    e.nextAttempt = .now + e.delay
                    e.delay = min(e.delay * 2, .seconds(30))
                }
                all[name] = e
            }
            wake.signal()
        }
    }
}
