import Foundation
public import HubSyncBase
import Hummingbird
public import HubSyncCore
public import HubSyncCrypto
import HubSyncDiscovery
public import HubSyncNet
public import HubSyncStore
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `hubsync run`: the long-running agent. A ServiceGroup of the sync listener and peer dialers,
/// the repair timer and the local API; SIGTERM or SIGINT shuts it down cleanly.
public final class Agent: Sendable {
    public let directory: String
    /// Held for the agent's lifetime: it is the only writer of the store and household files.
    let writerLock: WriterLock
    public let identity: Identity
    public let configuration: AgentConfiguration
    public let store: Store
    let node: SyncNode
    let logger: Logger
    let token: String
    let ready = Mutex<(listen: String?, api: String?)>((nil, nil))
    /// Set by the API when trusted peers change, so dialers start or stop at once.
    let peersChanged = Atomic<Bool>(false)
    /// Counts changes to trusted peers, so discovery retries devices it found untrusted.
    let trustGeneration = Atomic<Int>(0)
    /// mDNS publishing and browsing, once started (Agent+Discovery.swift).
    let discovery = Mutex<Discovery?>(nil)
    let started = Date()
    /// What the scheduled backups did last (Agent+BackupSchedule.swift).
    let backupState = Mutex<BackupRunState>(BackupRunState())

    public static let stateFile = DataDirectory.agentStateFile
    public static let tokenFile = DataDirectory.tokenFile

    /// Sets up the agent of `directory`, taking its writer lock (or using `lock`, taken already).
    public convenience init(directory: String, identity: Identity, configuration: AgentConfiguration, logger: Logger,
                            lock: WriterLock? = nil) throws {
        // What can throw happens here, outside the designated initialiser: the Swift 6.3 optimiser
        // crashes ("Found ownership error") on a throw from an initialiser of a class with
        // Mutex/Atomic members.
        let dataDirectory = DataDirectory(path: directory)
        guard let writerLock = try lock ?? WriterLock.acquire(in: dataDirectory, role: WriterLock.agentRole) else {
            let holder = WriterLock.holder(in: dataDirectory)
            throw ValidationFailure((holder.map { "\($0)" } ?? "another process") + " holds \(directory); "
                + (holder?.isAgent == true ? "an agent already runs there, stop it first" : "try again when it has finished"))
        }
        let offset = configuration.clockOffsetMillis
        let store = try Store(path: directory + "/store.sqlite", device: identity.deviceID,
                              maxClockDriftMillis: configuration.maxClockDriftMillis,
                              wallClock: { UInt64(max(0, Int64(Store.systemClock()) + offset)) }, logger: logger)
        let token = try Self.loadOrCreateToken(directory: directory)
        self.init(directory: directory, writerLock: writerLock, identity: identity, configuration: configuration,
                  logger: logger, store: store, token: token)
    }

    private init(directory: String, writerLock: WriterLock, identity: Identity, configuration: AgentConfiguration,
                 logger: Logger, store: Store, token: String) {
        self.directory = directory
        self.writerLock = writerLock
        self.identity = identity
        self.configuration = configuration
        self.logger = logger
        self.store = store
        node = SyncNode(identity: identity, store: store, logger: logger)
        self.token = token
    }

    /// Reads the API token, creating it (mode 0600) on first use.
    static func loadOrCreateToken(directory: String) throws -> String {
        let path = directory + "/" + tokenFile
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.count >= 32 { return text }
        }
        let token = Hex.encode(SymmetricKey.random(byteCount: 32).withUnsafeBytes { Array($0) })
        do {
            try DataDirectory.writeAtomically(Array((token + "\n").utf8), toPath: path, mode: 0o600)
        } catch {
            throw ValidationFailure("cannot write \(path): \(error.reason)")
        }
        return token
    }

    public func run() async throws {
        var api = LocalAPI(store: AsyncStore(store), node: node, token: token, status: { [self] in await status() },
                           peersChanged: { [self] in
                               peersChanged.store(true, ordering: .releasing)
                               trustGeneration.add(1, ordering: .releasing)
                           })
        api.removeMember = { [self] device in
            guard let (_, household) = try? MembershipFiles.load(in: directory), household.isMember(device),
                  device != identity.deviceID else { return false }
            do { _ = try await removeFromHousehold(device) } catch let e as PairingError {
                throw APIError(.internalServerError, e.message)
            }
            return true
        }
        guard let (apiHost, apiPort) = SyncNode.split(configuration.api) else {
            throw ValidationFailure("api address \(configuration.api) is not HOST:PORT")
        }
        guard ["127.0.0.1", "localhost", "::1"].contains(apiHost) else {
            throw ValidationFailure("the local API listens on loopback only; got \(apiHost)")
        }
        let router = api.router()
        let desk = makePairingDesk()
        node.servePairing(with: desk)
        node.serveBackups(with: makeBackupHandler())
        addPairingRoutes(to: router, desk: desk)
        addJoinRoute(to: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(apiHost, port: apiPort), serverName: "hubsync"),
            onServerRunning: { [self] channel in
                markReady(api: channel.localAddress.map(Self.text) ?? configuration.api)
            },
            logger: logger)
        let sync = SyncService(agent: self)
        let repair = RepairTimer(node: node, interval: configuration.repairInterval)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: sync), .init(service: repair), .init(service: MembershipService(agent: self)),
            .init(service: BackupService(agent: self)), .init(service: app),
        ]
        if configuration.mdns { services.append(.init(service: DiscoveryService(agent: self, desk: desk))) }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // A shutdown that hangs (a client holding a request open) is cut short.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(5)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        defer { unlink(directory + "/" + Self.stateFile) }
        try await group.run()
        logger.info("agent stopped")
    }

    func markReady(listen: String? = nil, api: String? = nil) {
        let both = ready.withLock { r -> (String, String)? in
            if let listen { r.listen = listen }
            if let api { r.api = api }
            guard let l = r.listen, let a = r.api else { return nil }
            return (l, a)
        }
        guard let (l, a) = both else { return }
        let state: Value = ["pid": .int(Int64(getpid())), "listen": .string(l), "api": .string(a),
                            "device_id": .string(identity.deviceID.description)]
        do {
            try writerLock.directory.writeAtomically(Array((JSON.serialize(state) + "\n").utf8), to: Self.stateFile, mode: 0o644)
        } catch {
            logger.error("cannot write the agent's state file; commands will not find this agent", metadata: ["error": "\(error)"])
        }
        logger.info("agent ready", metadata: ["listen": "\(l)", "api": "\(a)"])
    }

    static func text(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "127.0.0.1"
        return (host.contains(":") ? "[\(host)]" : host) + ":\(address.port ?? 0)"
    }

    /// The status document: this device, the store, and every peer's connection state.
    func status() async -> Value {
        let store = AsyncStore(self.store)
        let peers = (try? await store.run { try $0.peers() }) ?? []
        let lastSequence = (try? await store.run { try $0.lastSequence() }) ?? 0
        let counts = (try? await store.run { try $0.counts() }) ?? [:]
        let conflicts = (try? await store.run { try $0.conflicts().count }) ?? 0
        let live = Dictionary(node.status().map { ($0.device, $0) }, uniquingKeysWith: { a, _ in a })
        let peerValues: [Value] = peers.map { p in
            let s = live[p.device]
            var o: [String: Value] = [
                "device_id": .string(p.device.description),
                "address": p.address.map { .string($0) } ?? .null,
                "connected": .bool(s?.connected ?? false),
                "pending_to_send": .int(max(0, lastSequence - p.ackedSequence)),
                "their_sequence_held": .int(p.theirSequence),
                "bytes_sent": .int(Int64(s?.bytesSent ?? 0)),
                "bytes_received": .int(Int64(s?.bytesReceived ?? 0)),
                "last_sync": max(p.lastSync, s?.lastSync ?? 0) > 0
                    ? .string(isoTime(Timestamp(millis: max(p.lastSync, s?.lastSync ?? 0), counter: 0))) : .null,
                "fast_path_from": s?.fastPathFrom.map { .int($0) } ?? .null,
                "last_repair": (s?.lastRepair ?? 0) > 0 ? .string(isoTime(Timestamp(millis: s!.lastRepair, counter: 0))) : .null,
                "last_repair_round": s?.lastRepairReport.map { r in
                    .object([
                        "records_sent": .int(Int64(r.itemsSent)), "records_received": .int(Int64(r.itemsReceived)),
                        "round_trips": .int(Int64(r.roundTrips)), "bytes_sent": .int(Int64(r.bytesSent)),
                        "bytes_received": .int(Int64(r.bytesReceived)), "milliseconds": .int(Int64(r.milliseconds)),
                    ])
                } ?? .null,
            ]
            if !(s?.connected ?? false) {
                o["reason"] = .string(s?.reason ?? (p.address == nil ? "no address known: "
                    + (configuration.mdns ? "not found on mDNS yet; " : "") + "add one with `hubsync peers add ID --address HOST:PORT`, or wait for it to connect" : "connecting"))
            }
            return .object(o)
        }
        let refused: [Value] = node.refusedDevices().sorted { $0.key < $1.key }.map { device, at in
            ["device_id": .string(device.description), "reason": "refused: not trusted",
             "at": .string(isoTime(Timestamp(millis: at, counter: 0)))]
        }
        let (listen, api) = ready.withLock { ($0.listen, $0.api) }
        return [
            "device_id": .string(identity.deviceID.description),
            "pid": .int(Int64(getpid())),
            "listen": listen.map { .string($0) } ?? .null,
            "api": api.map { .string($0) } ?? .null,
            "uptime_seconds": .int(Int64(Date().timeIntervalSince(started))),
            "repair_interval_seconds": .int(configuration.repairInterval.components.seconds),
            "max_clock_drift_seconds": .int(Int64(configuration.maxClockDriftMillis / 1000)),
            "store": ["last_sequence": .int(lastSequence), "conflicts": .int(Int64(conflicts)),
                      "records": .object(counts.mapValues { .int(Int64($0)) })],
            "peers": .array(peerValues),
            "refused": .array(refused),
            "mdns": discoveryStatus(),
            "backup": backupStatus(),
        ]
    }

    // MARK: services

    /// Listens for peers and keeps a dialer running for every trusted peer with an address.
    struct SyncService: Service {
        let agent: Agent

        func run() async throws {
            guard let (host, port) = SyncNode.split(agent.configuration.listen) else {
                throw ValidationFailure("listen address \(agent.configuration.listen) is not HOST:PORT")
            }
            do {
              try await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        try await agent.node.listen(host: host, port: port) { address in
                            agent.markReady(listen: Agent.text(address))
                        }
                    }
                    group.addTask { await maintainPeers() }
                }
              }
            } catch is CancellationError {
                return
            }
        }

        /// Starts or stops dialers as peers are added, removed or given new addresses.
        func maintainPeers() async {
            var dialers: [DeviceID: (address: String, task: Task<Void, Never>)] = [:]
            defer { for d in dialers.values { d.task.cancel() } }
            let store = AsyncStore(agent.store)
            while !Task.isCancelled {
                let peers = (try? await store.run { try $0.peers() }) ?? []
                let wanted = Dictionary(peers.compactMap { p in p.address.map { (p.device, $0) } }, uniquingKeysWith: { a, _ in a })
                for (device, d) in dialers where wanted[device] != d.address {
                    d.task.cancel()
                    dialers.removeValue(forKey: device)
                }
                for (device, address) in wanted where dialers[device] == nil {
                    let node = agent.node
                    dialers[device] = (address, Task { await node.maintain(peer: device, address: address) })
                }
                // Look again as soon as the API says peers changed, else after 5 s (another
                // process may have changed the store). Checking a flag ten times a second costs
                // nothing measurable; a cancelled wait on an AsyncStream would end the stream.
                var waited = 0
                while waited < 50, !agent.peersChanged.exchange(false, ordering: .acquiringAndReleasing) {
                    guard (try? await Task.sleep(for: .milliseconds(100))) != nil else { return }
                    waited += 1
                }
            }
        }
    }

    /// Runs a repair round with every peer on a timer (protocol/SPEC.md, repair).
    struct RepairTimer: Service {
        let node: SyncNode
        let interval: Duration

        func run() async throws {
            do {
                try await cancelWhenGracefulShutdown {
                    while true {
                        try await Task.sleep(for: interval)
                        await node.repairAll()
                    }
                }
            } catch is CancellationError {
                return
            }
        }
    }
}
