import Foundation
import HubSyncCore
import Testing

/// The dashboard's routes beyond sign-in (protocol/SPEC.md 9.4), over real HTTP to a real agent
/// with a real local repository: storage in status, the live stream and its cap, restore of one
/// record and into a new folder, the drill, and the export download.
@Suite struct DashboardLiveTests {
    let dir = TemporaryDirectory()

    /// The bytes of the files under `path`.
    static func bytes(under path: String) -> Int {
        var total = 0
        let files = FileManager.default
        for name in files.subpaths(atPath: path) ?? [] {
            let attributes = try? files.attributesOfItem(atPath: path + "/" + name)
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += attributes?[.size] as? Int ?? 0 }
        }
        return total
    }

    @Test func storageRestoreDrillAndExport() async throws {
        let d = Device(data: dir.path + "/a")
        try await d.ok("init", "--name", "Alpha")
        let repoPath = dir.path + "/repo", repo = "local:" + repoPath
        try #"{"backup": {"targets": ["\#(repo)"]}}"#.write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(d)
        try await agent.api("PUT", "/v1/records/memories/m1", ["text": "first"])

        // Storage: the store's files at once; the target after it could be measured.
        let storage = try #require(try await agent.status()["storage"]?.objectValue)
        guard case .int(let storeBytes) = storage["store_bytes"] ?? .null else { throw CommandFailed(description: "\(storage)") }
        #expect(storeBytes > 0)
        let before = try #require(storage["targets"]?.arrayValue?.first?.objectValue)
        #expect(before["target"] == .string(repo) && before["repository_bytes"] == .null && before["problem"]?.stringValue != nil, "\(before)")
        let made = try await agent.api("POST", "/v1/backups", [:]).objectValue?["targets"]?.arrayValue?.first?.objectValue
        let snapshot = try #require(made?["snapshot"]?.stringValue)
        let after = try #require(try await agent.status()["storage"]?.objectValue?["targets"]?.arrayValue?.first?.objectValue)
        let onDisk = ["data", "index", "snapshots", "keys"].reduce(0) { $0 + Self.bytes(under: repoPath + "/" + $1) }
        #expect(after["repository_bytes"] == .int(Int64(onDisk)) && onDisk > 0, "\(after) against \(onDisk) bytes on disk")
        #expect(after["problem"] == .null && after["measured_at"]?.stringValue != nil && after["peer_quota_bytes"] == .null)
        // status --json carries the same figures.
        let cli = try #require(try await d.ok("status", "--json").json?.objectValue?["storage"]?.objectValue)
        #expect(cli["targets"] == .array([.object(after)]))

        // One record back to the snapshot's value, on the live store.
        try await agent.api("PUT", "/v1/records/memories/m1", ["text": "second"])
        try await agent.api("PUT", "/v1/records/memories/m2", ["text": "made later"])
        let reverted = try await agent.api("POST", "/v1/backups/restore", ["target": .string(repo), "snapshot": .string(String(snapshot.prefix(8))),
                                                                          "record": "memories/m1"]).objectValue
        #expect(reverted?["mode"] == "revert" && reverted?["writes"] == .int(1), "\(String(describing: reverted))")
        #expect(await agent.record("memories", "m1")?["fields"]?.objectValue?["text"] == "first")
        #expect(await agent.record("memories", "m2")?["fields"]?.objectValue?["text"] == "made later", "only the record named")
        // A record the snapshot does not hold is deleted (it did not exist then).
        try await agent.api("POST", "/v1/backups/restore", ["target": .string(repo), "snapshot": "latest", "record": "memories/m2"])
        let gone = await agent.record("memories", "m2")
        #expect(gone == nil || gone?["deleted"] == .bool(true), "\(String(describing: gone))")
        try FileManager.default.createDirectory(atPath: dir.path + "/empty", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/link", withDestinationPath: dir.path + "/empty")
        let refusals: [(Value, Int)] = [
            (["target": "local:/etc", "snapshot": "latest", "record": "memories/m1"], 400),
            (["target": .string(repo), "snapshot": "latest"], 400),
            (["target": .string(repo), "snapshot": "latest", "record": "memories"], 400),
            (["target": .string(repo), "snapshot": "latest", "record": "devices/x"], 400),
            (["target": .string(repo), "snapshot": "latest", "record": "memories/none"], 404),
            (["target": .string(repo), "snapshot": "ffffffff", "record": "memories/m1"], 409),
            (["target": .string(repo), "snapshot": "latest", "into": "relative/dir"], 400),
            (["target": .string(repo), "snapshot": "latest", "into": .string(d.data)], 409),
            (["target": .string(repo), "snapshot": "latest", "into": .string(d.data + "/backups/new")], 400),
            (["target": .string(repo), "snapshot": "latest", "into": .string(d.data + "/new")], 400),
            (["target": .string(repo), "snapshot": "latest", "into": .string(repoPath + "/data/new")], 400),
            (["target": .string(repo), "snapshot": "latest", "into": .string(dir.path + "/no/such/folder")], 400),
            (["target": .string(repo), "snapshot": "latest", "into": .string(dir.path + "/link")], 400),
        ]
        for (body, status) in refusals {
            let r = try await agent.request("POST", "/v1/backups/restore", body: body)
            #expect(r.status == status && r.body.objectValue?["error"]?.stringValue != nil, "\(body): \(r.status) \(r.body)")
        }
        #expect(!FileManager.default.fileExists(atPath: d.data + "/new") && !FileManager.default.fileExists(atPath: dir.path + "/no"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/empty").isEmpty)

        // Everything into a new folder: a new device holding the snapshot's records.
        let into = dir.path + "/restored"
        let whole = try await agent.api("POST", "/v1/backups/restore", ["target": .string(repo), "snapshot": "latest", "into": .string(into)]).objectValue
        #expect(whole?["mode"] == "into" && whole?["records"] != .int(0), "\(String(describing: whole))")
        let restored = Device(data: into)
        #expect(try await restored.ok("get", "memories", "m1", "--json").json?.objectValue?["fields"]?.objectValue?["text"] == "first")
        #expect(try await restored.ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines) != agent.id)

        // The drill: recovery time and point, kept in status.
        let drill = try await agent.api("POST", "/v1/backups/drill", ["target": .string(repo)]).objectValue
        #expect(drill?["ok"] == .bool(true) && drill?["snapshot"] == .string(snapshot), "\(String(describing: drill))")
        let kept = try await agent.status()["backup"]?.objectValue?["last_drill"]?.objectValue
        #expect(kept?["snapshot"] == .string(snapshot) && kept?["recovery_time_seconds"] != nil && kept?["recovery_point_seconds"] != nil)
        let audit = try await agent.api("GET", "/v1/audit").arrayValue ?? []
        #expect(audit.filter { $0.objectValue?["action"] == "restore" }.count == 4, "two reverts, one into a folder, one drill")

        // The export: what `hubsync export` writes, as a download; nothing left behind.
        let port = agent.client.port
        let download = try await DashboardTests.send(port, "GET", "/v1/export", headers: ["Authorization": "Bearer \(agent.client.token)"])
        #expect(download.status == 200 && download.headers["content-disposition"]?.hasPrefix("attachment; filename=\"hubsync-export-") == true,
                "\(download.headers)")
        let file = dir.path + "/cli-export.jsonl"
        try await d.ok("export", file)
        let cliLines = recordLines(ofExport: try String(contentsOfFile: file, encoding: .utf8))
        #expect(!cliLines.isEmpty && recordLines(ofExport: download.body) == cliLines)
        #expect(download.body.split(separator: "\n").first?.contains(#""format":"hubsync-export""#) == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.data).allSatisfy { !$0.hasSuffix(".partial") })

        // `hubsync backup now` beside the agent, to a configured target: status shows it as the last backup.
        let byCLI = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue?["id"]?.stringValue)
        let last = try await agent.status()["backup"]?.objectValue
        #expect(last?["snapshot"] == .string(byCLI) && last?["target"] == .string(repo), "\(String(describing: last))")

        // `hubsync backup drill` beside the agent: the agent runs it, so status keeps it.
        let drilledAt = try #require(kept?["at"]?.stringValue)
        let byAgent = try #require(try await d.ok("backup", "drill", "--repo", repo, "--json").json?.objectValue)
        #expect(byAgent["ok"] == .bool(true) && byAgent["kept_by"] == "the agent", "\(byAgent)")
        let again = try await agent.status()["backup"]?.objectValue?["last_drill"]?.objectValue
        #expect(again?["at"]?.stringValue != nil && again?["at"]?.stringValue != drilledAt, "\(String(describing: again))")
        await agent.stop()

        // Without an agent the drill is kept in backup-state.json, and the next agent shows it.
        let alone = try #require(try await d.ok("backup", "drill", "--repo", repo, "--json").json?.objectValue)
        #expect(alone["ok"] == .bool(true) && alone["kept_by"] == "backup-state.json", "\(alone)")
        let state = try #require(try JSON.parse(String(contentsOfFile: d.data + "/backup-state.json", encoding: .utf8)).objectValue)
        #expect(state["drill"]?.objectValue?["snapshot"] == .string(byCLI) && state["last"] != nil, "the rest of the file stays: \(state)")
        let restarted = try await AgentProcess(d)
        let shown = try await restarted.status()["backup"]?.objectValue?["last_drill"]?.objectValue
        #expect(shown?["snapshot"] == .string(byCLI) && shown?["at"] != again?["at"], "\(String(describing: shown))")
        #expect(try await restarted.status()["backup"]?.objectValue?["snapshot"] == .string(byCLI), "the CLI's backup was kept too")
        let text = try await d.ok("status").stdout
        #expect(text.contains("last drill") && text.contains("recovery point"), "\(text)")
        await restarted.stop()
    }

    /// Sync now runs a round on both devices, whichever dialled: B knows no address of A, so A
    /// dials and B, the accepting side, asks A for the round (`repairAsk`).
    @Test func syncNowOnTheSideThatAccepted() async throws {
        let a = try await AgentProcess(Device(data: dir.path + "/sa")), b = try await AgentProcess(Device(data: dir.path + "/sb"))
        try await b.device.ok("peers", "add", a.id)
        try await a.device.ok("peers", "add", b.id, "--address", b.listen)
        try await waitUntilConnected(a, b, "A dialled B", timeout: 30)
        for (agent, other) in [(b, a), (a, b)] {
            let answer = try await agent.api("POST", "/v1/sync", ["wait_seconds": 60]).objectValue
            let peer = answer?["peers"]?.arrayValue?.first?.objectValue
            #expect(answer?["rounds"] == .int(1) && peer?["device_id"] == .string(other.id) && peer?["round"]?.objectValue != nil,
                    "\(String(describing: answer))")
        }
        await a.stop()
        await b.stop()
    }

    /// An open stream's socket, read up to `marker`.
    final class Stream: @unchecked Sendable {
        let fd: Int32
        var text = ""
        init(port: UInt16, path: String, headers: String) throws {
            fd = try connectLoopback(port: port)
            var limit = timeval(tv_sec: 60, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\(headers)\r\n".utf8)
            _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        }

        /// Reads until `marker` has come (or the connection ends, or 60 s pass without a byte).
        func read(until marker: String) -> Bool {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !text.contains(marker) {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return false }
                text += String(decoding: chunk[0..<n], as: UTF8.self)
            }
            return true
        }

        deinit { close(fd) }
    }

    @Test func theLiveStream() async throws {
        let d = Device(data: dir.path + "/e")
        let agent = try await AgentProcess(d)
        let port = agent.client.port, bearer = "Authorization: Bearer \(agent.client.token)\r\n"
        // A session cookie opens it too, as the page does.
        let code = try await DashboardTests.code(d)
        let signIn = try await DashboardTests.send(port, "POST", "/v1/dashboard/session", body: #"{"code": "\#(code)"}"#)
        let cookie = String(try #require(signIn.headers["set-cookie"]).split(separator: ";")[0])
        let stream = try Stream(port: port, path: "/v1/events", headers: "Cookie: \(cookie)\r\n")
        let opened = try await onDedicatedThread { stream.read(until: "event: status") }
        #expect(opened && stream.text.contains("text/event-stream") && stream.text.contains(": live"), "\(stream.text)")
        #expect(stream.text.contains(#""device_id":"\#(agent.id)""#))
        // A write through the API arrives as a change, and the status that counts it follows.
        try await agent.api("PUT", "/v1/records/memories/live", ["text": "pushed"])
        let pushed = try await onDedicatedThread { stream.read(until: #""memories":1"#) }
        #expect(pushed && stream.text.contains("event: change") && stream.text.contains(#""id":"live""#), "\(stream.text)")
        // Without a session or the token: refused.
        let refused = try await DashboardTests.send(port, "GET", "/v1/events")
        #expect(refused.status == 401)

        // At most 8 streams: the ninth is refused with what to do; a closed one frees its place.
        var open = [stream]
        for _ in 1..<8 {
            let s = try Stream(port: port, path: "/v1/events", headers: bearer)
            let ok = try await onDedicatedThread { s.read(until: ": live") }
            #expect(ok)
            open.append(s)
        }
        let ninth = try await DashboardTests.send(port, "GET", "/v1/events", headers: ["Authorization": "Bearer \(agent.client.token)"])
        #expect(ninth.status == 429 && ninth.body.contains("live streams are open"), "\(ninth)")
        open.removeLast()
        // The agent sees the connection close within a second (before this, only when a write
        // to it failed: the second heartbeat after the close, 15 to 30 s later).
        try await waitUntil("a closed stream's place to be free", timeout: 12) {
            let s = try Stream(port: port, path: "/v1/events", headers: bearer)
            return try await onDedicatedThread { s.read(until: ": live") }
        }
        withExtendedLifetime(open) {}
        await agent.stop()
    }
}
