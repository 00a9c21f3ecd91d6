import Foundation
import HubSyncCore
import Testing

/// Attacks on pairing invites by an adversary written from the SPEC alone
/// (Tests/hostile/household/invite_adversary.py, libsodium through ctypes), against a real agent.
@Suite(.timeLimit(.minutes(10))) struct InviteAttackTests {
    let dir = TemporaryDirectory()

    static var script: String {
        ExampleTests.repository.appendingPathComponent("Tests/hostile/household/invite_adversary.py").path
    }

    /// Runs the adversary against `agent`'s sync listener; answers its JSON line.
    func adversary(_ agent: AgentProcess, _ args: String...) async throws -> [String: Value] {
        let (host, port) = try #require(agent.listen.split(separator: ":").map(String.init).splitPair)
        let r = try await runProgram("/usr/bin/env", ["python3", Self.script, args[0], "--host", host, "--port", port] + args.dropFirst())
        #expect(r.status == 0, "\(r.stderr)")
        return try #require(try JSON.parse(r.stdout).objectValue, "\(r.stdout) \(r.stderr)")
    }

    func openInvite(_ agent: AgentProcess, attempts: Int = 3) async throws -> (code: String, name: String) {
        let o = try await agent.api("POST", "/v1/pairing/invites", ["ttl_seconds": 300, "attempts": .int(Int64(attempts))]).objectValue ?? [:]
        return (try #require(o["code"]?.stringValue), try #require(o["name"]?.stringValue))
    }

    func invite(_ agent: AgentProcess, _ name: String) async throws -> [String: Value] {
        try await agent.api("GET", "/v1/pairing/invites/\(name)").objectValue ?? [:]
    }

    /// The name is public (the advert's `i=`): messages that are not a real pairing message 1
    /// spend no attempt, and the right code still joins afterwards.
    @Test func malformedMessagesBurnNoAttempts() async throws {
        let a = try await AgentProcess(Device(data: dir.path + "/a"))
        let (code, name) = try await openInvite(a)
        let burnt = try await adversary(a, "burn", "--name", name, "--count", "12")
        #expect(burnt["sent"] == 12)
        let after = try await invite(a, name)
        #expect(after["attempts_left"] == 3 && after["state"] == "open", "\(after)")
        let b = Device(data: dir.path + "/b")
        try await b.ok("init")
        try await b.ok("pair", "join", code, "--host", a.listen)
        #expect(try await invite(a, name)["state"] == "joined")
    }

    /// Two joiners with the right code confirm at the same moment: exactly one joins.
    @Test func oneCodeAdmitsOneDevice() async throws {
        let a = try await AgentProcess(Device(data: dir.path + "/a"))
        let (code, name) = try await openInvite(a)
        let raced = try await adversary(a, "race", "--code", code, "--runs", "2")
        #expect(raced["confirmed"] == 2, "both runs should reach the confirmation: \(raced)")
        #expect(raced["joined"] == 1, "\(raced)")
        #expect(try await invite(a, name)["state"] == "joined")
        let members = try await a.api("GET", "/v1/pairing/household").objectValue?["members"]?.arrayValue ?? []
        #expect(members.count == 2, "\(members)")
    }

    /// One source address uses at most its share of the attempts (2 of 3), so a device elsewhere
    /// can still join; `pair invite` shows each failed attempt with its source address.
    @Test func attemptsAreLimitedPerSourceAddressAndShown() async throws {
        let a = try await AgentProcess(Device(data: dir.path + "/a"))
        let invite = try await InviteProcess(a.device, "--attempts", "3")
        let name = String(invite.code.prefix(4))
        let wrong = name + "-0000-0000"
        let b = Device(data: dir.path + "/b")
        try await b.ok("init")
        for _ in 0..<2 {
            let r = try await b.run("pair", "join", wrong, "--host", a.listen)
            #expect(r.status != 0 && r.stderr.contains("did not match"), "\(r.stderr)")
        }
        let third = try await b.run("pair", "join", wrong, "--host", a.listen)
        #expect(third.status != 0 && third.stderr.contains("attempts"), "\(third.stderr)")
        #expect(try await self.invite(a, name)["attempts_left"] == 1)
        // From another address, the right code still joins.
        let joined = try await adversary(a, "race", "--code", invite.code, "--runs", "1", "--source", "127.0.0.2")
        #expect(joined["joined"] == 1, "\(joined)")
        let finished = try await invite.finish(timeout: 15)
        #expect(finished.status == 0)
        #expect(finished.stderr.components(separatedBy: "failed attempt from 127.0.0.1").count == 3, "\(finished.stderr)")
    }
}

extension Array where Element == String {
    /// `[host, port]` as a pair, or nil.
    fileprivate var splitPair: (String, String)? { count == 2 ? (self[0], self[1]) : nil }
}
