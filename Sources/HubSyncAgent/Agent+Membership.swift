import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncNet
import HubSyncStore
import ServiceLifecycle
import Synchronization

/// Membership travels as records of the internal `devices` collection, so it syncs like
/// everything else: one record per statement, ID = the statement's hash (hex), field
/// `statement` = its 217 bytes (hex), and on adds the issuer's hint `address` (where it saw the
/// new device's agent). Only a statement's issuer writes its record, so no record ever has two
/// concurrent writers. The agent folds files and records into the household
/// (protocol/SPEC.md 4.7) and trusts exactly its members: members become peers, removed devices
/// stop being peers and their sessions are closed at once.
extension Agent {
    /// The record of one statement.
    func statementRecord(_ statement: MembershipStatement, address: String?) -> RecordState {
        var state = RecordState(key: RecordKey(collection: HubCollection.devices.rawValue, id: Hex.encode(statement.hash)))
        let stamp = Stamp(time: Timestamp(millis: Store.systemClock(), counter: 0), device: identity.deviceID)
        state.undelete(stamp: stamp)
        state.write(field: "statement", value: .string(Hex.encode(statement.encoded())), stamp: stamp)
        if let address { state.write(field: "address", value: .string(address), stamp: stamp) }
        return state
    }

    /// Writes the records of statements this device issued (it is their only writer).
    func publish(_ statements: [MembershipStatement], addresses: [DeviceID: String] = [:]) async throws {
        let mine = statements.filter { $0.issuerDevice == identity.deviceID }
        guard !mine.isEmpty else { return }
        let records = mine.map { statementRecord($0, address: $0.kind == .add ? addresses[$0.subjectDevice] : nil) }
        _ = try await store.write(.merge(records))
    }

    /// Brings files, records and trusted peers in line with the household; returns whether the
    /// set of peers changed.
    @discardableResult
    func reconcileMembership() async throws -> Bool {
        let directory = self.directory
        guard let secrets = try MembershipFiles.loadSecrets(in: directory) else { return false }
        let records = try await store.read(.records(in: HubCollection.devices.rawValue))
        var fromRecords: [MembershipStatement] = []
        var hints: [DeviceID: String] = [:]
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
            if let address = record.visibleFields["address"]?.stringValue { hints[statement.subjectDevice] = address }
        }
        let (state, unpublished) = try Self.householdLock.withLock { _ -> (MembershipState, [MembershipStatement]) in
            let fromFile = try MembershipFiles.loadStatements(in: directory)
            var state = MembershipState(groupID: secrets.groupID, statements: fromFile)
            if !state.insert(fromRecords).isEmpty {
                try MembershipFiles.saveStatements(state.sortedStatements, in: directory)
            }
            let recorded = Set(records.map(\.key.id))
            return (state, state.sortedStatements.filter { !recorded.contains(Hex.encode($0.hash)) })
        }
        try await publish(unpublished)
        try await applyKeyGrants(grants, state: state, secrets: secrets)

        let me = identity.deviceID
        let peers = try await store.read(.peers)
        let known = Dictionary(peers.map { ($0.device, $0) }, uniquingKeysWith: { a, _ in a })
        var changed = false
        for device in state.members.keys where device != me {
            let hint = hints[device]
            if let peer = known[device], peer.address != nil || hint == nil { continue }
            _ = try await store.write(.addPeer(device, address: hint))
            logger.info("trusting a household member", metadata: ["peer.id": "\(device)", "address": "\(hint ?? "-")"])
            changed = true
        }
        for device in state.removed where known[device] != nil || node.status().contains(where: { $0.device == device && $0.connected }) {
            _ = try await store.write(.removePeer(device))
            await node.closeSession(with: device)
            logger.info("dropped a device removed from the household", metadata: ["peer.id": "\(device)"])
            changed = true
        }
        if changed { trustChanged() }
        return changed
    }

    /// Removes `device` from the household: signs the removal, re-adds the members whose chain
    /// ran through it, grants a fresh group key to every remaining member and applies the
    /// result at once.
    func removeFromHousehold(_ device: DeviceID) async throws -> MembershipState {
        let directory = self.directory
        let (state, issued) = try Self.householdLock.withLock { _ -> (MembershipState, [MembershipStatement]) in
            guard let (_, before) = try MembershipFiles.load(in: directory) else {
                throw PairingError(code: .io, message: "this device has no household; nothing to remove")
            }
            guard let key = before.members[device] else {
                throw PairingError(code: .unknownInvite, message: "\(device) is not a member of this household"
                    + (before.removed.contains(device) ? " (it was removed already)" : "") + "; see `hubsync pair household`")
            }
            guard device != identity.deviceID else {
                throw PairingError(code: .used, message: "a device cannot remove itself; remove it from another member")
            }
            guard let credential = before.credential(of: identity.deviceID) else {
                throw PairingError(code: .io, message: "this device is no longer a member, so it cannot remove others")
            }
            let time = Store.systemClock()
            var after = before
            var issued = [MembershipStatement.remove(key, by: identity.signingKey, credential: credential, time: time)]
            after.insert(issued)
            // Members whose only chain ran through the removed device are added again by this one.
            for (orphan, orphanKey) in before.members where orphan != device && !after.isMember(orphan) {
                let add = MembershipStatement.add(orphanKey, by: identity.signingKey, credential: credential, time: time)
                issued.append(add)
                after.insert([add])
            }
            try MembershipFiles.saveStatements(after.sortedStatements, in: directory)
            return (after, issued)
        }
        try await publish(issued)
        try await grantNewKey(state: state)
        try await reconcileMembership()
        return state
    }

    /// Draws a fresh group key for the state's epoch and grants it to every member, this
    /// device included; returns the grants written.
    @discardableResult
    func grantNewKey(state: MembershipState) async throws -> [MembershipKeyGrant] {
        let key = SymmetricKey.random(byteCount: 32)
        let grants = state.members.values.map {
            MembershipKeyGrant.make(key: key, epoch: state.keyEpoch, groupID: state.groupID, recipient: $0,
                                    issuer: identity.signingKey)
        }
        let stamp = Stamp(time: Timestamp(millis: Store.systemClock(), counter: 0), device: identity.deviceID)
        let records = grants.map { grant -> RecordState in
            let bytes = grant.encoded()
            var record = RecordState(key: RecordKey(collection: HubCollection.devices.rawValue,
                                                    id: "grant-" + Hex.encode(Blake2b.hash(bytes, outputLength: 32))))
            record.undelete(stamp: stamp)
            record.write(field: "grant", value: .string(Hex.encode(bytes)), stamp: stamp)
            return record
        }
        _ = try await store.write(.merge(records))
        logger.info("granted a new group key", metadata: ["epoch": "\(state.keyEpoch)", "members": "\(grants.count)"])
        return grants
    }

    /// Holds the key of the current grant (the highest epoch, then the smallest issuer). When
    /// the household's epoch is past every grant (removals made concurrently on two members),
    /// the member with the smallest device ID grants a new key for it.
    func applyKeyGrants(_ grants: [MembershipKeyGrant], state: MembershipState, secrets: GroupSecrets) async throws {
        let me = identity.deviceID
        guard state.isMember(me) else { return }
        let current = state.currentGrant(for: me, among: grants)
        // A device that joined after a rotation holds the current key from its inviter, not a grant.
        if state.keyEpoch > max(current?.epoch ?? 0, secrets.keyEpoch), state.members.keys.min() == me,
           !grants.contains(where: { $0.issuerDevice == me && $0.epoch == state.keyEpoch }) {
            let issued = try await grantNewKey(state: state)
            return try await applyKeyGrants(grants + issued, state: state, secrets: secrets)
        }
        guard let current, let key = current.open(with: identity.signingKey),
              current.epoch != secrets.keyEpoch || key != secrets.groupKey else { return }
        let directory = self.directory
        try Self.householdLock.withLock { _ in
            try MembershipFiles.saveSecrets(GroupSecrets(groupID: secrets.groupID, groupKey: key, keyEpoch: current.epoch,
                                                         recoveryPublicKey: secrets.recoveryPublicKey), in: directory)
        }
        trustChanged() // the advert's tag follows the key
        logger.info("holding the group key of a new epoch", metadata: ["epoch": "\(current.epoch)", "issuer": "\(current.issuerDevice.short)"])
    }

    /// Keeps membership applied: at start, on every change to the `devices` collection, and when
    /// trust changes (a joiner's household files saved, a peer added). The agent is the only
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
                            defer { subscription.cancel() }
                            // A failed attempt (a busy store, a file that could not be written) is tried
                            // again after a pause, longer each time: no later event may come to retry it.
                            var retry: Duration = .seconds(1)
                            while await wake.wait() {
                                do {
                                    try await agent.reconcileMembership()
                                    retry = .seconds(1)
                                } catch {
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
