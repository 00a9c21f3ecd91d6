import Foundation
import HubSyncCore
import Testing

/// The ways back from a broken data directory: each sentence leads somewhere that works, and
/// nothing a refused command touches changes.
@Suite(.timeLimit(.minutes(10))) struct RepairRecoveryTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    /// Overwrites the store's schema page and the header of its write-ahead log (an agent stopped
    /// with SIGTERM leaves one, whose newer copy of the page would hide the damage), as a failing
    /// disk would: SQLite then calls the file malformed.
    func damageStore(_ d: Device) throws {
        for (file, offset, count) in [("store.sqlite", 100, 3_996), ("store.sqlite-wal", 0, 32)] {
            guard let handle = FileHandle(forUpdatingAtPath: d.data + "/" + file) else { continue }
            try handle.seek(toOffset: UInt64(offset))
            try handle.write(contentsOf: Data(repeating: 0x5A, count: count))
            try handle.close()
        }
    }

    func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    /// `repair --from-backup peer:DEVICE-ID` on a store too damaged to read the peer's address
    /// from: exit 2 with the form that works (not "run `hubsync repair`" again), nothing moved.
    /// With the address it restores the same records under the same ID, keeps that peer
    /// trusted at that address, and leaves every file 0600.
    @Test func repairFromAPeersBackupAsksForTheAddressAndKeepsThePeer() async throws {
        let server = try await AgentProcess(device("server"), extra: ["--no-mdns"])
        var laptop: AgentProcess? = try await AgentProcess(device("laptop"), extra: ["--no-mdns"])
        try await pair(server, laptop!)
        for i in 0..<5 { try await laptop!.device.ok("put", "memories", "m\(i)", "--json", #"{"text": "note \#(i)"}"#) }
        try await laptop!.device.ok("backup", "now", "--repo", "peer:" + server.id)
        let id = laptop!.id
        let before = recordLines(ofExport: try await laptop!.device.ok("export", "-").stdout)
            .filter { !$0.hasPrefix(#"{"collection":"devices""#) }
        await laptop!.stop()
        laptop = nil
        let d = device("laptop")
        try damageStore(d)

        let asked = try await d.run("repair", "--from-backup", "peer:" + server.id)
        #expect(asked.status == 2, "\(asked.stderr)")
        #expect(asked.stderr.contains("peer:\(server.id)@HOST:PORT") && !asked.stderr.contains("run `hubsync repair`"), "\(asked.stderr)")
        let untouched = try FileManager.default.contentsOfDirectory(atPath: d.data)
        #expect(!untouched.contains { $0.hasPrefix("store.damaged-") }, "\(untouched)")

        let repaired = try await d.run("repair", "--from-backup", "peer:\(server.id)@\(server.listen)")
        #expect(repaired.status == 0, "\(repaired.stderr)")
        #expect(repaired.stdout.contains("Restored 5 records") || repaired.stdout.contains("records from snapshot"), "\(repaired.stdout)")
        #expect(try await d.ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == id)
        let after = recordLines(ofExport: try await d.ok("export", "-").stdout)
            .filter { !$0.hasPrefix(#"{"collection":"devices""#) }
        #expect(after == before)
        #expect(try await d.ok("peers", "list").stdout.contains(server.listen))
        for name in try FileManager.default.contentsOfDirectory(atPath: d.data) {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: d.data + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let m = try mode(d.data + "/" + name)
            #expect(m & 0o077 == 0, "\(name) is mode \(String(m, radix: 8))")
        }
        await server.stop()
    }

    /// A lost identity.key beside a store: every command names the lost key and the way on;
    /// `init` refuses and writes nothing (no new identity to make things worse).
    @Test func aLostIdentityKeyIsNamedAndInitRefusesWithoutWritingOne() async throws {
        let d = device("d")
        try await d.ok("init")
        try await d.ok("put", "memories", "m1", "--json", #"{"text": "kept"}"#)
        try FileManager.default.removeItem(atPath: d.data + "/identity.key")
        for args in [["id"], ["get", "memories", "m1"]] {
            let r = try await hubsync(args + ["--data", d.data])
            #expect(r.status == 1, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("identity.key is missing") && r.stderr.contains("pair join"), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("run `hubsync init"), "\(args): \(r.stderr)")
        }
        let initAgain = try await d.run("init")
        #expect(initAgain.status == 1, "\(initAgain.stderr)")
        #expect(initAgain.stderr.contains("nothing was changed"), "\(initAgain.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.data + "/identity.key"))
        let doctor = try await d.run("doctor")
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("FAIL identity: identity.key is missing"), "\(doctor.stdout)")
        #expect(!doctor.stdout.contains("FAIL store: identity.key"), "the store line repeats the identity's failure: \(doctor.stdout)")
    }

    /// `doctor` fails (exit 1) on damaged household files, naming them; a device.json that is
    /// not JSON is a warning.
    @Test func doctorNamesADamagedHousehold() async throws {
        let d = device("d")
        try await d.ok("init")
        let healthy = try await d.run("doctor")
        #expect(healthy.stdout.contains("ok   household"), "\(healthy.stdout)")
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: d.data + "/membership.statements"))
        let statements = try await d.run("doctor")
        #expect(statements.status == 1, "\(statements.stdout)")
        #expect(statements.stdout.contains("FAIL household") && statements.stdout.contains("membership.statements"), "\(statements.stdout)")
        try FileManager.default.removeItem(atPath: d.data + "/membership.statements")
        try Data("{bad".utf8).write(to: URL(fileURLWithPath: d.data + "/device.json"))
        let name = try await d.run("doctor")
        #expect(name.stdout.contains("warn device: ") && name.stdout.contains("device.json"), "\(name.stdout)")
    }

    /// A store damaged under a running agent (cut to half its size): the agent notices at the
    /// first call that meets the damage (here an export), `status` says so (text and JSON) with what to do, the log
    /// says it at error level, and from then on it refuses local writes with that sentence and
    /// takes no peer's change — the peer keeps it unacknowledged (its changes to send stay) and
    /// hears why. After `hubsync repair` the change arrives: nothing was lost.
    @Test func aStoreDamagedUnderTheAgentRefusesWritesAndLosesNothing() async throws {
        let d = device("d")
        try await d.ok("init", "--name", "damaged")
        var lines = ""
        for i in 0..<4_000 {
            lines += #"{"collection":"memories","id":"m\#(i)","fields":{"text":"\#(String(repeating: "tea and a walk ", count: 70))"}}"# + "\n"
        }
        try lines.write(toFile: dir.path + "/records.jsonl", atomically: true, encoding: .utf8)
        try await d.ok("import", dir.path + "/records.jsonl")
        var agent: AgentProcess? = try await AgentProcess(d, extra: ["--no-mdns"])
        let e = try await AgentProcess(device("e"), extra: ["--no-mdns"])
        try await pair(agent!, e)
        try await e.device.ok("put", "memories", "before", "--json", #"{"text": "before the damage"}"#)
        try await waitUntil("d has e's first record", timeout: 20) { await agent!.record("memories", "before") != nil }

        let path = d.data + "/store.sqlite"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(truncate(path, off_t(size / 2)) == 0)
        // A full read through the agent (its export) meets the pages cut off; status, which reads
        // only kept counts, says what that call found.
        let export = try await agent!.request("GET", "/v1/export")
        #expect(export.0 != 200, "the export read past the cut")
        try await waitUntil("status names the damage", timeout: 20) {
            try await agent!.status()["store"]?.objectValue?["problem"]?.stringValue?.contains("hubsync repair") == true
        }
        let text = try await d.run("status")
        #expect(text.stdout.contains("Store: ") && text.stdout.contains("hubsync repair"), "\(text.stdout)")
        #expect(text.status == 1 && text.stderr.contains("hubsync repair"), "a damaged store is a failure: \(text.status) \(text.stderr)")
        let json = try await d.run("status", "--json")
        #expect(json.status == 1, "\(json.stderr)")
        #expect(json.json?.objectValue?["device_name"] == "damaged", "the name comes from device.json: \(json.stdout)")
        let log = try String(contentsOfFile: d.data + "/agent.log", encoding: .utf8)
        #expect(log.contains("error hubsync:") && log.contains("the store is damaged"), "\(log.suffix(2_000))")

        let put = try await d.run("put", "memories", "after", "--json", #"{"text": "after the damage"}"#)
        #expect(put.status == 1, "\(put.stderr)")
        #expect(put.stderr.contains("is damaged") && put.stderr.contains("nothing was written")
            && put.stderr.contains("hubsync repair") && put.stderr.contains("kill \(agent!.agent.process.pid)"), "\(put.stderr)")

        // A peer's change is not taken: the peer keeps it to send, and says why.
        try await e.device.ok("put", "memories", "late", "--json", #"{"text": "written while d was damaged"}"#)
        try await waitUntil("e hears that d's store is damaged", timeout: 30) {
            try await e.peerStatus(agent!.id)?["reason"]?.stringValue?.contains("damaged") == true
        }
        let pending = try await e.peerStatus(agent!.id)?["pending_to_send"]
        #expect(pending.flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 0 >= 1, "\(String(describing: pending))")

        await agent!.stop()
        agent = nil
        try await d.ok("repair")
        // What salvage could not read of the peers table is added back, as repair's last line says.
        try await d.ok("peers", "add", e.id, "--address", e.listen)
        agent = try await AgentProcess(d, extra: ["--no-mdns"])
        try await waitUntil("e's change arrives after the repair", timeout: 60) {
            await agent!.record("memories", "late")?["fields"]?.objectValue?["text"] == "written while d was damaged"
        }
        #expect(await agent!.record("memories", "after") == nil)
        #expect(try await agent!.status()["store"]?.objectValue?["problem"] == .null)
        await agent!.stop()
        await e.stop()
    }

    /// A member that lost `household.key` with its store: repair from a backup without the
    /// household's recovery key says so (not `init --household`, which would found another
    /// household); with it, the records and the household's key come back, the device is a member
    /// again (`pair household`, `peers` lists the other member) and backs up again.
    @Test func repairWithTheRecoveryKeyBringsBackALostHouseholdKey() async throws {
        let founder = device("a")
        let keyFile = dir.path + "/recovery.txt"
        try await founder.initKeepingRecoveryKey(in: keyFile)
        let a = try await AgentProcess(founder, extra: ["--no-mdns"])
        var b: AgentProcess? = try await AgentProcess(device("b"), extra: ["--no-mdns"])
        try await join(b!, through: a)
        for i in 0..<5 { try await b!.device.ok("put", "memories", "b\(i)", "--json", #"{"text": "from b \#(i)"}"#) }
        let repo = "local:" + dir.path + "/repo"
        try await b!.device.ok("backup", "now", "--repo", repo)
        let before = recordLines(ofExport: try await b!.device.ok("export", "-").stdout)
            .filter { !$0.hasPrefix(#"{"collection":"devices""#) }
        let bID = b!.id
        await b!.stop()
        b = nil
        await a.stop()
        let d = device("b")
        try FileManager.default.removeItem(atPath: d.data + "/household.key")
        try damageStore(d)

        let refused = try await d.run("repair", "--from-backup", repo)
        #expect(refused.status != 0, "\(refused.stdout)")
        #expect(refused.stderr.contains("household.key is missing") && refused.stderr.contains("--recovery-key")
            && !refused.stderr.contains("run `hubsync init --household"), "\(refused.stderr)")

        // Another household's recovery key opens nothing: refused before anything moves.
        let otherKey = dir.path + "/other-recovery.txt"
        try await device("other").initKeepingRecoveryKey(in: otherKey)
        let wrong = try await d.run("repair", "--from-backup", repo, "--recovery-key-file", otherKey)
        #expect(wrong.status == 1 && wrong.stderr.contains("recovery key does not open"), "\(wrong.stderr)")
        let untouched = try FileManager.default.contentsOfDirectory(atPath: d.data)
        #expect(!untouched.contains { $0.hasPrefix("store.damaged-") } && !untouched.contains("household.key"), "\(untouched)")

        let repaired = try await d.run("repair", "--from-backup", repo, "--recovery-key-file", keyFile)
        #expect(repaired.status == 0, "\(repaired.stderr)")
        #expect(repaired.stdout.contains("Restored the household's key"), "\(repaired.stdout)")
        #expect(try mode(d.data + "/household.key") & 0o077 == 0)
        #expect(try await d.ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == bID)
        #expect(recordLines(ofExport: try await d.ok("export", "-").stdout).filter { !$0.hasPrefix(#"{"collection":"devices""#) } == before)
        let members = try #require(try await d.ok("pair", "household", "--json").json?.objectValue?["members"]?.arrayValue)
        #expect(members.contains(.string(a.id)) && members.contains(.string(bID)), "\(members)")
        let peers = try #require(try await d.ok("peers", "--json").json?.arrayValue)
        #expect(peers.contains { $0.objectValue?["device_id"] == .string(a.id) && $0.objectValue?["household_member"] == .bool(true) },
                "\(peers)")
        #expect(try await d.ok("peers").stdout.contains("household member"))
        try await d.ok("backup", "now", "--repo", repo)
    }

    /// A device removed from the household is not told to `peers add` itself: its status says
    /// that a member no longer trusts it, most likely because it was removed, and how to rejoin.
    @Test func aRemovedDeviceIsToldItWasMostLikelyRemoved() async throws {
        let a = try await AgentProcess(device("a"), extra: ["--no-mdns"])
        let c = try await AgentProcess(device("c"), extra: ["--no-mdns"])
        try await join(c, through: a)
        try await waitUntilConnected(a, c, "a and c connected", timeout: 15)
        try await a.device.ok("pair", "remove", c.id)
        try await waitUntil("c says it was most likely removed", timeout: 40) {
            let reason = try await c.peerStatus(a.id)?["reason"]?.stringValue ?? ""
            return reason.contains("no longer trusts this device") && reason.contains("pair join")
        }
        let text = try await c.device.ok("status").stdout
        #expect(!text.contains("peers add"), "\(text)")
        await c.stop()
        await a.stop()
    }

    /// `backup list --json` has one time form (RFC 3339 with milliseconds) and the clock
    /// reading in a field named as such.
    @Test func backupListJSONHasOneTimeForm() async throws {
        let d = device("d")
        try await d.ok("init")
        try await d.ok("put", "memories", "m1", "--json", #"{"text": "x"}"#)
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "now", "--repo", repo)
        let list = try #require(try await d.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.first?.objectValue)
        let time = try #require(list["time"]?.stringValue)
        #expect(time.count == 24 && time.hasSuffix("Z") && time.contains("."), "\(time)")
        #expect(list["time_iso"] == nil && list["clock"] == nil, "\(list)")
        #expect(list["clock_hlc"]?.stringValue?.contains(":") == true, "\(list)")
    }
}
