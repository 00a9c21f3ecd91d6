import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// One writer: whatever path a write takes (the CLI with or without an agent, the HTTP API, an
/// import, a restore), the store holds exactly what the user typed; a killed agent never blocks
/// the CLI.
@Suite struct OneWriterTests {
    /// Kept by the suite (each test has its own instance), so it outlives the test's agents.
    let tmp = TemporaryDirectory()

    /// IDs that an encoding slip would change: a slash, a percent sign, an escape typed
    /// literally, a space and a non-ASCII letter, an emoji, and the longest ID (256 bytes).
    static let ids = ["a/b", "100%", "%2F", "café note", "🦊 fox", String(repeating: "ü", count: 128)]

    /// What a device's store holds, from its export: each live record's key and visible fields.
    static func holdings(_ device: Device) async throws -> [String: Value] {
        let lines = try await device.ok("export", "-").stdout.split(separator: "\n")
        var out: [String: Value] = [:]
        for line in lines {
            guard let o = (try? JSON.parse(String(line)))?.objectValue, let c = o["collection"]?.stringValue,
                  let id = o["id"]?.stringValue, c == "memories", let state = o["state"] else { continue }
            let record = try StateJSON.state(key: RecordKey(collection: c, id: id), from: state)
            if record.isAlive { out["\(c)/\(id)"] = .object(record.visibleFields) }
        }
        return out
    }

    static func plainLines(_ ids: [String]) -> String {
        ids.map { JSON.serialize(["collection": "memories", "id": .string($0), "fields": ["text": "x"]]) }
            .joined(separator: "\n") + "\n"
    }

    @Test func everyWritePathStoresTheIDAsTyped() async throws {
        let expected = Dictionary(uniqueKeysWithValues: Self.ids.map { ("memories/\($0)", Value.object(["text": "x"])) })
        #expect(Self.ids.last!.utf8.count == 256)
        var results: [String: [String: Value]] = [:]

        // 1. The CLI with no agent: it takes the writer lock and writes the store itself.
        let direct = Device(data: tmp.path + "/direct")
        try await direct.ok("init")
        for id in Self.ids {
            let r = try await direct.ok("put", "memories", id, "--json", #"{"text": "x"}"#)
            #expect(!r.stdout.contains("through the running agent"))
        }
        results["CLI without agent"] = try await Self.holdings(direct)

        // 2. The CLI while an agent runs: through the agent.
        let viaAgent = Device(data: tmp.path + "/via-agent")
        do {
            let agent = try await AgentProcess(viaAgent, extra: ["--no-mdns"])
            for id in Self.ids {
                let r = try await viaAgent.ok("put", "memories", id, "--json", #"{"text": "x"}"#)
                #expect(r.stdout.contains("through the running agent"), "\(id): \(r.stdout)")
            }
            await agent.stop()
        }
        results["CLI through agent"] = try await Self.holdings(viaAgent)

        // 3. The HTTP API, each ID percent-encoded once in the path.
        let http = Device(data: tmp.path + "/http")
        do {
            let agent = try await AgentProcess(http, extra: ["--no-mdns"])
            let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
            for id in Self.ids {
                let path = "/v1/records/memories/" + id.addingPercentEncoding(withAllowedCharacters: unreserved)!
                try await agent.api("PATCH", path, ["text": "x"])
                #expect(await agent.record("memories", id.addingPercentEncoding(withAllowedCharacters: unreserved)!)?["id"]
                        == .string(id))
            }
            // A path that is not valid percent-encoding is refused, not stored as typed (sent raw:
            // an HTTP client would encode it first).
            let token = agent.client.token, port = agent.client.port
            let answer = try await onDedicatedThread { try rawRequest(port: port, "PATCH /v1/records/memories/100% HTTP/1.1\r\n"
                + "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nContent-Length: 12\r\n"
                + "Connection: close\r\n\r\n{\"text\":\"x\"}") }
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            #expect(answer.contains("not valid percent-encoding"), "\(answer)")
            await agent.stop()
        }
        results["HTTP API"] = try await Self.holdings(http)

        // 4. Import of plain records, without and with an agent.
        let file = tmp.path + "/plain.jsonl"
        try Self.plainLines(Self.ids).write(toFile: file, atomically: true, encoding: .utf8)
        let imported = Device(data: tmp.path + "/import")
        try await imported.ok("init")
        try await imported.ok("import", file)
        results["import"] = try await Self.holdings(imported)
        let importedViaAgent = Device(data: tmp.path + "/import-agent")
        do {
            let agent = try await AgentProcess(importedViaAgent, extra: ["--no-mdns"])
            try await importedViaAgent.ok("import", file)
            await agent.stop()
        }
        results["import through agent"] = try await Self.holdings(importedViaAgent)

        // 5. restore --merge through the agent brings back records deleted after the snapshot.
        let restored = Device(data: tmp.path + "/restore")
        try await restored.ok("init")
        try await restored.ok("import", file)
        try await restored.ok("backup", "now", "--repo", "local:" + tmp.path + "/repo")
        for id in Self.ids { try await restored.ok("delete", "memories", id) }
        #expect(try await Self.holdings(restored).isEmpty)
        do {
            let agent = try await AgentProcess(restored, extra: ["--no-mdns"])
            let r = try await restored.ok("backup", "restore", "latest", "--merge", "--repo", "local:" + tmp.path + "/repo", "--json")
            #expect(r.stdout.contains("\"through_agent\":true"), "\(r.stdout)")
            await agent.stop()
        }
        results["restore --merge"] = try await Self.holdings(restored)

        for (path, held) in results.sorted(by: { $0.key < $1.key }) {
            #expect(held == expected, "\(path) stored \(held.keys.sorted())")
        }
    }

    @Test func aKilledAgentDoesNotBlockTheCLIAndItsNextStartPushesTheWrite() async throws {
        let a = try await AgentProcess(Device(data: tmp.path + "/a"), extra: ["--no-mdns"])
        let b = try await AgentProcess(Device(data: tmp.path + "/b"), extra: ["--no-mdns"])
        try await pair(a, b)
        await a.kill9()
        // agent.json is left behind; the lock went with the process. Even when the PID it names is
        // alive again (reused by another process, here this test's), the CLI goes by the lock.
        let statePath = a.device.data + "/agent.json"
        let stale = try #require(FileManager.default.contents(atPath: statePath))
        var state = try #require(try JSON.parse([UInt8](stale)).objectValue)
        state["pid"] = .int(Int64(getpid()))
        try JSON.serialize(.object(state)).write(toFile: statePath, atomically: true, encoding: .utf8)
        let started = Date()
        let r = try await a.device.ok("put", "memories", "after-crash", "--json", #"{"text": "written while A was down"}"#)
        // No waiting for a lock holder (a command waits up to 60 s for one): well under that.
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(r.stdout.contains("put memories/after-crash"), "\(r.stdout)")
        #expect(!r.stdout.contains("through the running agent"))
        #expect(try await a.device.ok("status").stdout.contains("not running"))

        let restarted = try await AgentProcess(a.device, extra: ["--no-mdns"])
        try await waitUntil("the write made while A was down reaches B", timeout: 20) {
            await b.record("memories", "after-crash")?["fields"]?.objectValue?["text"] == "written while A was down"
        }
        await restarted.stop()
        await b.stop()
    }

    @Test func aSecondAgentOnTheSameDirectoryIsRefused() async throws {
        let device = Device(data: tmp.path + "/a")
        let agent = try await AgentProcess(device, extra: ["--no-mdns"])
        let r = try await device.run("run", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--no-mdns")
        #expect(r.status == 1)
        #expect(r.stderr.contains("an agent already runs on \(device.data) (pid \(agent.agent.process.pid))"), "\(r.stderr)")
        // The running agent still answers.
        try await device.ok("put", "memories", "m1", "--json", #"{"text": "still here"}"#)
        await agent.stop()
    }

    /// The lock is on the directory: the `writer.lock` file only names the holder, so removing
    /// it, filling it with garbage or replacing it by a link changes nothing.
    @Test func tamperingWithTheHintFileNeitherBypassesNorBlocksTheAgent() async throws {
        let device = Device(data: tmp.path + "/a")
        let agent = try await AgentProcess(device, extra: ["--no-mdns"])
        let hint = device.data + "/writer.lock", victim = tmp.path + "/victim.txt"
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        let tampers: [(String, () throws -> Void)] = [
            ("removed", { try FileManager.default.removeItem(atPath: hint) }),
            ("garbage", { try Data([0x47, 0x00, 0xff, 0x0a]).write(to: URL(fileURLWithPath: hint)) }),
            ("a dead pid", { try "99999 import\n".write(toFile: hint, atomically: true, encoding: .utf8) }),
            ("a link", { try FileManager.default.createSymbolicLink(atPath: hint, withDestinationPath: victim) }),
        ]
        for (i, (what, tamper)) in tampers.enumerated() {
            try? FileManager.default.removeItem(atPath: hint)
            if what != "removed" { try tamper() } else { try? tamper() }
            let r = try await device.ok("put", "memories", "t\(i)", "--json", #"{"text": "x"}"#)
            #expect(r.stdout.contains("through the running agent"), "hint \(what): \(r.stdout) \(r.stderr)")
            let second = try await device.run("run", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--no-mdns")
            #expect(second.status == 1 && second.stderr.contains("an agent already runs"), "hint \(what): \(second.stderr)")
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        await agent.stop()
    }

    /// The CLI reads the API's port from `agent.json`; it sends the token only to a loopback port
    /// the lock holder itself listens on, so an edited file cannot send it to another process.
    @Test func theTokenGoesOnlyToAPortTheAgentListensOn() async throws {
        let a = Device(data: tmp.path + "/a"), b = Device(data: tmp.path + "/b")
        let agentA = try await AgentProcess(a, extra: ["--no-mdns"])
        let agentB = try await AgentProcess(b, extra: ["--no-mdns"])
        let file = a.data + "/agent.json"
        let original = try String(contentsOfFile: file, encoding: .utf8)
        for (what, api) in [("another process's port", "\(agentB.client.host):\(agentB.client.port)"),
                            ("another host", "10.77.255.1:\(agentA.client.port)")] {
            let edited = original.replacingOccurrences(of: "\(agentA.client.host):\(agentA.client.port)", with: api)
            #expect(edited != original)
            try edited.write(toFile: file, atomically: true, encoding: .utf8)
            #expect(LocalAPIClient.running(inDataDirectory: a.data) == nil, "agent.json naming \(what)")
        }
        try original.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(LocalAPIClient.running(inDataDirectory: a.data)?.port == agentA.client.port)
        await agentA.stop()
        await agentB.stop()
    }

    /// Errors from the HTTP layer come in the API's JSON form too; the scheme's case is free.
    @Test func everyAPIErrorIsJSONWithAMessage() async throws {
        let device = Device(data: tmp.path + "/a")
        let agent = try await AgentProcess(device, extra: ["--no-mdns"])
        let (missing, why) = try await agent.request("GET", "/v1/nothing-here")
        #expect(missing == 404)
        #expect(why.objectValue?["error"]?.stringValue?.contains("no route GET /v1/nothing-here") == true, "\(why)")
        let big = Value.object(["operations": .array([]), "padding": .string(String(repeating: "x", count: 5 << 20))])
        let (tooLarge, said) = try await agent.request("POST", "/v1/batch", body: big)
        #expect(tooLarge == 413)
        #expect(said.objectValue?["error"]?.stringValue?.contains("smaller batches") == true, "\(said)")
        let token = agent.client.token, port = agent.client.port
        let lower = try await onDedicatedThread {
            try rawRequest(port: port, "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: bearer \(token)\r\nConnection: close\r\n\r\n")
        }
        #expect(lower.hasPrefix("HTTP/1.1 200"), "\(lower.prefix(200))")
        let wrong = try await onDedicatedThread {
            try rawRequest(port: port, "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)x\r\nConnection: close\r\n\r\n")
        }
        #expect(wrong.hasPrefix("HTTP/1.1 401") && wrong.contains("api.token"), "\(wrong.prefix(300))")
        await agent.stop()
    }

    @Test func aPutThatNamesNoFieldCreatesNothing() async throws {
        let device = Device(data: tmp.path + "/a")
        try await device.ok("init")
        let r = try await device.run("put", "memories", "empty", "--json", "{}")
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("names its fields"), "\(r.stderr)")
        let listed = try await device.ok("list", "memories", "--deleted", "--json")
        #expect(!listed.stdout.contains("empty"), "\(listed.stdout)")
        // On an existing record, nothing named changes nothing.
        try await device.ok("put", "memories", "m1", "--json", #"{"text": "x"}"#)
        let again = try await device.ok("put", "memories", "m1", "--json", "{}")
        #expect(again.stdout.contains("unchanged"), "\(again.stdout)")
    }

    @Test func theBatchRouteTakesEveryKindOfWriteAndRefusesABadOneWhole() async throws {
        let device = Device(data: tmp.path + "/a")
        let agent = try await AgentProcess(device, extra: ["--no-mdns"])
        let ops: Value = ["operations": [
            ["op": "put", "collection": "memories", "id": "m/1", "fields": ["text": "x", "tags": ["a"]]],
            ["op": "add", "collection": "memories", "id": "m/1", "field": "tags", "elements": ["b"]],
            ["op": "remove", "collection": "memories", "id": "m/1", "field": "tags", "elements": ["a"]],
        ], "records": true]
        let answer = try await agent.api("POST", "/v1/batch", ops).objectValue ?? [:]
        #expect(answer["applied"] == 3)
        let results = answer["results"]?.arrayValue?.compactMap(\.objectValue) ?? []
        // Each write has the sequence of its own change.
        let sequences = results.compactMap { r -> Int64? in if case .int(let n) = r["sequence"] ?? .null { n } else { nil } }
        #expect(sequences.count == 3 && Set(sequences).count == 3 && sequences == sequences.sorted(), "\(results)")
        let last = results.last?["record"]?.objectValue
        #expect(last?["fields"]?.objectValue?["tags"] == ["b"])
        #expect(last?["id"] == "m/1")
        let bad: Value = ["operations": [
            ["op": "put", "collection": "memories", "id": "m2", "fields": ["text": "y"]],
            ["op": "shout", "collection": "memories", "id": "m3"],
        ]]
        let (status, body) = try await agent.request("POST", "/v1/batch", body: bad)
        #expect(status == 400)
        #expect(body.objectValue?["error"]?.stringValue?.hasPrefix("operations[1]: \"op\" must be") == true, "\(body)")
        #expect(await agent.record("memories", "m2") == nil)
        let (badLimit, why) = try await agent.request("GET", "/v1/records/memories?limit=abc")
        #expect(badLimit == 400, "\(why)")
        await agent.stop()
    }
}

/// Sends `text` as it is to 127.0.0.1:`port` and returns everything the server answers (or, with
/// `until`, what it answered up to that text, for a stream such as the change feed; 30 s at most).
func rawRequest(port: UInt16, _ text: String, until marker: String? = nil) throws -> String {
    let fd = try connectLoopback(port: port)
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else {
        throw TimedOut(description: "send: \(errno)")
    }
    if marker != nil {
        var limit = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }
    var answer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        answer += chunk[0..<n]
        if let marker, String(decoding: answer, as: UTF8.self).contains(marker) { break }
    }
    return String(decoding: answer, as: UTF8.self)
}

/// A TCP socket connected to 127.0.0.1:`port`; the caller closes it.
func connectLoopback(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TimedOut(description: "socket: \(errno)") }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        close(fd)
        throw TimedOut(description: "connect: \(errno)")
    }
    return fd
}
