import Foundation
public import HubSyncCrypto
public import HubSyncStore
public import Logging
import NIOCore
import Synchronization

/// The inviting side of pairing on a listener: the open invites and the runs against them
/// (protocol/SPEC.md 4.1-4.4).
///
/// The sync listener hands it every connection whose first frame starts with
/// ``Pairing/firstByte``. `admit` is called once a joiner's key is confirmed: it records the
/// new member (signs its add, saves it, trusts the device) and returns what the joiner gets.
public final class PairingDesk: Sendable {
    /// Records a confirmed joiner; `address` is where its agent listens, when it said.
    public typealias Admit = @Sendable (_ joiner: PublicSigningKey, _ address: String?) async throws
        -> (secrets: HouseholdSecrets, statements: [MembershipStatement])

    let identity: SigningKey
    let logger: Logger
    let admit: Admit
    let clock: @Sendable () -> UInt64
    let invites = Mutex<[String: PairingInvite]>([:])
    /// When ``advertisedInviteNames(lingerMillis:)`` first saw each invite closed (taken inside `invites`' lock).
    let closedAt = Mutex<[String: UInt64]>([:])
    /// Counts changes to the invites (opened, withdrawn, an attempt begun or ended), for followers.
    let revisionCounter = Mutex<UInt64>(0)
    /// Signalled at every change that ``revision`` counts; an invite's expiry is a time, not an
    /// event: see ``nextTimedChange(lingerMillis:)``.
    public let changes = WakeBroadcast()

    /// The number of changes so far; a follower waits until it moves past what it last saw.
    public var revision: UInt64 { revisionCounter.withLock { $0 } }

    func changed() {
        revisionCounter.withLock { $0 += 1 }
        changes.signal()
    }

    /// A desk for `identity` that calls `admit` for each confirmed joiner.
    public init(identity: SigningKey, logger: Logger,
                clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) },
                admit: @escaping Admit) {
        self.identity = identity
        self.logger = logger
        self.clock = clock
        self.admit = admit
    }

    /// Opens a new invite with a fresh code whose name no other invite here uses.
    public func open(ttlMillis: UInt64, attempts: Int, perAddressAttempts: Int? = nil) -> PairingInvite {
        let now = clock()
        let opened = invites.withLock { all in
            var code = InviteCode.generate()
            while all[code.name] != nil { code = InviteCode.generate() }
            let invite = PairingInvite(code: code, now: now, ttlMillis: ttlMillis, attempts: attempts,
                                       perAddressAttempts: perAddressAttempts)
            all[code.name] = invite
            return invite
        }
        defer { changed() }
        return opened
    }

    /// The invite named `name`, brought up to date (expired when its time is up).
    public func invite(named name: String) -> PairingInvite? {
        let now = clock()
        return invites.withLock { all in
            guard var invite = all[name] else { return nil }
            invite.refresh(now: now)
            all[name] = invite
            return invite
        }
    }

    /// The names the agent's advert offers (`i=`, protocol/SPEC.md 4.2 and 6), sorted: every
    /// open invite, and one that closed (joined, expired, used up) less than `lingerMillis` ago,
    /// so a joiner who comes late still reaches this device and is told why it is refused. A
    /// withdrawn invite is forgotten, so it goes at once.
    public func advertisedInviteNames(lingerMillis: UInt64 = 120_000) -> [String] {
        let now = clock()
        return invites.withLock { all in
            closedAt.withLock { closed in
                var names: [String] = []
                for (name, invite) in all {
                    var invite = invite
                    invite.refresh(now: now)
                    if invite.state == .open {
                        names.append(name)
                    } else {
                        let at = closed[name] ?? now
                        closed[name] = at
                        if now - at < lingerMillis { names.append(name) }
                    }
                }
                return names.sorted()
            }
        }
    }

    /// Forgets an invite (its inviter gave up).
    /// What withdrawing an invite did.
    public enum Withdrawal: Sendable, Equatable {
        case withdrawn
        /// A device confirmed the code first (it has joined, or is being admitted): the invite stays.
        case used(by: DeviceID)
        case unknown
    }

    /// Withdraws the invite `name` unless a device has claimed it: decided in one step with the
    /// claim at key confirmation, so a withdrawal racing a join is either before it (the join
    /// fails) or after it (the answer names the device).
    public func withdraw(named name: String) -> Withdrawal {
        let now = clock()
        let outcome = invites.withLock { all -> Withdrawal in
            guard var invite = all[name] else { return .unknown }
            invite.refresh(now: now)
            if case .joined(let device) = invite.state { return .used(by: device) }
            all[name] = nil
            return .withdrawn
        }
        if outcome == .withdrawn { changed() }
        return outcome
    }

    public func cancel(named name: String) {
        _ = invites.withLock { $0.removeValue(forKey: name) }
        changed()
    }

    /// When (Unix ms) the advertised names next change with no event: an open invite expires,
    /// or a closed one stops lingering; nil when nothing is due.
    public func nextTimedChange(lingerMillis: UInt64 = 120_000) -> UInt64? {
        let now = clock()
        return invites.withLock { all in
            closedAt.withLock { closed in
                all.map { name, invite -> UInt64 in
                    var invite = invite
                    invite.refresh(now: now)
                    if invite.state == .open { return invite.expiresAt }
                    return (closed[name] ?? now) + lingerMillis
                }.filter { $0 > now }.min()
            }
        }
    }

    /// Runs the inviter's side on a connection whose first frame was `first`.
    func serve(first: [UInt8], iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
               outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, remoteHost: String?) async throws {
        let opening = try Pairing.Opening(message1: first)
        // Only a well-formed message 1 spends an attempt (its share a valid point).
        guard PairingInvite.isWellFormed(message1: first) else {
            throw PairingError(code: .invalidShare, message: "the first pairing message holds no valid share")
        }
        let name = opening.inviteName
        let now = clock()
        let (start, code) = invites.withLock { all -> (PairingInvite.Start, InviteCode?) in
            guard var invite = all[name] else { return (.refused(.unknownInvite), nil) }
            let start = invite.beginAttempt(now: now, from: remoteHost)
            all[name] = invite
            return (start, invite.code)
        }
        changed()
        guard case .proceed(let attemptsLeft) = start, let code else {
            if case .refused(let status) = start {
                logger.info("pairing refused", metadata: ["invite": "\(name)", "status": "\(status)"])
                try await outbound.write(ByteBuffer(bytes: PairingInviter.refusal(status)))
            }
            return
        }
        var inviter = PairingInviter(identity: identity, code: code, attemptsLeft: attemptsLeft)
        var finished = false
        var claimed: DeviceID?
        do {
            try await outbound.write(ByteBuffer(bytes: try inviter.receive(first)))
            guard let message3 = try await iterator.next() else {
                throw PairingError(code: .closed, message: "the joining device closed the connection "
                    + "before confirming the code (\(Pairing.attemptsLeftText(attemptsLeft, address: "that address")))")
            }
            let (joinerKey, details) = try inviter.receiveConfirmation(Array(message3.readableBytesView))
            let device = DeviceID(publicKey: joinerKey)
            // Claimed atomically before admission: of two runs that confirm at once, one joins.
            let won = invites.withLock { all -> Bool in
                guard var invite = all[name] else { return false }
                let won = invite.claim(for: device, now: clock())
                all[name] = invite
                return won
            }
            guard won else {
                throw PairingError(code: .expired, message: "the code matched but the invite \(name) expired "
                    + "or was used meanwhile; device \(device.short) was not added")
            }
            claimed = device
            let address = details.listenPort != 0 ? remoteHost.map { Self.join(host: $0, port: details.listenPort) } : nil
            // Admitted first: if that fails (say, the device was removed before), the attempt fails.
            let (secrets, statements) = try await admit(joinerKey, address)
            invites.withLock { all in
                guard var invite = all[name] else { return }
                invite.finishAttempt(joined: device, now: clock())
                all[name] = invite
            }
            changed()
            finished = true
            try await outbound.write(ByteBuffer(bytes: inviter.sealGroup(secrets: secrets, statements: statements)))
            // Its name is not known yet (its signed name record comes with its first sync): the short and the whole ID.
            logger.info("a device joined through pairing", metadata: ["invite": "\(name)", "peer.id": "\(device.short)",
                                                                     "peer.device_id": "\(device)"])
        } catch {
            if !finished {
                let message = (error as? PairingError)?.message ?? "\(error)"
                invites.withLock { all in
                    guard var invite = all[name] else { return }
                    if let claimed { invite.releaseClaim(of: claimed) }
                    invite.finishAttempt(joined: nil, failure: message, now: clock(), address: remoteHost)
                    all[name] = invite
                }
                changed()
            }
            logger.info("pairing attempt failed", metadata: ["invite": "\(name)", "reason": "\(error)"])
            throw error
        }
    }

    static func join(host: String, port: UInt16) -> String {
        (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }
}
