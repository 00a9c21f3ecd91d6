import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// `hubsync pair invite` running in the background: its code, then its outcome.
final class InviteProcess: @unchecked Sendable { // used from one test at a time
    let process = Process()
    let out = Pipe(), err = Pipe()
    private(set) var code = ""

    init(_ device: Device, _ extra: String...) throws {
        process.executableURL = URL(fileURLWithPath: hubsyncPath)
        process.arguments = ["pair", "invite", "--data", device.data] + extra
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // The first line of standard output is the code alone.
        var line: [UInt8] = []
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            guard let b = byte.first else { break }
            if b == UInt8(ascii: "\n") { break }
            line.append(b)
        }
        code = String(decoding: line, as: UTF8.self)
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }

    /// Waits for the command to end; returns its status and the rest of its output.
    func finish(timeout: Double) throws -> RunResult {
        try waitUntil("pair invite to end", timeout: timeout) { !process.isRunning }
        return RunResult(status: process.terminationStatus,
                         stdout: String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                         stderr: String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}

/// Pairing between real agents on loopback: the code, the exchange, then sync.
@Suite(.timeLimit(.minutes(5))) struct PairingLiveTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    func household(_ device: Device) throws -> [String: Value] {
        try #require(try device.ok("pair", "household", "--json").json?.objectValue)
    }

    /// The code with its last four digits changed.
    func wrong(_ code: String, _ n: Int) -> String {
        let last = Int(code.suffix(4))!
        return String(code.dropLast(4)) + String(format: "%04d", (last + n) % 10_000)
    }

    @Test func aDeviceJoinsWithTheCodeAndItsRecordsReachTheInviter() throws {
        let a = try AgentProcess(device("a")), b = try AgentProcess(device("b"))
        let invite = try InviteProcess(a.device)
        #expect(invite.code.range(of: #"^[A-Z]{4}-\d{4}-\d{4}$"#, options: .regularExpression) != nil, "\(invite.code)")
        let joined = try b.device.ok("pair", "join", invite.code, "--host", a.listen, "--json")
        let answer = try #require(joined.json?.objectValue)
        #expect(answer["connected"] == true)
        let outcome = try invite.finish(timeout: 10)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("joined"))

        // Both see the same household of two, and trust each other.
        let onA = try household(a.device), onB = try household(b.device)
        #expect(onA["group_id"] == onB["group_id"])
        #expect(onA["members"] == onB["members"])
        #expect(onA["members"]?.arrayValue?.count == 2)
        try waitUntil("a and b connected", timeout: 10) { a.isConnected(to: b) && b.isConnected(to: a) }

        try b.api("PATCH", "/v1/records/memories/from-b", ["text": "written on the new device"])
        try waitUntil("b's record on a", timeout: 5) { a.record("memories", "from-b") != nil }
        try a.api("PATCH", "/v1/records/personas/from-a", ["name": "written on the member"])
        try waitUntil("a's record on b", timeout: 5) { b.record("personas", "from-a") != nil }
    }

    @Test func wrongCodesUseAttemptsAndAFourthAttemptIsRefused() throws {
        let a = try AgentProcess(device("a")), b = try AgentProcess(device("b"))
        let invite = try InviteProcess(a.device, "--attempts", "3")
        let before = try household(a.device), beforeB = try household(b.device)
        for (n, left) in [(1, "2 attempts left"), (2, "1 attempt left"), (3, "0 attempts left")] {
            let r = try b.device.run("pair", "join", wrong(invite.code, n), "--host", a.listen)
            #expect(r.status == 1)
            #expect(r.stderr.contains("the code did not match (\(left))"), "\(r.stderr)")
        }
        let fourth = try b.device.run("pair", "join", invite.code, "--host", a.listen)
        #expect(fourth.status == 1)
        #expect(fourth.stderr.contains("no attempts left"), "\(fourth.stderr)")
        let outcome = try invite.finish(timeout: 10)
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("ran out of attempts"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("did not match"))
        #expect(try household(a.device) == before)
        #expect(try household(b.device) == beforeB) // still only in the household its own init founded
        #expect(try a.api("GET", "/v1/peers").arrayValue?.isEmpty == true)
    }

    @Test func anExpiredInviteIsRefusedWithItsOwnMessage() throws {
        let a = try AgentProcess(device("a")), b = try AgentProcess(device("b"))
        let invite = try InviteProcess(a.device, "--ttl", "1s")
        let before = try household(a.device)
        let outcome = try invite.finish(timeout: 10)
        #expect(outcome.status == 1)
        #expect(outcome.stderr.contains("expired before a device joined"), "\(outcome.stderr)")
        let r = try b.device.run("pair", "join", invite.code, "--host", a.listen)
        #expect(r.status == 1)
        #expect(r.stderr.contains("has expired"), "\(r.stderr)")
        #expect(try household(a.device) == before)
        #expect(try a.api("GET", "/v1/peers").arrayValue?.isEmpty == true)
    }

    @Test func anUnknownInviteAndAnUnreadableCodeAreRefused() throws {
        let a = try AgentProcess(device("a")), b = try AgentProcess(device("b"))
        let unknown = try b.device.run("pair", "join", "ABCD-1234-5678", "--host", a.listen)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no open invite named ABCD"), "\(unknown.stderr)")
        let short = try b.device.run("pair", "join", "ABCD-1234-567", "--host", a.listen)
        #expect(short.status == 2)
        #expect(short.stderr.contains("at least 8"), "\(short.stderr)")
        let noHost = try b.device.run("pair", "join", "ABCD-1234-5678")
        #expect(noHost.status == 2)
        #expect(noHost.stderr.contains("--host"))
        let noAgent = try device("c").ok("init")
        _ = noAgent
        let r = try device("c").run("pair", "invite")
        #expect(r.status == 1)
        #expect(r.stderr.contains("hubsync run"), "\(r.stderr)")
    }

    @Test func anInterruptedInviteIsWithdrawn() throws {
        let a = try AgentProcess(device("a")), b = try AgentProcess(device("b"))
        let invite = try InviteProcess(a.device)
        kill(invite.process.processIdentifier, SIGINT)
        let outcome = try invite.finish(timeout: 10)
        #expect(outcome.status == 130)
        #expect(outcome.stderr.contains("withdrawn"), "\(outcome.stderr)")
        let r = try b.device.run("pair", "join", invite.code, "--host", a.listen)
        #expect(r.status == 1)
        #expect(r.stderr.contains("no open invite"), "\(r.stderr)")
    }

    @Test func malformedPairingRequestsCloseOnlyThatConnection() throws {
        let a = try AgentProcess(device("a")), b = try AgentProcess(device("b"))
        let invite = try InviteProcess(a.device, "--attempts", "3")
        let port = UInt16(a.listen.split(separator: ":").last!)!
        let name = Array(invite.code.prefix(4).utf8)
        // A pairing first byte with garbage, a wrong version, and a cut message 1 naming the invite.
        for request in [[0x50, 0xFF, 0x00], [0x50, 9, 4] + name, [0x50, 1, 4] + name + [1, 2, 3]] as [[UInt8]] {
            let frame = [0, 0, 0, UInt8(request.count)] + request
            #expect(try sendRaw(frame, port: port), "\(request) was not closed")
        }
        // None of them started an attempt; the invite still works.
        try b.device.ok("pair", "join", invite.code, "--host", a.listen)
        #expect(try invite.finish(timeout: 10).status == 0)
    }

    @Test func pairCommandsHaveHelp() throws {
        for sub in ["invite", "join", "household", "remove"] {
            let r = try hubsync(["pair", sub, "--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("--json"))
        }
    }
}
