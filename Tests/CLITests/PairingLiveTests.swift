import Foundation
import HubSyncAgent
import HubSyncCore
import HubSyncCrypto
import Testing

/// `hubsync pair invite` running in the background: its code, then its outcome.
final class InviteProcess: Sendable {
    let process: ChildProcess
    let out: String, err: String
    let code: String

    init(_ device: Device, _ extra: String...) async throws {
        let base = device.data + "/invite-\(UUID().uuidString)"
        out = base + ".out"
        err = base + ".err"
        process = try ChildProcess(hubsyncPath, ["pair", "invite", "--data", device.data] + extra, stdout: out, stderr: err)
        // The first line of standard output is the code alone.
        var line: Substring?
        try await waitUntil("pair invite to print its code", timeout: 15) { [out, process] in
            let text = String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
            if let newline = text.firstIndex(of: "\n") { line = text[..<newline] }
            return line != nil || !process.isRunning
        }
        code = String(line ?? "")
    }

    deinit { process.signal(SIGKILL) }

    /// Waits for the command to end; returns its status and the rest of its output.
    func finish(timeout: Double) async throws -> RunResult {
        try await waitUntil("pair invite to end", timeout: timeout) { !process.isRunning }
        let stdout = String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
        return RunResult(status: await process.wait(),
                         stdout: String(stdout.drop { $0 != "\n" }.dropFirst()),
                         stderr: String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self))
    }
}

/// Pairing between real agents on loopback: the code, the exchange, then sync.
@Suite(.timeLimit(.minutes(10))) struct PairingLiveTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    func household(_ device: Device) async throws -> [String: Value] {
        try #require(try await device.ok("pair", "household", "--json").json?.objectValue)
    }

    /// The code with its last four digits changed.
    func wrong(_ code: String, _ n: Int) -> String {
        let last = Int(code.suffix(4))!
        return String(code.dropLast(4)) + String(format: "%04d", (last + n) % 10_000)
    }

    @Test func aDeviceJoinsWithTheCodeAndItsRecordsReachTheInviter() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let invite = try await InviteProcess(a.device)
        #expect(invite.code.range(of: #"^[A-Z]{4}-\d{4}-\d{4}$"#, options: .regularExpression) != nil, "\(invite.code)")
        let joined = try await b.device.ok("pair", "join", invite.code, "--host", a.listen, "--json")
        let answer = try #require(joined.json?.objectValue)
        #expect(answer["connected"] == true)
        let outcome = try await invite.finish(timeout: 10)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("joined"))

        // Both see the same household of two, and trust each other.
        let onA = try await household(a.device), onB = try await household(b.device)
        #expect(onA["group_id"] == onB["group_id"])
        #expect(onA["members"] == onB["members"])
        #expect(onA["members"]?.arrayValue?.count == 2)
        try await waitUntilConnected(a, b, "a and b connected", timeout: 10)

        try await b.api("PATCH", "/v1/records/memories/from-b", ["text": "written on the new device"])
        try await waitUntil("b's record on a", timeout: 5) { await a.record("memories", "from-b") != nil }
        try await a.api("PATCH", "/v1/records/personas/from-a", ["name": "written on the member"])
        try await waitUntil("a's record on b", timeout: 5) { await b.record("personas", "from-a") != nil }
    }

    @Test func wrongCodesUseAttemptsAndAFourthAttemptIsRefused() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        // Every try comes from 127.0.0.1 here: that address may use all three.
        let invite = try await InviteProcess(a.device, "--attempts", "3", "--attempts-per-address", "3")
        let before = try await household(a.device), beforeB = try await household(b.device)
        for (n, left) in [(1, "2 attempts left"), (2, "1 attempt left"), (3, "0 attempts left")] {
            let r = try await b.device.run("pair", "join", wrong(invite.code, n), "--host", a.listen)
            #expect(r.status == 2, "a wrong code is input") // exit 2, and the attempts left say what remains
            #expect(r.stderr.contains("the code did not match (\(left) from this address)"), "\(r.stderr)")
        }
        let fourth = try await b.device.run("pair", "join", invite.code, "--host", a.listen)
        #expect(fourth.status == 1)
        #expect(fourth.stderr.contains("no attempts left"), "\(fourth.stderr)")
        let outcome = try await invite.finish(timeout: 10)
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("ran out of attempts"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("did not match"))
        #expect(try await household(a.device) == before)
        #expect(try await household(b.device) == beforeB) // still only in the household its own init founded
        #expect(try await a.api("GET", "/v1/peers").arrayValue?.isEmpty == true)
    }

    /// One wrong code of an invite with three attempts uses one attempt, not one per connection:
    /// the invite has 2 left. The joiner hears 1 because one address may use all but one of
    /// them (the default share), and both sides say the count is that address's.
    @Test func oneWrongCodeUsesOneAttemptAndTheJoinerHearsItsAddressShare() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let invite = try await InviteProcess(a.device)
        let r = try await b.device.run("pair", "join", wrong(invite.code, 1), "--host", a.listen)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("the code did not match (1 attempt left from this address)"), "\(r.stderr)")
        let name = String(invite.code.prefix(4))
        let state = try await a.api("GET", "/v1/pairing/invites/\(name)").objectValue ?? [:]
        #expect(state["attempts_left"] == 2 && state["attempts_per_address"] == 2, "\(state)")
        #expect(state["failures"]?.arrayValue?.count == 1, "\(state)")
        // The inviter's screen says the share up front and the count of the failed attempt as the joiner's.
        try await waitUntil("the failed attempt on the inviter's screen", timeout: 10) {
            String(decoding: FileManager.default.contents(atPath: invite.err) ?? Data(), as: UTF8.self).contains("failed attempt from")
        }
        let screen = String(decoding: FileManager.default.contents(atPath: invite.err) ?? Data(), as: UTF8.self)
        #expect(screen.contains("3 attempts, at most 2 from one address"), "\(screen)")
        #expect(screen.contains("1 attempt left from that address"), "\(screen)")
    }

    @Test func anExpiredInviteIsRefusedWithItsOwnMessage() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let invite = try await InviteProcess(a.device, "--ttl", "1s")
        let before = try await household(a.device)
        let outcome = try await invite.finish(timeout: 10)
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("expired before a device joined"), "\(outcome.stderr)")
        let r = try await b.device.run("pair", "join", invite.code, "--host", a.listen)
        #expect(r.status == 1)
        #expect(r.stderr.contains("has expired"), "\(r.stderr)")
        #expect(try await household(a.device) == before)
        #expect(try await a.api("GET", "/v1/peers").arrayValue?.isEmpty == true)
    }

    @Test func anUnknownInviteAndAnUnreadableCodeAreRefused() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let unknown = try await b.device.run("pair", "join", "ABCD-1234-5678", "--host", a.listen)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no open invite named ABCD"), "\(unknown.stderr)")
        let short = try await b.device.run("pair", "join", "ABCD-1234-567", "--host", a.listen)
        #expect(short.status == 2)
        #expect(short.stderr.contains("at least 8"), "\(short.stderr)")
        // No --host: the inviter is looked for over mDNS; nobody offers ABCD (or there is no
        // avahi-daemon here), so the join fails saying so and pointing at --host.
        let noHost = try await b.device.run("pair", "join", "ABCD-1234-5678", "--find-timeout", "1")
        #expect(noHost.status == 1)
        #expect(noHost.stderr.contains("invite ABCD") && noHost.stderr.contains("--host HOST:PORT"), "\(noHost.stderr)")
        let noAgent = try await device("c").ok("init")
        _ = noAgent
        let r = try await device("c").run("pair", "invite")
        #expect(r.status == 1)
        #expect(r.stderr.contains("hubsync run"), "\(r.stderr)")
    }

    @Test func anInterruptedInviteIsWithdrawn() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let invite = try await InviteProcess(a.device)
        invite.process.signal(SIGINT)
        let outcome = try await invite.finish(timeout: 10)
        #expect(outcome.status == 130)
        #expect(outcome.stderr.contains("withdrawn"), "\(outcome.stderr)")
        let r = try await b.device.run("pair", "join", invite.code, "--host", a.listen)
        #expect(r.status == 1)
        #expect(r.stderr.contains("no open invite"), "\(r.stderr)")
    }

    @Test func aWithdrawnInviteSaysSoAndACodeCanBePipedQuietly() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let withdrawn = try await InviteProcess(a.device)
        let name = try #require(try InviteCode(parsing: withdrawn.code).name)
        _ = try await a.api("DELETE", "/v1/pairing/invites/\(name)")
        let outcome = try await withdrawn.finish(timeout: 40)
        #expect(outcome.status == 1 && outcome.stderr.contains("invite \(name) was withdrawn"), "\(outcome.stderr)")

        // `pair join -` reads the code from standard input (it never shows in the process list);
        // -q prints no confirmation.
        let invite = try await InviteProcess(a.device)
        let joined = try await b.device.ok("pair", "join", "-", "--host", a.listen, "-q", stdin: invite.code + "\n")
        #expect(joined.stdout.isEmpty && joined.stderr.isEmpty, "\(joined.stdout) \(joined.stderr)")
        #expect(try await invite.finish(timeout: 30).status == 0)
        // Withdrawing a used invite is refused and names who joined; the record of it stays.
        let usedName = try InviteCode(parsing: invite.code).name
        let late = try await a.request("DELETE", "/v1/pairing/invites/\(usedName)")
        #expect(late.status == 409 && late.body.objectValue?["error"]?.stringValue?.contains(b.id) == true, "\(late)")
        #expect(try await a.api("GET", "/v1/pairing/invites/\(usedName)").objectValue?["state"] == "joined")
        #expect(try await a.request("DELETE", "/v1/pairing/invites/ZZZZ").status == 404)
        let empty = try await device("c").run("pair", "join", "-", "--host", a.listen, stdin: "  \n")
        #expect(empty.status == 2 && empty.stderr.contains("no code was read"), "\(empty.stderr)")
    }

    @Test func malformedPairingRequestsCloseOnlyThatConnection() async throws {
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let invite = try await InviteProcess(a.device, "--attempts", "3")
        let port = UInt16(a.listen.split(separator: ":").last!)!
        let name = Array(invite.code.prefix(4).utf8)
        // A pairing first byte with garbage, a wrong version, and a cut message 1 naming the invite.
        for request in [[0x50, 0xFF, 0x00], [0x50, 9, 4] + name, [0x50, 1, 4] + name + [1, 2, 3]] as [[UInt8]] {
            let frame = [0, 0, 0, UInt8(request.count)] + request
            #expect(try await sendRaw(frame, port: port), "\(request) was not closed")
        }
        // None of them started an attempt; the invite still works.
        try await b.device.ok("pair", "join", invite.code, "--host", a.listen)
        #expect(try await invite.finish(timeout: 10).status == 0)
    }

    @Test func pairCommandsHaveHelp() async throws {
        for sub in ["invite", "join", "household", "remove"] {
            let r = try await hubsync(["pair", sub, "--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("--json"))
        }
    }
}
