@testable import HubSyncAgent
import Synchronization
import Testing

/// The sign-in codes and sessions without a server (protocol/SPEC.md 9.2): their times come in
/// as arguments, so expiry is tested without waiting.
@Suite struct DashboardSessionTests {
    @Test func aCodeWorksOnceWithinItsTime() throws {
        let sessions = DashboardSessions()
        let t0: UInt64 = 1_800_000_000_000
        let (code, expiry) = sessions.mintCode(now: t0)
        #expect(expiry == t0 + 120_000 && code.count == 32)
        let (id, session) = try sessions.redeem(code, now: t0 + 1000)
        #expect(id.count == 64 && session.csrf.count == 64 && id != session.csrf)
        #expect(sessions.session(id, now: t0 + 2000)?.csrf == session.csrf)
        #expect(throws: DashboardSessions.Refusal.used) { try sessions.redeem(code, now: t0 + 3000) }
        // The session ends after 12 hours.
        #expect(sessions.session(id, now: t0 + 1000 + 12 * 3600 * 1000) == nil)
        #expect(sessions.session(id, now: t0 + 2000) == nil, "an expired session is gone")
    }

    @Test func anExpiredCodeIsRefusedAndStaysRefused() {
        let sessions = DashboardSessions()
        let t0: UInt64 = 1_800_000_000_000
        let (code, _) = sessions.mintCode(now: t0)
        #expect(throws: DashboardSessions.Refusal.expired) { try sessions.redeem(code, now: t0 + 120_000) }
        #expect(throws: DashboardSessions.Refusal.used) { try sessions.redeem(code, now: t0 + 120_001) }
        #expect(throws: DashboardSessions.Refusal.unknown) { try sessions.redeem("00", now: t0) }
        // Expired before its use and cleared when the next code was made: still "expired".
        let (late, _) = sessions.mintCode(now: t0)
        _ = sessions.mintCode(now: t0 + 130_000)
        #expect(throws: DashboardSessions.Refusal.expired) { try sessions.redeem(late, now: t0 + 130_001) }
    }

    @Test func codesAndSessionsAreBounded() throws {
        let sessions = DashboardSessions()
        let t0: UInt64 = 1_800_000_000_000
        let codes = (0..<40).map { sessions.mintCode(now: t0 + UInt64($0)).code }
        // The oldest were dropped; the newest 16 work.
        #expect(throws: DashboardSessions.Refusal.replaced) { try sessions.redeem(codes[0], now: t0 + 100) }
        var ids: [String] = []
        for code in codes.suffix(16) { ids.append(try sessions.redeem(code, now: t0 + 100).id) }
        for i in 0..<40 { ids.append(try sessions.redeem(sessions.mintCode(now: t0 + 200 + UInt64(i)).code, now: t0 + 200 + UInt64(i)).id) }
        #expect(ids.filter { sessions.session($0, now: t0 + 1000) != nil }.count == DashboardSessions.maxSessions)
        #expect(sessions.session(ids.last!, now: t0 + 1000) != nil)
    }

    @Test(arguments: [
        ("127.0.0.1:7401", true), ("localhost:7401", true), ("[::1]:7401", true), ("127.255.0.1:7401", true),
        ("127.0.0.1", false), ("127.0.0.1:7402", false), ("evil.test:7401", false), ("127.0.0.1.evil.test:7401", false),
        ("[::1]:", false), ("[::1", false), ("127.0.0.1:", false), ("127.0.0.1: 7401", false),
        ("1.0.0.127:7401", false), ("127.0.0:7401", false), ("127.0.0.1.:7401", false), ("０.0.0.1:7401", false), ("", false),
    ])
    func theHostRule(host: String, allowed: Bool) {
        let sessions = DashboardSessions()
        sessions.port.store(7401, ordering: .relaxed)
        #expect(sessions.allows(host: host) == allowed, "\(host)")
    }
}
