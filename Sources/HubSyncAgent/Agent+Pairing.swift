import Foundation
import Hummingbird
import HubSyncCore
import HubSyncCrypto
public import HubSyncHousehold
import HubSyncNet
import HubSyncStore

/// The agent hosts pairing: its sync listener serves the runs (protocol/SPEC.md 4.2), its local
/// API opens invites and reports them, and each confirmed joiner is signed into the household's
/// membership and trusted as a peer at once.
extension Agent {
    /// The household's membership, founding the household first when there is none yet.
    func loadOrFoundHousehold() async throws(HouseholdError) -> MembershipState {
        let wasFounded = household.current.isFounded
        let state = try await household.foundIfNeeded(time: Store.systemClock())
        if !wasFounded {
            logger.info("founded a household", metadata: ["group": "\(Hex.encode(state.groupID.prefix(8)))"])
        }
        return state
    }

    /// Signs the joiner into the household, saves it, and trusts the joiner as a peer.
    func admit(_ joiner: PublicSigningKey, address: String?) async throws -> (secrets: HouseholdSecrets, statements: [MembershipStatement]) {
        let device = DeviceID(publicKey: joiner)
        let (secrets, statements) = try await household.admit(joiner, time: Store.systemClock())
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
            do throws(HouseholdError) { household = try await loadOrFoundHousehold() } catch {
                throw APIError(.internalServerError, error.message)
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
            do { state = try await removeFromHousehold(device) } catch let e as HouseholdError {
                throw APIError(e.code == .notFound ? .notFound : e.code == .invalidInput ? .badRequest : .internalServerError, e.message)
            }
            guard let secrets = household.current.secrets else { throw APIError(.internalServerError, "no household") }
            return json(Self.householdJSON(secrets: secrets, state: state))
        }
        router.get("v1/pairing/household") { [self] _, _ in
            let now = household.current
            guard let secrets = now.secrets, let state = now.membership, now.isFounded else { return json(["household": .null]) }
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
    public static func householdJSON(secrets: HouseholdSecrets, state: MembershipState) -> Value {
        [
            "group_id": .string(Hex.encode(secrets.groupID)),
            "key_epoch": .int(Int64(state.keyEpoch)),
            // The epoch and a fingerprint of the group key this device holds (not the key).
            "held_key_epoch": .int(Int64(secrets.epoch)),
            "held_key_id": .string(Hex.encode(Blake2b.hash("hubsync-key-id", outputLength: 16, key: secrets.groupKey).prefix(8))),
            "founder": state.founder.map { .string($0.description) } ?? .null,
            "members": .array(state.members.keys.sorted().map { .string($0.description) }),
            "removed": .array(state.removed.sorted().map { .string($0.description) }),
            "statements": .int(Int64(state.statements.count)),
        ]
    }
}
