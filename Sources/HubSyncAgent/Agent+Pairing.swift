import Foundation
import Hummingbird
import HubSyncCore
import HubSyncCrypto
import HubSyncNet
import HubSyncStore
import Synchronization

/// The agent hosts pairing: its sync listener serves the runs (protocol/SPEC.md 4.2), its local
/// API opens invites and reports them, and each confirmed joiner is signed into the household's
/// membership and trusted as a peer at once.
extension Agent {
    /// Serialises changes to the household files within this process (one agent per process).
    static let householdLock = Mutex<Void>(())

    /// The household, founding a new one (this device alone, epoch 0) when there is none yet.
    func loadOrFoundHousehold() throws -> (GroupSecrets, MembershipState) {
        if let existing = try Self.householdLock.withLock({ _ in try MembershipFiles.load(in: directory) }) { return existing }
        // Membership publishes the new statements and the advert carries the group's tag at once.
        defer { trustChanged() }
        return try Self.householdLock.withLock { _ in
            if let existing = try MembershipFiles.load(in: directory) { return existing }
            if let household = try? Household.load(from: URL(fileURLWithPath: directory)) {
                let founded = try MembershipFiles.found(founder: identity.signingKey, household: household,
                                                        time: Store.systemClock(), in: directory)
                logger.info("founded a household", metadata: ["group": "\(Hex.encode(founded.0.groupID.prefix(8)))"])
                return founded
            }
            let genesis = MembershipStatement.genesis(founder: identity.signingKey, time: Store.systemClock())
            let secrets = GroupSecrets.found(groupID: genesis.groupID)
            try MembershipFiles.saveStatements([genesis], in: directory)
            try MembershipFiles.saveSecrets(secrets, in: directory)
            logger.info("founded a household", metadata: ["group": "\(Hex.encode(genesis.groupID.prefix(8)))"])
            return (secrets, MembershipState(groupID: genesis.groupID, statements: [genesis]))
        }
    }

    /// Signs the joiner into the household, saves it, and trusts the joiner as a peer.
    func admit(_ joiner: PublicSigningKey, address: String?) async throws -> (secrets: GroupSecrets, statements: [MembershipStatement]) {
        let device = DeviceID(publicKey: joiner)
        let (secrets, statements) = try Self.householdLock.withLock { _ -> (GroupSecrets, [MembershipStatement]) in
            guard let (secrets, state) = try MembershipFiles.load(in: directory) else {
                throw PairingError(code: .io, message: "this device's household files disappeared during pairing")
            }
            guard !state.removed.contains(device) else {
                throw PairingError(code: .used, message: "device \(device.short) was removed from the household "
                    + "and cannot join again with the same identity")
            }
            guard let credential = state.credential(of: identity.deviceID) else {
                throw PairingError(code: .io, message: "this device is no longer a member of its household, "
                    + "so it cannot add others")
            }
            var updated = state
            updated.insert([MembershipStatement.add(joiner, by: identity.signingKey, credential: credential,
                                                    time: Store.systemClock())])
            try MembershipFiles.saveStatements(updated.sortedStatements, in: directory)
            return (secrets, updated.sortedStatements)
        }
        // The add's record carries the address, so other members can dial the new device.
        try await publish(statements.filter { $0.kind == .add && $0.subjectDevice == device },
                          addresses: address.map { [device: $0] } ?? [:])
        _ = try await store.write(.addPeer(device, address: address))
        trustChanged()
        return (secrets, statements)
    }

    /// The pairing desk this agent's listener serves.
    func makePairingDesk() -> PairingDesk {
        PairingDesk(identity: identity.signingKey, logger: logger) { [self] joiner, address in
            try await admit(joiner, address: address)
        }
    }

    /// `POST /v1/pairing/invites` `{"ttl_seconds", "attempts"}` opens an invite and answers its
    /// code; `GET /v1/pairing/invites/NAME` reports it; `DELETE` withdraws it;
    /// `GET /v1/pairing/household` lists the members.
    func addPairingRoutes(to router: Router<BasicRequestContext>, desk: PairingDesk) {
        router.post("v1/pairing/invites") { [self] request, _ in
            let body = try await bodyObject(request)
            var ttl: Int64 = 300, attempts: Int64 = 3
            if case .int(let n) = body["ttl_seconds"] ?? .null { ttl = n }
            if case .int(let n) = body["attempts"] ?? .null { attempts = n }
            guard ttl >= 1, ttl <= 86_400 else { throw APIError(.badRequest, "\"ttl_seconds\" must be 1 to 86400") }
            guard attempts >= 1, attempts <= 100 else { throw APIError(.badRequest, "\"attempts\" must be 1 to 100") }
            let household: MembershipState
            do { household = try loadOrFoundHousehold().1 } catch let e as PairingError {
                throw APIError(.internalServerError, e.message)
            }
            guard household.isMember(identity.deviceID) else {
                throw APIError(.conflict, "this device is no longer a member of its household (it was removed), "
                    + "so it cannot invite others; pair it again with a new identity")
            }
            let invite = desk.open(ttlMillis: UInt64(ttl) * 1000, attempts: Int(attempts))
            var answer = Self.inviteJSON(invite)
            answer["revision"] = .int(Int64(desk.revision))
            answer["code"] = .string(invite.code.text)
            return json(.object(answer), status: .created)
        }
        // `?after=REVISION&wait=SECONDS` (at most 60): a long poll that answers once the desk's
        // revision passed REVISION (an attempt began or ended, the invite was withdrawn), the
        // invite left `open` (it expires at its time), or SECONDS passed; followers need no timer.
        router.get("v1/pairing/invites/:name") { request, context in
            let name = try context.parameters.require("name")
            let after = request.uri.queryParameters.get("after", as: UInt64.self)
            let wait = min(60, max(0, request.uri.queryParameters.get("wait", as: Int.self) ?? 0))
            let changes = desk.changes.subscribe()
            defer { desk.changes.unsubscribe(changes) }
            let deadline = ContinuousClock.now + .seconds(wait)
            while true {
                // The revision is read first: a change after it shows as a newer revision next time.
                let revision = desk.revision
                guard let invite = desk.invite(named: name) else { throw APIError(.notFound, "no invite named \(name)") }
                var answer = Self.inviteJSON(invite)
                answer["revision"] = .int(Int64(revision))
                guard let after, revision <= after, invite.state == .open, ContinuousClock.now < deadline else {
                    return json(.object(answer))
                }
                let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
                let expiry = ContinuousClock.now + .milliseconds(Int64(invite.expiresAt - min(invite.expiresAt, now)) + 1)
                if await changes.wait(until: min(deadline, expiry)) == .ended { return json(.object(answer)) }
            }
        }
        router.delete("v1/pairing/invites/:name") { _, context in
            desk.cancel(named: try context.parameters.require("name"))
            return json(["withdrawn": true])
        }
        router.delete("v1/pairing/household/:device") { [self] _, context in
            let device: DeviceID
            do { device = try DeviceID(parsing: try context.parameters.require("device")) } catch let e as DeviceIDError {
                throw APIError(.badRequest, e.message)
            }
            let state: MembershipState
            do { state = try await removeFromHousehold(device) } catch let e as PairingError {
                throw APIError(e.code == .unknownInvite ? .notFound : e.code == .used ? .badRequest : .internalServerError, e.message)
            }
            guard let secrets = try? MembershipFiles.loadSecrets(in: directory) else { throw APIError(.internalServerError, "no household") }
            return json(Self.householdJSON(secrets: secrets, state: state))
        }
        router.get("v1/pairing/household") { [self] _, _ in
            let loaded: (GroupSecrets, MembershipState)?
            do { loaded = try MembershipFiles.load(in: directory) } catch { throw APIError(.internalServerError, (error as? PairingError)?.message ?? "\(error)") }
            guard let (secrets, state) = loaded else { return json(["household": .null]) }
            return json(Self.householdJSON(secrets: secrets, state: state))
        }
    }

    static func inviteJSON(_ invite: PairingInvite) -> [String: Value] {
        var o: [String: Value] = [
            "name": .string(invite.code.name),
            "attempts_left": .int(Int64(invite.attemptsLeft)),
            "expires_at": .string(isoTime(Timestamp(millis: invite.expiresAt, counter: 0))),
            "last_failure": invite.lastFailure.map { .string($0) } ?? .null,
        ]
        switch invite.state {
        case .open: o["state"] = "open"
        case .joined(let device): o["state"] = "joined"; o["device_id"] = .string(device.description)
        case .expired: o["state"] = "expired"
        case .exhausted: o["state"] = "exhausted"
        }
        return o
    }

    /// The household for people and tests: group, epoch, members and removed devices.
    public static func householdJSON(secrets: GroupSecrets, state: MembershipState) -> Value {
        [
            "group_id": .string(Hex.encode(secrets.groupID)),
            "key_epoch": .int(Int64(state.keyEpoch)),
            // The epoch and a fingerprint of the group key this device holds (not the key).
            "held_key_epoch": .int(Int64(secrets.keyEpoch)),
            "held_key_id": .string(Hex.encode(Blake2b.hash("hubsync-key-id", outputLength: 16, key: secrets.groupKey).prefix(8))),
            "founder": state.founder.map { .string($0.description) } ?? .null,
            "members": .array(state.members.keys.sorted().map { .string($0.description) }),
            "removed": .array(state.removed.sorted().map { .string($0.description) }),
            "statements": .int(Int64(state.statements.count)),
        ]
    }
}
