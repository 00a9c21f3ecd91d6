import Foundation
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import Testing

/// `--repo peer:DEVICE-ID`: one device's backups kept by another (the home server) over the
/// agents' transport, with real `hubsync run` processes on loopback.
@Suite(.timeLimit(.minutes(10))) struct PeerBackupTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    /// `count` memory records of about 600 bytes, hard to compress; `variant` changes them.
    func recordsFile(_ name: String, ids: Range<Int>, variant: String = "") throws -> String {
        var out = ""
        var k: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(variant.utf8.count)
        for i in ids {
            var text = variant
            while text.utf8.count < 600 {
                k = k &* 6364136223846793005 &+ 1442695040888963407
                text += String(k >> 20, radix: 36) + " "
            }
            out += #"{"collection":"memories","id":"m\#(i)","fields":{"text":"\#(text)"}}"# + "\n"
        }
        let path = dir.path + "/" + name + ".jsonl"
        try out.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func exportedRecords(_ d: Device) async throws -> [String] {
        recordLines(ofExport: try await d.ok("export", "-").stdout)
    }

    /// Every regular file under `path`, relative to it.
    func files(_ path: String) -> [String] {
        var out: [String] = []
        guard let walker = FileManager.default.enumerator(atPath: path) else { return [] }
        while let rel = walker.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path + "/" + rel, isDirectory: &isDir), !isDir.boolValue { out.append(rel) }
        }
        return out.sorted()
    }

    /// Whether any file under `path` contains `needle`.
    func anyFileContains(_ path: String, _ needle: String) -> Bool {
        let n = Data(needle.utf8)
        return files(path).contains { (FileManager.default.contents(atPath: path + "/" + $0) ?? Data()).range(of: n) != nil }
    }

    @Test func backupToAPeerHoldsNoPlaintextRestoresAndPrunesThroughQuarantine() async throws {
        let server = try await AgentProcess(device("server")), laptop = try await AgentProcess(device("laptop"))
        try await pair(server, laptop)
        let secret = "picnic at the lighthouse 4f1c9"
        try await laptop.device.ok("import", try recordsFile("all", ids: 0..<300))
        try await laptop.device.ok("put", "memories", "known", "--json", #"{"text": "\#(secret)"}"#)
        let repo = "peer:" + server.id
        let first = try await laptop.device.ok("backup", "now", "--repo", repo)
        #expect(first.stdout.trimmingCharacters(in: .whitespacesAndNewlines).count == 64)
        #expect(first.stderr.contains("added to peer:"))
        let second = try #require(try await laptop.device.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        let usage = try #require(second["peer_storage"]?.objectValue)
        #expect(usage["quota_bytes"] == .int(10 << 30))
        if case .int(let used) = usage["used_bytes"] ?? .null { #expect(used > 1000) } else { Issue.record("no used_bytes") }

        // The server keeps the files under backups/<laptop hex>/repo; none holds the record's text.
        let area = server.device.data + "/backups"
        let stored = files(area)
        #expect(stored.contains { $0.hasSuffix("/repo/config") })
        #expect(stored.contains { $0.contains("/repo/data/") })
        #expect(!anyFileContains(area, secret))
        #expect(!anyFileContains(area, "lighthouse"))

        // Restore from the peer gives the same store.
        try await laptop.device.ok("backup", "verify", "--read-data", "--repo", repo)
        try await laptop.device.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/restored")
        #expect(try await exportedRecords(device("restored")) == exportedRecords(laptop.device))

        // Two more snapshots with changes, then forget + prune: files move into quarantine.
        for round in 0..<2 {
            try await laptop.device.ok("import", try recordsFile("change\(round)", ids: 0..<300, variant: "round \(round) "))
            try await laptop.device.ok("backup", "now", "--repo", repo)
        }
        #expect(try await laptop.device.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.count == 4)
        let before = Set(files(area).filter { $0.contains("/repo/") && !$0.contains("/locks/") })
        let done = try #require(try await laptop.device.ok("backup", "forget", "--keep-last", "1", "--prune", "--repo", repo,
                                                    "--json").json?.objectValue)
        #expect(done["forgotten"]?.arrayValue?.count == 3)
        let movedList = try #require(done["quarantined"]?.objectValue?["files"]?.arrayValue)
        let moved = movedList.compactMap(\.stringValue)
        #expect(moved.contains { $0.hasPrefix("snapshots/") } && moved.contains { $0.hasPrefix("data/") })
        let after = files(area)
        for name in moved {
            // Moved, not deleted: gone from the repository, byte for byte in a quarantine folder.
            #expect(!after.contains { $0.hasSuffix("/repo/" + name) }, "\(name) still in the repository")
            #expect(after.contains { $0.contains("/quarantine/") && $0.hasSuffix("/files/" + name) }, "\(name) not in quarantine")
            #expect(before.contains { $0.hasSuffix("/repo/" + name) })
        }
        #expect(after.contains { $0.contains("/quarantine/") && $0.hasSuffix("/plan") })
        // The kept snapshot is whole.
        #expect(try await laptop.device.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.count == 1)
        try await laptop.device.ok("backup", "verify", "--read-data", "--repo", repo)
        try await laptop.device.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/restored2")
        #expect(try await exportedRecords(device("restored2")) == exportedRecords(laptop.device))
    }

    @Test func overQuotaUntrustedAndOfflineAreClearErrorsAndLoseNothing() async throws {
        let serverDevice = device("server")
        try await serverDevice.ok("init")
        try #"{"peer_backups": {"quota_bytes": 200000}}"#.write(toFile: serverDevice.data + "/config.json",
                                                               atomically: true, encoding: .utf8)
        let server = try await AgentProcess(serverDevice), laptop = try await AgentProcess(device("laptop"))
        try await pair(server, laptop)
        let repo = "peer:" + server.id
        try await laptop.device.ok("import", try recordsFile("few", ids: 0..<20))
        try await laptop.device.ok("backup", "now", "--repo", repo)

        // 400 more incompressible records do not fit in 200 000 bytes (files cost at least 4 KiB each).
        try await laptop.device.ok("import", try recordsFile("many", ids: 20..<420))
        let full = try await laptop.device.run("backup", "now", "--repo", repo)
        #expect(full.status != 0)
        #expect(full.stderr.contains("over quota"), "\(full.stderr)")
        // What was stored before is whole.
        #expect(try await laptop.device.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.count == 1)
        try await laptop.device.ok("backup", "verify", "--read-data", "--repo", repo)

        // A device the server does not trust is refused with a reason.
        let stranger = device("stranger")
        try await stranger.ok("init")
        try await stranger.ok("peers", "add", server.id, "--address", server.listen)
        let refused = try await stranger.run("backup", "now", "--repo", repo)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("not trusted"), "\(refused.stderr)")
        // Only the laptop's area exists on the server.
        #expect(try FileManager.default.contentsOfDirectory(atPath: serverDevice.data + "/backups").count == 1)

        // The server offline: a clear error.
        await server.stop()
        let offline = try await laptop.device.run("backup", "list", "--repo", repo)
        #expect(offline.status != 0)
        #expect(offline.stderr.contains("offline"), "\(offline.stderr)")
    }

    @Test func theQuarantineLastsAsLongAsThePeersConfigurationSays() async throws {
        let serverDevice = device("server")
        try await serverDevice.ok("init")
        try #"{"peer_backups": {"quarantine_seconds": 0}}"#.write(toFile: serverDevice.data + "/config.json",
                                                                 atomically: true, encoding: .utf8)
        let server = try await AgentProcess(serverDevice), laptop = try await AgentProcess(device("laptop"))
        try await pair(server, laptop)
        let repo = "peer:" + server.id
        try await laptop.device.ok("import", try recordsFile("a", ids: 0..<50))
        try await laptop.device.ok("backup", "now", "--repo", repo)
        try await laptop.device.ok("import", try recordsFile("b", ids: 0..<50, variant: "changed "))
        try await laptop.device.ok("backup", "now", "--repo", repo)
        try await laptop.device.ok("backup", "forget", "--keep-last", "1", "--prune", "--repo", repo)
        let quarantine = serverDevice.data + "/backups"
        #expect(files(quarantine).contains { $0.contains("/quarantine/") })
        // Its time is up at once: the next request for usage (after a backup) frees the space.
        try await laptop.device.ok("backup", "now", "--repo", repo)
        #expect(!files(quarantine).contains { $0.contains("/quarantine/") })
        try await laptop.device.ok("backup", "verify", "--read-data", "--repo", repo)
    }

    @Test func aPeerThatRestartedIsDialedAgainWithinOneRun() async throws {
        let server = try await AgentProcess(device("server")), laptop = try await AgentProcess(device("laptop"))
        try await pair(server, laptop)
        let identity = try Identity.load(from: URL(fileURLWithPath: laptop.device.data))
        let colon = try #require(server.listen.lastIndex(of: ":"))
        let port = try #require(Int(server.listen[server.listen.index(after: colon)...]))
        let target = PeerTarget(device: try DeviceID(parsing: server.id), host: String(server.listen[..<colon]), port: port,
                                identity: identity.signingKey)
        try target.put("data/aa/one", [1, 2, 3], replacing: false)
        await server.stop()
        // Same address again; the target's connection broke meanwhile.
        let again = try await AgentProcess(server.device, extra: ["--listen", server.listen])
        #expect(again.listen == server.listen)
        #expect(try target.get("data/aa/one") == [1, 2, 3])
        // Nothing listening: offline, said once (no retry loop).
        await again.stop()
        #expect(throws: BackupError.self) { try target.exists("data/aa/one") }
    }
}
