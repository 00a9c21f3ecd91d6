import Foundation
import Hummingbird
import HubSyncCore
public import HubSyncCrypto
public import HubSyncHousehold
import HubSyncNet
import HubSyncStore

/// Joining a household, on whichever process holds the data directory: `hubsync pair join`
/// itself when no agent runs, else the agent (`POST /v1/pairing/join`), so the household files
/// always have one writer.
public enum HouseholdJoin {
    /// What a join brought.
    public struct Outcome: Sendable {
        public var result: PairingJoinResult
        public var state: MembershipState
    }

    /// Runs the pairing exchange with the inviter at `address` and has `household` adopt what it
    /// sends. The caller holds the directory's writer lock (it is the agent, or a command that took it).
    public static func join(household: Household, code: InviteCode, address: String,
                            listenPort: UInt16) async throws -> Outcome {
        try household.current.checkCanJoin()
        let result = try await PairingClient.join(address: address, code: code, identity: household.identity.signingKey,
                                                  details: JoinerDetails(listenPort: listenPort))
        let state = try await household.adopt(result.secrets, statements: result.statements, inviter: result.inviterDevice)
        return Outcome(result: result, state: state)
    }
}

extension Agent {
    /// Waits until a session with `device` is up, woken by session changes; false after `limit`.
    func waitForSession(with device: DeviceID, for limit: Duration) async -> Bool {
        let changes = node.sessionChanges.subscribe(pending: true)
        defer { node.sessionChanges.unsubscribe(changes) }
        let deadline = ContinuousClock.now + limit
        while true {
            if node.status().contains(where: { $0.device == device && $0.connected }) { return true }
            guard await changes.wait(until: deadline) == .signalled else { return false }
        }
    }

    /// `POST /v1/pairing/join` `{"code", "address", "connect_seconds"}`: this agent joins the
    /// household of the invite at `address`, trusts the inviter, waits (up to `connect_seconds`,
    /// default 15) until it is connected to it, and answers the household with `"inviter"` and
    /// `"connected"`.
    func addJoinRoute(to router: Router<BasicRequestContext>) {
        router.post("v1/pairing/join") { [self] request, _ in
            let body = try await bodyObject(request)
            var connectSeconds: Int64 = 15
            if case .int(let n) = body["connect_seconds"] ?? .null { connectSeconds = n }
            guard (0...120).contains(connectSeconds) else { throw APIError(.badRequest, "\"connect_seconds\" must be 0 to 120") }
            guard let text = body["code"]?.stringValue, let address = body["address"]?.stringValue else {
                throw APIError(.badRequest, "give \"code\" and \"address\" (the inviter's HOST:PORT)")
            }
            let code: InviteCode
            do { code = try InviteCode(parsing: text) } catch let e as PairingError { throw APIError(.badRequest, e.message) }
            guard SyncNode.split(address) != nil else { throw APIError(.badRequest, "\"address\" must be HOST:PORT") }
            let listenPort = ready.withLock { $0.listen }.flatMap(SyncNode.split).flatMap { UInt16(exactly: $0.1) } ?? 0
            let outcome: HouseholdJoin.Outcome
            do {
                outcome = try await HouseholdJoin.join(household: household, code: code, address: address,
                                                       listenPort: listenPort)
            } catch let e as HouseholdError {
                throw APIError(e.code == .used ? .conflict : .forbidden, e.message)
            } catch let e as PairingError {
                // A wrong code is the caller's input: marked, so a client tells it from a refusal.
                throw APIError(e.code == .used ? .conflict : .forbidden, e.message,
                               details: e.code == .wrongCode ? ["wrong_code": .bool(true)] : [:])
            } catch let e as NetError {
                throw APIError(.badGateway, e.message)
            }
            let inviter = outcome.result.inviterDevice
            _ = try await store.write(.addPeer(inviter, address: address))
            await recordAudit(.paired, subject: ["inviter": inviter.description, "address": address],
                              detail: "joined the household through \(inviter.short) by invite code")
            // The trusted peers changed (the household's own update follows): dialers and the advert follow.
            trustChanged()
            var answer = Self.householdJSON(secrets: outcome.result.secrets, state: outcome.state).objectValue ?? [:]
            answer["inviter"] = .string(inviter.description)
            let connected = await waitForSession(with: inviter, for: .seconds(connectSeconds))
            answer["connected"] = .bool(connected)
            // The inviter's name comes with the first sync: worth a few seconds, so the person sees whom they joined.
            let name = connected ? await waitForName(of: inviter, for: .seconds(min(5, connectSeconds))) : nil
            answer["inviter_name"] = name.map { .string($0) } ?? .null
            return json(.object(answer))
        }
    }
}
