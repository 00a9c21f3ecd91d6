import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// One writer: whatever path a write takes (the CLI with or without an agent, the HTTP API, an
/// import, a restore), the store holds exactly what the user typed; a killed agent never blocks
/// the CLI.
@Suite struct OneWriterTests {
    /// IDs that an encoding slip would change: a slash, a percent sign, an escape typed
    /// literally, a space and a non-ASCII letter, an emoji, and the longest ID (256 bytes).
    static let ids = ["a/b", "100%", "%2F", "café note", "🦊 fox", String(repeating: "ü", count: 128)]

    /// What a device's store holds, from its export: each live record's key and visible fields.
    static func holdings(_ device: Device) throws -> [String: Value] {
        let lines = try device.ok("export", "-").stdout.split(separator: "\n")
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

    @Test func everyWritePathStoresTheIDAsTyped() throws {
        let tmp = TemporaryDirectory()
        let expected = Dictionary(uniqueKeysWithValues: Self.ids.map { ("memories/\($0)", Value.object(["text": "x"])) })
        #expect(Self.ids.last!.utf8.count == 256)
        var results: [String: [String: Value]] = [:]

        // 1. The CLI with no agent: it takes the writer lock and writes the store itself.
        let direct = Device(data: tmp.path + "/direct")
        try direct.ok("init")
        for id in Self.ids {
            let r = try direct.ok("put", "memories", id, "--json", #"{"text": "x"}"#)
            #expect(!r.stdout.contains("through the running agent"))
        }
        results["CLI without agent"] = try Self.holdings(direct)

        // 2. The CLI while an agent runs: through the agent.
        let viaAgent = Device(data: tmp.path + "/via-agent")
        do {
            let agent = try AgentProcess(viaAgent, extra: ["--no-mdns"])
            for id in Self.ids {
                let r = try viaAgent.ok("put", "memories", id, "--json", #"{"text": "x"}"#)
                #expect(r.stdout.contains("through the running agent"), "\(id): \(r.stdout)")
            }
            agent.stop()
        }
        results["CLI through agent"] = try Self.holdings(viaAgent)

        // 3. The HTTP API, each ID percent-encoded once in the path.
        let http = Device(data: tmp.path + "/http")
        do {
            let agent = try AgentProcess(http, extra: ["--no-mdns"])
            let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
            for id in Self.ids {
                let path = "/v1/records/memories/" + id.addingPercentEncoding(withAllowedCharacters: unreserved)!
                try agent.api("PATCH", path, ["text": "x"])
                #expect(agent.record("memories", id.addingPercentEncoding(withAllowedCharacters: unreserved)!)?["id"]
                        == .string(id))
            }
            // A path that is not valid percent-encoding is refused, not stored as typed (sent raw:
            // an HTTP client would encode it first).
            let answer = try rawRequest(port: agent.client.port, "PATCH /v1/records/memories/100% HTTP/1.1\r\n"
                + "Host: 127.0.0.1\r\nAuthorization: Bearer \(agent.client.token)\r\nContent-Length: 12\r\n"
                + "Connection: close\r\n\r\n{\"text\":\"x\"}")
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            #expect(answer.contains("not valid percent-encoding"), "\(answer)")
            agent.stop()
        }
        results["HTTP API"] = try Self.holdings(http)

        // 4. Import of plain records, without and with an agent.
        let file = tmp.path + "/plain.jsonl"
        try Self.plainLines(Self.ids).write(toFile: file, atomically: true, encoding: .utf8)
        let imported = Device(data: tmp.path + "/import")
        try imported.ok("init")
        try imported.ok("import", file)
        results["import"] = try Self.holdings(imported)
        let importedViaAgent = Device(data: tmp.path + "/import-agent")
        do {
            let agent = try AgentProcess(importedViaAgent, extra: ["--no-mdns"])
            try importedViaAgent.ok("import", file)
            agent.stop()
        }
        results["import through agent"] = try Self.holdings(importedViaAgent)

        // 5. restore --merge through the agent brings back records deleted after the snapshot.
        let restored = Device(data: tmp.path + "/restore")
        try restored.ok("init")
        try restored.ok("import", file)
        try restored.ok("backup", "now", "--repo", "local:" + tmp.path + "/repo")
        for id in Self.ids { try restored.ok("delete", "memories", id) }
        #expect(try Self.holdings(restored).isEmpty)
        do {
            let agent = try AgentProcess(restored, extra: ["--no-mdns"])
            let r = try restored.ok("backup", "restore", "latest", "--merge", "--repo", "local:" + tmp.path + "/repo", "--json")
            #expect(r.stdout.contains("\"through_agent\":true"), "\(r.stdout)")
            agent.stop()
        }
        results["restore --merge"] = try Self.holdings(restored)

        for (path, held) in results.sorted(by: { $0.key < $1.key }) {
            #expect(held == expected, "\(path) stored \(held.keys.sorted())")
        }
    }

    @Test func aKilledAgentDoesNotBlockTheCLIAndItsNextStartPushesTheWrite() throws {
        let tmp = TemporaryDirectory()
        let a = try AgentProcess(Device(data: tmp.path + "/a"), extra: ["--no-mdns"])
        let b = try AgentProcess(Device(data: tmp.path + "/b"), extra: ["--no-mdns"])
        try pair(a, b)
        a.kill9()
        // agent.json is left behind; the lock went with the process. Even when the PID it names is
        // alive again (reused by another process, here this test's), the CLI goes by the lock.
        let statePath = a.device.data + "/agent.json"
        let stale = try #require(FileManager.default.contents(atPath: statePath))
        var state = try #require(try JSON.parse([UInt8](stale)).objectValue)
        state["pid"] = .int(Int64(getpid()))
        try JSON.serialize(.object(state)).write(toFile: statePath, atomically: true, encoding: .utf8)
        let started = Date()
        let r = try a.device.ok("put", "memories", "after-crash", "--json", #"{"text": "written while A was down"}"#)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(r.stdout.contains("put memories/after-crash"), "\(r.stdout)")
        #expect(!r.stdout.contains("through the running agent"))
        #expect(try a.device.ok("status").stdout.contains("not running"))

        let restarted = try AgentProcess(a.device, extra: ["--no-mdns"])
        try waitUntil("the write made while A was down reaches B", timeout: 20) {
            b.record("memories", "after-crash")?["fields"]?.objectValue?["text"] == "written while A was down"
        }
        restarted.stop()
        b.stop()
    }

    @Test func aSecondAgentOnTheSameDirectoryIsRefused() throws {
        let tmp = TemporaryDirectory()
        let device = Device(data: tmp.path + "/a")
        let agent = try AgentProcess(device, extra: ["--no-mdns"])
        let r = try device.run("run", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--no-mdns")
        #expect(r.status == 1)
        #expect(r.stderr.contains("an agent already runs on \(device.data) (pid \(agent.process.processIdentifier))"), "\(r.stderr)")
        // The running agent still answers.
        try device.ok("put", "memories", "m1", "--json", #"{"text": "still here"}"#)
        agent.stop()
    }

    @Test func theBatchRouteTakesEveryKindOfWriteAndRefusesABadOneWhole() throws {
        let tmp = TemporaryDirectory()
        let device = Device(data: tmp.path + "/a")
        let agent = try AgentProcess(device, extra: ["--no-mdns"])
        let ops: Value = ["operations": [
            ["op": "put", "collection": "memories", "id": "m/1", "fields": ["text": "x", "tags": ["a"]]],
            ["op": "add", "collection": "memories", "id": "m/1", "field": "tags", "elements": ["b"]],
            ["op": "remove", "collection": "memories", "id": "m/1", "field": "tags", "elements": ["a"]],
        ], "records": true]
        let answer = try agent.api("POST", "/v1/batch", ops).objectValue ?? [:]
        #expect(answer["applied"] == 3)
        let last = answer["results"]?.arrayValue?.last?.objectValue?["record"]?.objectValue
        #expect(last?["fields"]?.objectValue?["tags"] == ["b"])
        #expect(last?["id"] == "m/1")
        let bad: Value = ["operations": [
            ["op": "put", "collection": "memories", "id": "m2", "fields": ["text": "y"]],
            ["op": "shout", "collection": "memories", "id": "m3"],
        ]]
        let (status, body) = try agent.client.request("POST", "/v1/batch", body: bad)
        #expect(status == 400)
        #expect(body.objectValue?["error"]?.stringValue?.hasPrefix("operations[1]: \"op\" must be") == true, "\(body)")
        #expect(agent.record("memories", "m2") == nil)
        agent.stop()
    }
}

/// Sends `text` as it is to 127.0.0.1:`port` and returns everything the server answers.
func rawRequest(port: UInt16, _ text: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TimedOut(description: "socket: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw TimedOut(description: "connect: \(errno)") }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else {
        throw TimedOut(description: "send: \(errno)")
    }
    var answer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        answer += chunk[0..<n]
    }
    return String(decoding: answer, as: UTF8.self)
}
