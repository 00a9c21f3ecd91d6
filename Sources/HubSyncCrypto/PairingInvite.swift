/// An open invite's bookkeeping on the inviting member: its code, deadline and attempts.
///
/// Pure state; times are Unix milliseconds passed in, so tests need no clock. Every pairing run
/// on the invite that starts with a well-formed message 1 uses one attempt when it starts
/// (before the inviter answers), so a run that stops half-way still counts; one source address
/// may use at most ``perAddressAttempts`` of them. The first run whose code matches claims the
/// invite (``claim(for:now:)``), atomically, before its device is admitted: one code admits at
/// most one device.
public struct PairingInvite: Sendable {
    /// Where the invite stands.
    public enum State: Sendable, Equatable {
        /// Waiting for a device.
        case open
        /// A device joined with it.
        case joined(DeviceID)
        /// The time ran out first.
        case expired
        /// Every attempt was used by a wrong code.
        case exhausted
    }

    /// The code, with the secret.
    public let code: InviteCode
    /// When it expires, Unix ms.
    public let expiresAt: UInt64
    /// Attempts not yet used.
    public private(set) var attemptsLeft: Int
    /// Runs started and not yet finished.
    public private(set) var running = 0
    /// Where the invite stands, as of the last call.
    public private(set) var state: State = .open
    /// Why the last attempt failed, for the inviter's screen.
    public private(set) var lastFailure: String?
    /// The failed attempts, oldest first (at most ``maximumFailuresKept``, the latest).
    public private(set) var failures: [Failure] = []
    /// How many attempts one source address may use.
    public let perAddressAttempts: Int
    /// Attempts used, by source address.
    public private(set) var attemptsByAddress: [String: Int] = [:]

    /// One failed attempt: when, from where and why.
    public struct Failure: Sendable, Equatable {
        public var time: UInt64
        /// The source address of the connection (nil when unknown).
        public var address: String?
        public var reason: String
    }

    /// At most this many failures are kept.
    public static let maximumFailuresKept = 32

    /// A new invite valid for `ttlMillis` from `now` with `attempts` tries, at most
    /// `perAddressAttempts` of them (default: all but one, at least one) from one source address.
    public init(code: InviteCode, now: UInt64, ttlMillis: UInt64, attempts: Int, perAddressAttempts: Int? = nil) {
        precondition(attempts >= 1, "an invite allows at least one attempt")
        self.code = code
        expiresAt = now + ttlMillis
        attemptsLeft = attempts
        self.perAddressAttempts = max(1, min(attempts, perAddressAttempts ?? attempts - 1))
    }

    /// Moves an open invite to `.expired` once its time is up (no run is then in progress, or
    /// its outcome will not count).
    public mutating func refresh(now: UInt64) {
        if state == .open, now >= expiresAt { state = .expired }
        if state == .open, attemptsLeft == 0, running == 0 { state = .exhausted }
    }

    /// The outcome of ``beginAttempt(now:)``.
    public enum Start: Sendable, Equatable {
        /// The run may go on; this many attempts are left after it.
        case proceed(attemptsLeft: Int)
        /// The run is refused with this status.
        case refused(Pairing.Status)
    }

    /// Starts a run from `address`: uses one attempt and returns how many are left, or the
    /// status that refuses it (also when `address` used its share of the attempts).
    public mutating func beginAttempt(now: UInt64, from address: String? = nil) -> Start {
        refresh(now: now)
        switch state {
        case .joined: return .refused(.used)
        case .expired: return .refused(.expired)
        case .exhausted: return .refused(.exhausted)
        case .open: break
        }
        guard attemptsLeft > 0 else { return .refused(.exhausted) }
        if let address {
            guard attemptsByAddress[address, default: 0] < perAddressAttempts else { return .refused(.exhausted) }
            attemptsByAddress[address, default: 0] += 1
        }
        attemptsLeft -= 1
        running += 1
        // The joiner is told what is left to it: its address's share may end before the invite's.
        let forAddress = address.map { perAddressAttempts - attemptsByAddress[$0, default: 0] } ?? attemptsLeft
        return .proceed(attemptsLeft: min(attemptsLeft, forAddress))
    }

    /// Claims the invite for `device`, whose code confirmed: true when it was open, and then no
    /// other run can claim it. Call under the same lock as every other change, before admitting
    /// the device; ``finishAttempt(joined:failure:now:address:)`` ends the run either way.
    public mutating func claim(for device: DeviceID, now: UInt64) -> Bool {
        refresh(now: now)
        guard state == .open else { return false }
        state = .joined(device)
        return true
    }

    /// Ends a run: `joined` names the device when the codes matched; otherwise `failure` says why.
    /// Returns false when the invite can no longer accept that device (it expired or another
    /// device joined meanwhile): the inviter must then not send the group.
    /// A run that claimed the invite and then failed (the device could not be admitted) gives
    /// the claim back, so the invite is open again.
    @discardableResult
    public mutating func finishAttempt(joined: DeviceID?, failure: String? = nil, now: UInt64,
                                       address: String? = nil) -> Bool {
        running = max(0, running - 1)
        if let joined {
            // Claimed or admitted already: a run that confirmed while the invite was open counts
            // even if the deadline passed while the member was being signed in.
            if state == .joined(joined) { return true }
            guard state == .open else { return false }
            state = .joined(joined)
            return true
        }
        lastFailure = failure
        failures.append(Failure(time: now, address: address, reason: failure ?? "the run stopped"))
        if failures.count > Self.maximumFailuresKept { failures.removeFirst(failures.count - Self.maximumFailuresKept) }
        refresh(now: now)
        return false
    }

    /// Gives back the claim of `device` (its admission failed): the invite is open again.
    public mutating func releaseClaim(of device: DeviceID) {
        if state == .joined(device) { state = .open }
    }
}
