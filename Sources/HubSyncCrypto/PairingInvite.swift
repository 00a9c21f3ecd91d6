/// An open invite's bookkeeping on the inviting member: its code, deadline and attempts.
///
/// Pure state; times are Unix milliseconds passed in, so tests need no clock. Every pairing run
/// on the invite uses one attempt when it starts (before the inviter answers), so a run that
/// stops half-way still counts; the first run whose code matches uses the invite up.
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

    /// A new invite valid for `ttlMillis` from `now` with `attempts` tries.
    public init(code: InviteCode, now: UInt64, ttlMillis: UInt64, attempts: Int) {
        precondition(attempts >= 1, "an invite allows at least one attempt")
        self.code = code
        expiresAt = now + ttlMillis
        attemptsLeft = attempts
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

    /// Starts a run: uses one attempt and returns how many are left, or the status that refuses it.
    public mutating func beginAttempt(now: UInt64) -> Start {
        refresh(now: now)
        switch state {
        case .joined: return .refused(.used)
        case .expired: return .refused(.expired)
        case .exhausted: return .refused(.exhausted)
        case .open: break
        }
        guard attemptsLeft > 0 else { return .refused(.exhausted) }
        attemptsLeft -= 1
        running += 1
        return .proceed(attemptsLeft: attemptsLeft)
    }

    /// Ends a run: `joined` names the device when the codes matched; otherwise `failure` says why.
    /// Returns false when the invite can no longer accept that device (it expired or another
    /// device joined meanwhile): the inviter must then not send the group.
    @discardableResult
    public mutating func finishAttempt(joined: DeviceID?, failure: String? = nil, now: UInt64) -> Bool {
        running = max(0, running - 1)
        if let joined {
            // Admitted already: a run that confirmed while the invite was open counts even if the
            // deadline passed while the member was being signed in.
            guard state == .open else { return false }
            state = .joined(joined)
            return true
        }
        lastFailure = failure
        refresh(now: now)
        return false
    }
}
