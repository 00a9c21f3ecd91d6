import CoreMetrics
import Foundation
import HubSyncCore
public import HubSyncBackup
import HubSyncCrypto
import HubSyncNet
import HubSyncStore
import Hummingbird
import NIOCore
import Prometheus
import Synchronization

/// The agent's Prometheus metrics (`GET /metrics`): swift-metrics' types made by a
/// `PrometheusMetricsFactory` over a registry of this agent's own (not the process-wide
/// `MetricsSystem`, so agents that share a process, as in tests, keep their figures apart).
///
/// Events count as they happen (changes merged, errors, backups); what is a state (records,
/// conflicts, peers, bytes per peer) is read when scraped. Labels are bounded: a peer label only
/// for trusted peers, at most ``maxPeerLabels`` of them (the rest count as `other`), at most
/// ``maxTargetLabels`` backup targets, and a fixed set of error kinds.
final class AgentMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    static let maxPeerLabels = 32
    static let maxTargetLabels = 16

    /// What is counted in `hubsync_errors_total{kind}`.
    enum ErrorKind: String, CaseIterable {
        /// Requests the local API refused: bad input, a wrong token, no such route or record, a conflict, a failure.
        case apiBadRequest = "api_bad_request", apiUnauthorized = "api_unauthorized", apiNotFound = "api_not_found"
        case apiConflict = "api_conflict", apiServer = "api_server_error"
        /// Backups that failed; audit entries refused (sent by a peer, or merged from outside).
        case backup, auditRefused = "audit_refused"
        /// Devices refused at the handshake as untrusted.
        case untrustedDevice = "untrusted_device"
    }

    let propagation: CoreMetrics.Timer
    let repairRounds: CoreMetrics.Counter
    let repairBytesSent: CoreMetrics.Counter
    let repairBytesReceived: CoreMetrics.Counter
    let errors: [ErrorKind: CoreMetrics.Counter]
    /// Per-peer byte counters, and the totals last added to them (the node's counts are totals).
    let peers = Mutex<[String: (sent: CoreMetrics.Counter, received: CoreMetrics.Counter)]>([:])
    let counted = Mutex<(bytes: [DeviceID: (sent: Int, received: Int)], repair: [DeviceID: (rounds: Int, sent: Int, received: Int)],
                         untrusted: Int)>(([:], [:], 0))
    /// Gauges (swift-metrics meters) by name and labels, made on first use.
    let gauges = Mutex<[String: CoreMetrics.Meter]>([:])
    let targets = Mutex<Set<String>>([])

    /// This device: its own writes are not propagation.
    let device: DeviceID

    init(device: DeviceID) {
        self.device = device
        var factory = PrometheusMetricsFactory(registry: registry)
        // Changes arrive in milliseconds on a network, in hours from a device that was away.
        factory.durationHistogramBuckets["hubsync_change_propagation_seconds"] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
            .seconds(30), .seconds(60), .seconds(300), .seconds(3600), .seconds(86_400),
        ]
        self.factory = factory
        propagation = Timer(label: "hubsync_change_propagation_seconds", dimensions: [], factory: factory)
        repairRounds = Counter(label: "hubsync_repair_rounds_total", dimensions: [], factory: factory)
        repairBytesSent = Counter(label: "hubsync_repair_bytes_total", dimensions: [("direction", "sent")], factory: factory)
        repairBytesReceived = Counter(label: "hubsync_repair_bytes_total", dimensions: [("direction", "received")], factory: factory)
        errors = Dictionary(uniqueKeysWithValues: ErrorKind.allCases.map {
            ($0, Counter(label: "hubsync_errors_total", dimensions: [("kind", $0.rawValue)], factory: factory))
        })
    }

    func count(_ kind: ErrorKind, by n: Int = 1) {
        if n > 0 { errors[kind]?.increment(by: n) }
    }

    /// A change committed here that came from a peer: how long after its writer's clock. A
    /// merge of this device's own writing (its membership and audit records) is not one.
    func observe(_ event: ChangeEvent, now: UInt64 = Store.systemClock()) {
        guard event.origin == .remote else { return }
        let newest = event.state.fields.values.map(\.winner.stamp).max()
        guard newest?.device != device else { return }
        let written = event.state.greatestTime.millis
        propagation.recordMilliseconds(now > written ? Int64(now - written) : 0)
    }

    func gauge(_ name: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Meter {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return gauges.withLock { all in
            if let g = all[key] { return g }
            let g = Meter(label: name, dimensions: dimensions, factory: factory)
            all[key] = g
            return g
        }
    }

    /// The label a backup target gets: itself, or `other` past the first few.
    func targetLabel(_ target: String) -> String {
        targets.withLock { all in
            if all.contains(target) { return target }
            guard all.count < Self.maxTargetLabels else { return "other" }
            all.insert(target)
            return target
        }
    }

    /// A backup that finished: when, how long it took, and how large the repository is now.
    func noteBackup(target: String, finished: UInt64, seconds: Double, repositoryBytes: Int?) {
        let label = targetLabel(target)
        gauge("hubsync_backup_last_success_timestamp_seconds", [("target", label)]).set(Double(finished) / 1000)
        gauge("hubsync_backup_duration_seconds", [("target", label)]).set(seconds)
        if let repositoryBytes { gauge("hubsync_backup_repository_bytes", [("target", label)]).set(repositoryBytes) }
    }

    /// Brings the state metrics up to date and writes every metric in Prometheus' text format.
    func render(store: Store, node: SyncNode, trusted: Set<DeviceID>) async -> [UInt8] {
        let counts = (try? await store.read(.counts)) ?? [:]
        for (collection, n) in counts { gauge("hubsync_records", [("collection", collection)]).set(n) }
        gauge("hubsync_conflicts").set((try? await store.read(.conflicts).count) ?? 0)
        let statuses = node.status()
        gauge("hubsync_peers_connected").set(statuses.filter { $0.connected && trusted.contains($0.device) }.count)
        gauge("hubsync_peers_trusted").set(trusted.count)
        gauge("hubsync_change_subscriptions").set(store.subscriptionCount)
        // Labelled peers: the trusted ones, in ID order, up to the cap; the others are `other`.
        let labelled = Set(trusted.sorted().prefix(Self.maxPeerLabels))
        let untrustedNow = node.refusedCount
        counted.withLock { c in
            for s in statuses {
                let label = labelled.contains(s.device) ? s.device.short : "other"
                let counters = peerCounters(label)
                let before = c.bytes[s.device] ?? (0, 0)
                counters.sent.increment(by: max(0, s.bytesSent - before.sent))
                counters.received.increment(by: max(0, s.bytesReceived - before.received))
                c.bytes[s.device] = (max(before.sent, s.bytesSent), max(before.received, s.bytesReceived))
                let r = c.repair[s.device] ?? (0, 0, 0)
                repairRounds.increment(by: max(0, s.repairRounds - r.rounds))
                repairBytesSent.increment(by: max(0, s.repairBytesSent - r.sent))
                repairBytesReceived.increment(by: max(0, s.repairBytesReceived - r.received))
                c.repair[s.device] = (max(r.rounds, s.repairRounds), max(r.sent, s.repairBytesSent), max(r.received, s.repairBytesReceived))
            }
            count(.untrustedDevice, by: untrustedNow - c.untrusted)
            c.untrusted = max(c.untrusted, untrustedNow)
        }
        return registry.emitToBuffer()
    }

    func peerCounters(_ label: String) -> (sent: CoreMetrics.Counter, received: CoreMetrics.Counter) {
        peers.withLock { all in
            if let c = all[label] { return c }
            let c = (Counter(label: "hubsync_peer_sent_bytes_total", dimensions: [("peer", label)], factory: factory),
                     Counter(label: "hubsync_peer_received_bytes_total", dimensions: [("peer", label)], factory: factory))
            all[label] = c
            return c
        }
    }
}

extension AgentMetrics {
    /// Counts an answer of the local API that was an error, by kind.
    func countAnswer(_ status: HTTPResponse.Status) {
        switch status.code {
        case 401: count(.apiUnauthorized)
        case 404: count(.apiNotFound)
        case 409: count(.apiConflict)
        case 400..<500: count(.apiBadRequest)
        case 500...: count(.apiServer)
        default: break
        }
    }
}

extension Agent {
    /// `GET /metrics`: every metric in Prometheus' text format (version 0.0.4), behind the API's
    /// bearer token like every route (Prometheus' `authorization.credentials_file`).
    func addMetricsRoute(to router: Router<BasicRequestContext>) {
        router.get("metrics") { [self] _, _ in
            let trusted = Set(((try? await store.read(.peers)) ?? []).map(\.device))
            let bytes = await metrics.render(store: store, node: node, trusted: trusted)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}

/// The bytes a repository's files take at `target` (its packs, indexes, snapshots and keys),
/// for `hubsync_backup_repository_bytes`.
public func repositoryBytes(at target: any BackupTarget) throws -> Int {
    var total = 0
    for folder in ["data", "index", "snapshots", "keys"] {
        total += try target.list(folder).reduce(0) { $0 + $1.size }
    }
    return total
}
