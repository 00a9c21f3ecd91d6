import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncNet
import HubSyncStore
import ServiceLifecycle

/// Membership travels as records of the internal `devices` collection (``HouseholdRecords``),
/// so it syncs like everything else. Only a statement's issuer writes its record, so no record
/// ever has two concurrent writers. The agent hands the records to its ``Household``, which folds them
/// (protocol/SPEC.md 4.7) and trusts exactly its members: members become peers, removed devices
/// stop being peers and their sessions are closed at once.
extension Agent {
    /// Writes the records of statements this device issued (it is their only writer).
    func publish(_ statements: [MembershipStatement], addresses: [DeviceID: String] = [:]) async throws {
        let mine = statements.filter { $0.issuerDevice == identity.deviceID }
        guard !mine.isEmpty else { return }
        let records = mine.map {
            HouseholdRecords.record(of: $0, address: $0.kind == .add ? addresses[$0.subjectDevice] : nil, by: identity.deviceID)
        }
        _ = try await store.write(.merge(records))
    }

    /// Brings the household, records and trusted peers in line with each other; returns whether
    /// the set of peers changed.
    @discardableResult
    func reconcileMembership() async throws -> Bool {
        let records = try await store.read(.records(in: HubCollection.devices.rawValue))
        node.setPeerNames(DeviceNames.names(in: records))
        guard household.current.isFounded else { return false }
        var fromRecords: [MembershipStatement] = []
        var hints: [DeviceID: String] = [:]
        var recordsAbout: [DeviceID: [RecordState]] = [:]
        var grants: [MembershipKeyGrant] = []
        for record in records {
            if let text = record.visibleFields["grant"]?.stringValue, let bytes = Hex.decode(text),
               let grant = try? MembershipKeyGrant(encoded: bytes) {
                grants.append(grant)
                continue
            }
            guard let text = record.visibleFields["statement"]?.stringValue, let bytes = Hex.decode(text),
                  let statement = try? MembershipStatement(encoded: bytes) else { continue }
            fromRecords.append(statement)
            recordsAbout[statement.subjectDevice, default: []].append(record)
            if let address = record.visibleFields["address"]?.stringValue { hints[statement.subjectDevice] = address }
        }
        guard let outcome = try await household.merge(statements: fromRecords, grants: grants,
                                                      recorded: Set(records.map(\.key.id))) else { return false }
        try await publish(outcome.unrecorded)
        if !outcome.issued.isEmpty { try await publish(outcome.issued) }
        if outcome.keyChanged {
            logger.info("holding the group key of a new epoch", metadata: ["epoch": "\(household.current.secrets?.epoch ?? 0)"])
        }
        let state = outcome.state

        let me = identity.deviceID
        let peers = try await store.read(.peers)
        let known = Dictionary(peers.map { ($0.device, $0) }, uniquingKeysWith: { a, _ in a })
        var changed = false
        for device in state.members.keys where device != me {
            let hint = hints[device]
            if let peer = known[device], peer.address != nil || hint == nil { continue }
            _ = try await store.write(.addPeer(device, address: hint))
            logger.info("trusting a household member", metadata: node.peerMetadata(device).merging(["address": "\(hint ?? "-")"]) { $1 })
            changed = true
        }
        for device in state.removed where known[device] != nil || node.status().contains(where: { $0.device == device && $0.connected }) {
            _ = try await store.write(.removePeer(device))
            // The statements about it go with the goodbye: the push of the removal may not have run.
            await node.closeSession(with: device, sending: Array((recordsAbout[device] ?? []).prefix(64)))
            logger.info("dropped a device removed from the household", metadata: node.peerMetadata(device))
            changed = true
        }
        if changed { trustChanged() }
        return changed
    }

    /// Removes `device` from the household: the household signs the removal (adding again the
    /// enrolled members in `keep`, removing the others with `removeEnrolled`, refusing otherwise)
    /// and grants a fresh group key to every remaining member; this publishes both and applies
    /// the result at once.
    func removeFromHousehold(_ device: DeviceID, keep: Set<DeviceID> = [], removeEnrolled: Bool = false) async throws -> MembershipState {
        let (state, issued, grants) = try await household.remove(device, keep: keep, removeEnrolled: removeEnrolled,
                                                                 time: Store.systemClock())
        try await publish(issued)
        try await publish(grants)
        logger.info("granted a new group key", metadata: ["epoch": "\(state.keyEpoch)", "members": "\(grants.count)"])
        try await reconcileMembership()
        await recordAudit(.removed, subject: ["device": device.description], detail: "removed \(device.short) from the household"
            + (keep.isEmpty ? "" : "; kept \(keep.map(\.short).sorted().joined(separator: ", ")), which it had enrolled")
            + (removeEnrolled ? "; removed the devices it had enrolled" : ""))
        await recordAudit(.keyRotated, subject: ["epoch": "\(state.keyEpoch)", "members": "\(grants.count)"],
                          detail: "granted a new group key for epoch \(state.keyEpoch) to \(grants.count) members")
        return state
    }

    /// Writes the records of grants this device issued.
    func publish(_ grants: [MembershipKeyGrant]) async throws {
        let records = grants.map { HouseholdRecords.record(of: $0, by: identity.deviceID) }
        _ = try await store.write(.merge(records))
    }

    /// Keeps membership applied: at start, on every change to the `devices` collection, and when
    /// trust changes (a peer added, the household changed: its updates are passed on as trust
    /// changes). The agent is the only
    /// writer of its store and household files, so nothing changes unseen: no periodic re-read.
    struct MembershipService: Service {
        let agent: Agent

        func run() async throws {
            let devices = HubCollection.devices.rawValue
            let subscription = agent.store.changeSignal { $0.state.key.collection == devices }
            let wake = agent.trustChanges.subscribe(pending: true)
            defer {
                subscription.cancel()
                agent.trustChanges.unsubscribe(wake)
            }
            do {
                try await cancelWhenGracefulShutdown {
                    try await withThrowingDiscardingTaskGroup { group in
                        group.addTask {
                            while await subscription.wait() { wake.signal() }
                        }
                        group.addTask {
                            // The household changed (founded, joined, a member added or removed, a
                            // new key held): dialers, the advert's tag and membership follow.
                            for await _ in agent.household.updates().dropFirst() { agent.trustChanged() }
                        }
                        group.addTask {
                            defer { subscription.cancel() }
                            // A failed attempt (a busy store, a file that could not be written) is tried
                            // again after a pause, longer each time: no later event may come to retry it.
                            var retry: Duration = .seconds(1)
                            while await wake.wait() {
                                do {
                                    try await agent.reconcileMembership()
                                    retry = .seconds(1)
                                } catch {
                                    // A call cancelled because the agent is stopping (or failed to start) is no store trouble.
                                    if Task.isCancelled || (error as? any CodedError)?.code == .cancelled { return }
                                    agent.logger.warning("membership not applied; trying again", metadata: [
                                        "error": "\(error)", "retry_seconds": "\(retry.components.seconds)"])
                                    try await Deadlines.sleep(for: retry)
                                    retry = min(retry * 2, .seconds(60))
                                    wake.signal()
                                }
                            }
                        }
                    }
                }
            } catch is CancellationError {
                return
            }
        }
    }
}
