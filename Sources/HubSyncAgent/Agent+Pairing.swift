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
        await recordAudit(.paired, subject: ["device": device.description, "address": address ?? ""],
                          detail: "admitted \(device.short) into the household by invite code")
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
            var ttl: Int64 = 300, attempts: Int64 = 3, perAddress: Int64?
            if case .int(let n) = body["ttl_seconds"] ?? .null { ttl = n }
            if case .int(let n) = body["attempts"] ?? .null { attempts = n }
            if case .int(let n) = body["attempts_per_address"] ?? .null { perAddress = n }
            guard ttl >= 1, ttl <= 86_400 else { throw APIError(.badRequest, "\"ttl_seconds\" must be 1 to 86400") }
            guard attempts >= 1, attempts <= 100 else { throw APIError(.badRequest, "\"attempts\" must be 1 to 100") }
            if let perAddress, !(1...attempts).contains(perAddress) {
                throw APIError(.badRequest, "\"attempts_per_address\" must be 1 to \"attempts\" (\(attempts))")
            }
            let household: MembershipState
            do throws(HouseholdError) { household = try await loadOrFoundHousehold() } catch {
                throw APIError(.internalServerError, error.message)
            }
            guard household.isMember(identity.deviceID) else {
                throw APIError(.conflict, "this device is no longer a member of its household (it was removed), "
                    + "so it cannot invite others; pair it again with a new identity")
            }
            let invite = desk.open(ttlMillis: UInt64(ttl) * 1000, attempts: Int(attempts),
                                   perAddressAttempts: perAddress.map { Int($0) })
            var answer = Self.inviteJSON(invite)
            answer["revision"] = .int(Int64(desk.revision))
            answer["code"] = .string(invite.code.text)
            return json(.object(answer), status: .created)
        }
        // `?after=REVISION&wait=SECONDS` (at most 60): a long poll that answers once the desk's
        // revision passed REVISION (an attempt began or ended, the invite was withdrawn), the
        // invite left `open` (it expires at its time), or SECONDS passed; followers need no timer.
        // With `name_wait=SECONDS` (at most 30), an invite a device joined through answers once that
        // device's name is known (it comes with the first sync), or SECONDS passed: `device_name`.
        router.get("v1/pairing/invites/:name") { [self] request, context in
            let name = try context.parameters.require("name")
            let after = try queryInteger(request, "after", 0...Int.max).map { UInt64($0) }
            let wait = try queryInteger(request, "wait", 0...60) ?? 0
            let nameWait = try queryInteger(request, "name_wait", 0...30) ?? 0
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
                    if case .joined(let device) = invite.state {
                        let known = await waitForName(of: device, for: .seconds(nameWait))
                        answer["device_name"] = known.map { .string($0) } ?? .null
                    }
                    return json(.object(answer))
                }
                let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
                let expiry = ContinuousClock.now + .milliseconds(Int64(invite.expiresAt - min(invite.expiresAt, now)) + 1)
                if await changes.wait(until: min(deadline, expiry)) == .ended { return json(.object(answer)) }
            }
        }
        router.delete("v1/pairing/invites/:name") { _, context in
            let name = try context.parameters.require("name")
            switch desk.withdraw(named: name) {
            case .withdrawn:
                return json(["withdrawn": true])
            case .used(let device):
                throw APIError(.conflict, "the invite \(name) was already used: device \(device) joined through it; "
                    + "to undo that, remove the device with `hubsync pair remove \(device)`")
            case .unknown:
                throw APIError(.notFound, "no invite named \(name)")
            }
        }
        router.delete("v1/pairing/household/:device") { [self] request, context in
            let device: DeviceID
            var keep: Set<DeviceID> = []
            do {
                device = try DeviceID(parsing: try context.parameters.require("device"))
                for text in (request.uri.queryParameters.get("keep_enrolled") ?? "").split(separator: ",") {
                    keep.insert(try DeviceID(parsing: String(text)))
                }
            } catch let e as DeviceIDError {
                throw APIError(.badRequest, e.message)
            }
            let flag = request.uri.queryParameters.get("remove_enrolled") ?? "false"
            guard ["true", "false", "1", "0"].contains(flag) else {
                throw APIError(.badRequest, "remove_enrolled must be true or false, not \(flag)")
            }
            let state = try await removeMember(device, keep: keep, removeEnrolled: flag == "true" || flag == "1")
            guard let secrets = household.current.secrets else { throw APIError(.internalServerError, "no household") }
            let names = await DeviceNames.read(from: store)
            return json(Self.householdJSON(secrets: secrets, state: state, names: names))
        }
        router.get("v1/pairing/household") { [self] _, _ in
            let now = household.current
            guard let secrets = now.secrets, let state = now.membership, now.isFounded else { return json(["household": .null]) }
            let names = await DeviceNames.read(from: store)
            return json(Self.householdJSON(secrets: secrets, state: state, names: names))
        }
    }

    /// Removes a member through ``removeFromHousehold(_:keep:removeEnrolled:)``, answering the
    /// API's errors: 409 with `enrolled` when it enrolled devices nobody decided about.
    func removeMember(_ device: DeviceID, keep: Set<DeviceID> = [], removeEnrolled: Bool = false) async throws -> MembershipState {
        do {
            return try await removeFromHousehold(device, keep: keep, removeEnrolled: removeEnrolled)
        } catch let e as EnrolledDevicesError {
            throw APIError(.conflict, e.message, details: [
                "device_id": .string(device.description),
                "enrolled": .array(e.enrolled.map { .string($0.description) })])
        } catch let e as HouseholdError {
            throw APIError(e.code == .notFound ? .notFound : e.code == .invalidInput ? .badRequest
                           : e.code == .refused ? .forbidden : .internalServerError, e.message)
        }
    }

    static func inviteJSON(_ invite: PairingInvite) -> [String: Value] {
        var o: [String: Value] = [
            "name": .string(invite.code.name),
            "attempts_left": .int(Int64(invite.attemptsLeft)),
            "attempts_per_address": .int(Int64(invite.perAddressAttempts)),
            "expires_at": .string(isoTime(Timestamp(millis: invite.expiresAt, counter: 0))),
            "last_failure": invite.lastFailure.map { .string($0) } ?? .null,
            "failures": .array(invite.failures.map { f in
                ["time": .string(isoTime(Timestamp(millis: f.time, counter: 0))),
                 "address": f.address.map { .string($0) } ?? .null, "reason": .string(f.reason)]
            }),
        ]
        switch invite.state {
        case .open: o["state"] = "open"
        case .joined(let device): o["state"] = "joined"; o["device_id"] = .string(device.description)
        case .expired: o["state"] = "expired"
        case .exhausted: o["state"] = "exhausted"
        }
        return o
    }

    /// The household for people and tests: group, epoch, members and removed devices, and the
    /// names (DeviceNames) of those whose name is known, by device ID.
    public static func householdJSON(secrets: HouseholdSecrets, state: MembershipState, names: [DeviceID: String] = [:]) -> Value {
        let named = Array(state.members.keys) + Array(state.removed)
        return [
            "group_id": .string(Hex.encode(secrets.groupID)),
            "key_epoch": .int(Int64(state.keyEpoch)),
            // The epoch and a fingerprint of the group key this device holds (not the key).
            "held_key_epoch": .int(Int64(secrets.epoch)),
            "held_key_id": .string(Hex.encode(Blake2b.hash("hubsync-key-id", outputLength: 16, key: secrets.groupKey).prefix(8))),
            "founder": state.founder.map { .string($0.description) } ?? .null,
            "members": .array(state.members.keys.sorted().map { .string($0.description) }),
            "removed": .array(state.removed.sorted().map { .string($0.description) }),
            // Who signed the removals that count against each removed device.
            "removed_by": .object(Dictionary(uniqueKeysWithValues: state.removedBy.map { device, issuers in
                (device.description, Value.array(issuers.sorted().map { .string($0.description) }))
            })),
            "statements": .int(Int64(state.statements.count)),
            "names": .object(Dictionary(named.compactMap { d in names[d].map { (d.description, Value.string($0)) } },
                                        uniquingKeysWith: { a, _ in a })),
        ]
    }
}
