import Foundation
public import HubSyncBase
import Hummingbird
public import HubSyncCore
public import HubSyncCrypto
import HubSyncDiscovery
public import HubSyncHousehold
public import HubSyncNet
public import HubSyncStore
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `hubsync run`: the long-running agent. A ServiceGroup of the sync listener and peer dialers,
/// the repair timer and the local API; SIGTERM or SIGINT shuts it down cleanly.
public final class Agent: Sendable {
    public let directory: String
    /// Held for the agent's lifetime: it is the only writer of the store and household files.
    let writerLock: WriterLock
    public let identity: Identity
    /// The settings: config.json and flags, read again from config.json on SIGHUP (Agent+Reload.swift).
    public var configuration: AgentConfiguration { settings.withLock { $0 } }
    let settings: Mutex<AgentConfiguration>
    /// Signalled when SIGHUP brought new settings, so services that wait on them look again.
    let configurationChanges = WakeBroadcast()
    /// When set, SIGHUP reloads config.json and this applies `hubsync run`'s flags over it again
    /// (nil: the signal is left alone, as agents in tests do).
    let reloadFlags: (@Sendable (inout AgentConfiguration) -> Void)?
    public let store: Store
    /// The household's secrets and membership; the agent is their one writer.
    public let household: Household
    let node: SyncNode
    let logger: Logger
    let token: String
    let ready = Mutex<(listen: String?, api: String?)>((nil, nil))
    /// The last store failure status found, so the log says it once, not at every status call.
    let storeProblem = Mutex<String?>(nil)
    /// Signalled when trusted peers or the household change (the API, pairing, membership), so
    /// dialers start or stop, membership is applied and the advert's group tag is renewed at once.
    let trustChanges = WakeBroadcast()
    /// Counts changes to trusted peers, so discovery retries devices it found untrusted.
    let trustGeneration = Atomic<Int>(0)
    /// mDNS publishing and browsing, once started (Agent+Discovery.swift).
    let discovery = Mutex<Discovery?>(nil)
    let started = Date()
    /// What the scheduled backups did last (Agent+BackupSchedule.swift).
    let backupState = Mutex<BackupRunState>(BackupRunState())
    /// `GET /metrics` (Metrics.swift).
    let metrics: AgentMetrics
    /// Store commits and API answers, for giving memory back once quiet (MemoryTrim.swift).
    let activity = ActivityWatch()
    /// This device's audit journal (AuditJournal.swift, Agent+Audit.swift).
    let audit: AuditJournal
    /// The dashboard's sign-in codes and sessions (Dashboard.swift).
    let sessions = DashboardSessions()
    /// The backup running now, for the dashboard (Agent+BackupSchedule.swift).
    let backupProgress = BackupProgressBoard()
    /// The dashboard's live streams (`GET /v1/events`).
    let events = DashboardEvents()


    /// Sets up the agent of `directory`, taking its writer lock (or using `lock`, taken already).
    public convenience init(directory: String, identity: Identity, configuration: AgentConfiguration, logger: Logger,
                            lock: WriterLock? = nil,
                            reloadOnHangup reloadFlags: (@Sendable (inout AgentConfiguration) -> Void)? = nil) throws {
        // What can throw happens here, outside the designated initialiser: the Swift 6.3 optimiser
        // crashes ("Found ownership error") on a throw from an initialiser of a class with
        // Mutex/Atomic members.
        let dataDirectory = DataDirectory(path: directory)
        guard let writerLock = try lock ?? WriterLock.acquire(in: dataDirectory, role: WriterLock.agentRole) else {
            let holder = WriterLock.holder(in: dataDirectory)
            throw ValidationFailure((holder.map { "\($0)" } ?? "another process") + " holds \(directory); "
                + (holder?.isAgent == true ? "an agent already runs there, stop it first" : "try again when it has finished"))
        }
        if let problem = dataDirectory.missingStoreProblem { throw ValidationFailure(problem) }
        let offset = configuration.clockOffsetMillis
        let store = try Store(path: dataDirectory.storePath, device: identity.deviceID,
                              maxClockDriftMillis: configuration.maxClockDriftMillis,
                              wallClock: { UInt64(max(0, Int64(Store.systemClock()) + offset)) }, logger: logger)
        let token = try Self.loadOrCreateToken(directory: directory)
        // The store SQLite just created took the umask's mode: the directory and its files stay private.
        do { try dataDirectory.keepPrivate() } catch {
            throw ValidationFailure("\(directory) must be private to its owner (mode 0700, files 0600) and cannot be "
                + "made so: \(error.reason); run `chmod -R go= \(directory)` as its owner")
        }
        let household = try Household(directory: dataDirectory, identity: identity)
        self.init(directory: directory, writerLock: writerLock, identity: identity, configuration: configuration,
                  logger: logger, store: store, household: household, token: token, reloadFlags: reloadFlags)
    }

    private init(directory: String, writerLock: WriterLock, identity: Identity, configuration: AgentConfiguration,
                 logger: Logger, store: Store, household: Household, token: String,
                 reloadFlags: (@Sendable (inout AgentConfiguration) -> Void)?) {
        self.directory = directory
        self.writerLock = writerLock
        self.identity = identity
        settings = Mutex(configuration)
        self.reloadFlags = reloadFlags
        metrics = AgentMetrics(device: identity.deviceID)
        audit = AuditJournal(store: store, identity: identity, deviceName: { AuditJournal.deviceName(in: directory) })
        self.logger = logger
        self.store = store
        self.household = household
        node = SyncNode(identity: identity, store: store, logger: logger)
        self.token = token
    }

    /// Reads a token file of the data directory (the API's, or the metrics'), creating it (mode 0600) on first use.
    static func loadOrCreateToken(directory: String, name: String = DataDirectory.tokenFile) throws -> String {
        let path = DataDirectory(path: directory).file(name)
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
        // Keys that cannot be locked into memory still work: the log says so once.
        SecureMemory.onLockFailure { [logger] reason in logger.warning("keys are not in locked memory", metadata: ["reason": "\(reason)"]) }
        // A store damaged under the agent refuses writes from then on (Store+Damage.swift); the log says so once.
        store.onDamage { [logger, store] damage in
            logger.error("the store is damaged: writes and peers' changes are refused until it is repaired",
                         metadata: ["error": "\(FailureText.storeDamage(damage, storePath: store.path, refused: false))"])
        }
        var api = LocalAPI(store: store, node: node, token: token, status: { [self] in await status() },
                           peersChanged: { [self] in trustChanged() })
        api.metricsToken = try Self.loadOrCreateToken(directory: directory, name: DataDirectory.metricsTokenFile)
        api.householdGroup = { [household] in household.current.secrets?.groupID }
        api.householdDevices = { [household, identity] in HouseholdRecords.auditWriters(household.current, me: identity.deviceID) }
        api.applied = { [self] writes, results in await auditResolutions(writes, results) }
        api.isRemoved = { [household] in household.current.membership?.removed.contains($0) == true }
        api.sessions = sessions
        api.removeMember = { [self] device in
            guard household.current.isMember(device), device != identity.deviceID else { return false }
            _ = try await removeMember(device)
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
        addAuditRoutes(to: router)
        addMetricsRoute(to: router)
        addDeviceRoutes(to: router)
        addDashboardRoutes(to: router)
        do { try await publishName() } catch {
            logger.warning("this device's name could not be recorded; the others show its ID alone", metadata: ["error": "\(error)"])
        }
        node.screenIncoming { [self] states, peer in
            var refused = await screenAudit(states, from: peer)
            for (key, reason) in DeviceNames.refusals(among: states) {
                logger.warning("refused a device name record", metadata: ["peer.id": "\(peer.short)", "record": "\(key.id)", "reason": "\(reason)"])
                refused[key] = reason
            }
            return refused
        }
        // A peer refuses the audit entries of devices its household never had (SPEC 8.3, point
        // 4): all of this household's, when it is a static peer of another household (which
        // sends none this one takes, so the journal is not exchanged with it); for a member,
        // those of devices this household never had (kept from a household this device left).
        let me = identity.deviceID
        node.holdBack { [household] peer in
            guard let membership = household.current.membership else { return nil }
            guard membership.isMember(peer) else { return HeldBack(collection: AuditEntry.collection) { _ in true } }
            let known = Set(membership.members.keys).union(membership.removed).union([me])
            return HeldBack(collection: AuditEntry.collection) { id in
                guard let author = AuditEntry.device(ofRecordID: id) else { return false }
                return !known.contains(author)
            }
        }
        // Remote changes feed the propagation histogram as they commit (the filter sees every
        // change and takes none, so the subscription never wakes).
        let observer = store.changeSignal { [metrics, activity] event in
            metrics.observe(event)
            activity.note()
            return false
        }
        defer { observer.cancel() }
        var app = LocalAPIServer(responder: router.buildResponder(), host: apiHost, port: apiPort, logger: logger) { [self] channel in
            sessions.port.store(channel.localAddress?.port ?? apiPort, ordering: .relaxed)
            await markReady(api: channel.localAddress.map(Self.text) ?? configuration.api)
        }
        app.answered = { [metrics, activity] status in
            metrics.countAnswer(status)
            activity.note()
        }
        let sync = SyncService(agent: self)
        let repair = RepairTimer(agent: self)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: sync), .init(service: repair), .init(service: MembershipService(agent: self)),
            .init(service: BackupService(agent: self)), .init(service: app), .init(service: MemoryTrimService(agent: self)),
        ]
        if configuration.mdns { services.append(.init(service: DiscoveryService(agent: self, desk: desk))) }
        // SIGHUP is trapped before any service starts, so it never ends a running agent.
        if reloadFlags != nil { services.append(.init(service: ReloadService(agent: self, signals: await UnixSignalsSequence(trapping: .sighup)))) }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // A shutdown that hangs (a client holding a request open) is cut short: cancelled after
        // 5 s. ServiceLifecycle ends the process when cancelling takes longer than its limit, so
        // that limit is generous (a loaded machine slows cancellation; 5 s crashed in-process
        // test agents under load) while still bounding how long a stop can take.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(5)
        groupConfiguration.maximumCancellationDuration = .seconds(20)
        let group = ServiceGroup(configuration: groupConfiguration)
        defer {
            unlink(writerLock.directory.agentStatePath)
            // Stopped, the agent writes nothing more: a command may have the directory now.
            writerLock.release()
        }
        try await group.run()
        logger.info("agent stopped")
    }

    /// Tells dialers, membership and the advert that trust or the household changed.
    func trustChanged() {
        trustGeneration.add(1, ordering: .releasing)
        trustChanges.signal()
    }

    /// Notes an address bound; once both are, writes the agent's state file (`agent.json`).
    func markReady(listen: String? = nil, api: String? = nil) async {
        let both = ready.withLock { r -> (String, String)? in
            if let listen { r.listen = listen }
            if let api { r.api = api }
            guard let l = r.listen, let a = r.api else { return nil }
            return (l, a)
        }
        guard let (l, a) = both else { return }
        let state: Value = ["pid": .int(Int64(getpid())), "listen": .string(l), "api": .string(a),
                            "device_id": .string(identity.deviceID.description)]
        let directory = writerLock.directory
        do {
            try await BlockingIO.run {
                try directory.writeAtomically(Array((JSON.serialize(state) + "\n").utf8), to: DataDirectory.agentStateFile, mode: 0o600)
            }
        } catch {
            logger.error("cannot write the agent's state file; commands will not find this agent", metadata: ["error": "\(error)"])
        }
        logger.info("agent ready", metadata: ["listen": "\(l)", "api": "\(a)"])
    }

    /// Why a member of this device's household refuses it: members trust each other, so that
    /// member most likely removed this device (it learns of the removal from no one it can still reach).
    static func refusedByMember(_ device: DeviceID) -> String {
        "refused: \(device.short), a member of this device's household, no longer trusts this device: it was most likely "
            + "removed from the household there (`hubsync pair household` on a member shows it). Its records stay here; "
            + "to rejoin, ask a member for a code (`hubsync pair invite` there, `hubsync pair join CODE` here)"
    }

    static func text(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "127.0.0.1"
        return (host.contains(":") ? "[\(host)]" : host) + ":\(address.port ?? 0)"
    }

    /// The status: this device, the store, and every peer's connection state.
    func status() async -> AgentStatus {
        let peers = (try? await store.read(.peers)) ?? []
        let lastSequence = (try? await store.read(.lastSequence)) ?? 0
        // The counts are kept as the store is written (one small row each): a damaged store shows
        // here when these reads, or any call before them, meet the damage, and is said.
        var counts: [String: Int] = [:], problem: String?
        do { counts = try await store.read(.counts) } catch {
            problem = (error as? StoreError)?.message ?? FailureText.unknown(error)
        }
        // Damage found by any call (this one or another) is said with what to do; it was logged when found.
        if let damage = store.damageFound {
            problem = FailureText.storeDamage(damage, storePath: store.path, refused: false)
        } else if storeProblem.withLock({ old in defer { old = problem }; return old != problem }), let problem {
            logger.error("the store cannot be read", metadata: ["error": "\(problem)"])
        }
        let conflicts = (try? await store.read(.conflicts).count) ?? 0
        let names = await DeviceNames.read(from: store)
        let live = Dictionary(node.status().map { ($0.device, $0) }, uniquingKeysWith: { a, _ in a })
        let time = { (millis: UInt64) -> String? in millis > 0 ? isoTime(Timestamp(millis: millis, counter: 0)) : nil }
        let household = self.household.current
        let peerStates = peers.map { p -> AgentStatus.Peer in
            let s = live[p.device]
            let connected = s?.connected ?? false
            var reason: String?
            if !connected {
                reason = s?.reason ?? (p.address == nil ? "no address known: "
                    + (configuration.mdns ? "not found on mDNS yet; " : "")
                    + "add one with `hubsync peers add ID --address HOST:PORT`, or wait for it to connect" : "connecting")
                if reason?.hasPrefix("refused: not trusted") == true, household.isMember(p.device) {
                    reason = Self.refusedByMember(p.device)
                }
            }
            return AgentStatus.Peer(
                deviceID: p.device.description, deviceName: names[p.device], address: p.address, connected: connected,
                pendingToSend: max(0, lastSequence - p.ackedSequence), theirSequenceHeld: p.theirSequence,
                bytesSent: s?.bytesSent ?? 0, bytesReceived: s?.bytesReceived ?? 0,
                lastSync: time(max(p.lastSync, s?.lastSync ?? 0)), fastPathFrom: s?.fastPathFrom,
                lastRepair: time(s?.lastRepair ?? 0),
                lastRepairRound: s?.lastRepairReport.map { r in
                    AgentStatus.RepairRound(recordsSent: r.itemsSent, recordsReceived: r.itemsReceived, roundTrips: r.roundTrips,
                                            bytesSent: r.bytesSent, bytesReceived: r.bytesReceived, milliseconds: r.milliseconds)
                },
                reason: reason,
                undelivered: (s?.undelivered ?? [:]).map { AgentStatus.Undelivered(record: "\($0.key)", reason: $0.value) }
                    .sorted { $0.record < $1.record })
        }
        let refused = node.refusedDevices().sorted { $0.key < $1.key }.map { device, at in
            AgentStatus.Refused(deviceID: device.description, reason: "refused: not trusted", at: time(at) ?? "")
        }
        let (listen, api) = ready.withLock { ($0.listen, $0.api) }
        return AgentStatus(
            deviceID: identity.deviceID.description, deviceName: names[identity.deviceID], pid: Int(getpid()), listen: listen, api: api,
            uptimeSeconds: Int(Date().timeIntervalSince(started)),
            repairIntervalSeconds: Int(configuration.repairInterval.components.seconds),
            maxClockDriftSeconds: Int(configuration.maxClockDriftMillis / 1000),
            store: AgentStatus.StoreSummary(lastSequence: lastSequence, conflicts: conflicts, records: counts, problem: problem),
            peers: peerStates, refused: refused, mdns: discoveryStatus(), backup: backupStatus(),
            storage: storageStatus())
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
                        do { try await agent.node.listen(host: host, port: port) { _ in } } catch is CancellationError {
                            throw CancellationError()
                        } catch {
                            throw ListenFailure(role: "peers", address: agent.configuration.listen, cause: error)
                        }
                    }
                    group.addTask {
                        if let address = await agent.node.waitForBoundAddress() {
                            await agent.markReady(listen: Agent.text(address))
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
            let changes = agent.trustChanges.subscribe(pending: true)
            // A session records the address discovery found its peer at just before it starts.
            agent.node.sessionChanges.subscribe(changes)
            defer {
                agent.node.sessionChanges.remove(changes)
                agent.trustChanges.unsubscribe(changes)
                for d in dialers.values { d.task.cancel() }
            }
            // Peers change only through this agent (it is the store's only writer), and each
            // such change signals (trust, or a session that recorded a discovered address):
            // look at the peers then, and only then.
            while await changes.wait() {
                let peers = (try? await agent.store.read(.peers)) ?? []
                let wanted = Dictionary(peers.compactMap { p in p.address.map { (p.device, $0) } }, uniquingKeysWith: { a, _ in a })
                for (device, d) in dialers where wanted[device] != d.address {
                    d.task.cancel()
                    dialers.removeValue(forKey: device)
                }
                for (device, address) in wanted where dialers[device] == nil {
                    let node = agent.node
                    dialers[device] = (address, Task { await node.maintain(peer: device, address: address) })
                }
            }
        }
    }

    /// Once the agent has been quiet for ``quiet`` (no store commit, no API answer, under 50 ms of
    /// CPU time: not sending a full sync either), gives back the memory its work left mapped
    /// (``MemoryTrim``), then waits, with no timer, for the next activity.
    struct MemoryTrimService: Service {
        static let quiet: Duration = .seconds(10)
        let agent: Agent

        func run() async throws {
            await cancelWhenGracefulShutdown {
                while let seen = await agent.activity.waitForQuiet(Self.quiet) {
                    let outcome = MemoryTrim.releaseUnused()
                    agent.logger.debug("quiet: gave back memory", metadata: [
                        "code_mappings": "\(outcome.mappings)", "code_kib": "\(outcome.codeBytes / 1024)",
                        "heap_released": "\(outcome.heapReleased)",
                    ])
                    guard await agent.activity.waitForActivity(after: seen) else { return }
                }
            }
        }
    }

    /// Runs a repair round with every peer on a timer (protocol/SPEC.md, repair).
    /// The interval is read again when SIGHUP brings new settings.
    struct RepairTimer: Service {
        let agent: Agent

        func run() async throws {
            let changes = agent.configurationChanges.subscribe()
            defer { agent.configurationChanges.unsubscribe(changes) }
            do {
                try await cancelWhenGracefulShutdown {
                    var last = ContinuousClock.now
                    while true {
                        switch await changes.wait(until: last + agent.configuration.repairInterval) {
                        case .timedOut:
                            await agent.node.repairAll()
                            last = .now
                        case .signalled: continue
                        case .ended: throw CancellationError()
                        }
                    }
                }
            } catch is CancellationError {
                return
            }
        }
    }
}
