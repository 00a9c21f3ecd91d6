import Foundation
import HubSyncCore
import Testing

/// Removing a device never silently keeps or drops the devices it enrolled, and backups go on
/// after the group key rotates, under keys the removed device never held (protocol/SPEC.md 4.8, 5.5).
@Suite(.timeLimit(.minutes(10))) struct HouseholdRemovalTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }


    func members(_ agent: AgentProcess) async throws -> Set<String> {
        Set(try await household(agent)["members"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// B joins through A, C through B: removing B names C and removes nothing until A decides.
    @Test func removingADeviceNamesTheDevicesItEnrolled() async throws {
        let a = try await AgentProcess(device("a"))
        let b = try await AgentProcess(device("b"))
        let c = try await AgentProcess(device("c"))
        try await join(b, through: a)
        try await join(c, through: b)
        try await waitUntil("A sees three members", timeout: 15) { try await members(a).count == 3 }

        let refused = try await a.device.run("pair", "remove", b.id)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains(c.id) && refused.stderr.contains("--keep-enrolled"), "\(refused.stderr)")
        let asJSON = try await a.device.run("pair", "remove", b.id, "--json")
        #expect(asJSON.status == 2 && asJSON.json?.objectValue?["enrolled"]?.arrayValue == [.string(c.id)], "\(asJSON.stdout)")
        let viaPeers = try await a.device.run("peers", "remove", b.id)
        #expect(viaPeers.status == 2 && viaPeers.stderr.contains(c.id), "\(viaPeers.stderr)")
        let (status, body) = try await a.request("DELETE", "/v1/pairing/household/\(b.id)")
        #expect(status == 409 && body.objectValue?["enrolled"]?.arrayValue == [.string(c.id)])
        let (badID, _) = try await a.request("DELETE", "/v1/pairing/household/\(b.id)?keep_enrolled=not-a-device")
        let (badFlag, _) = try await a.request("DELETE", "/v1/pairing/household/\(b.id)?remove_enrolled=maybe")
        #expect(badID == 400 && badFlag == 400)
        // Nothing changed.
        let unchanged = try await household(a), memberCount = try await members(a).count
        #expect(unchanged["key_epoch"] == 0 && memberCount == 3)
        // Vouching for a device B did not enroll is bad input.
        let stranger = try await a.device.run("pair", "remove", b.id, "--keep-enrolled", a.id)
        #expect(stranger.status == 2 && stranger.stderr.contains("not enrolled"), "\(stranger.stderr)")

        // A vouches for C: C stays (added again by A) and gets the new key; B is out.
        let kept = try await a.device.ok("pair", "remove", b.id, "--keep-enrolled", c.id, "--json").json?.objectValue ?? [:]
        #expect(kept["removed"]?.arrayValue == [.string(b.id)] && kept["key_epoch"] == 1)
        #expect(Set(kept["members"]?.arrayValue?.compactMap(\.stringValue) ?? []) == [a.id, c.id])
        try await waitUntil("C holds the key of epoch 1, as A does", timeout: 20) {
            let onA = try await household(a), onC = try await household(c)
            return onC["held_key_epoch"] == 1 && onC["held_key_id"] == onA["held_key_id"]
        }

        // D joins through C; removing C with --remove-enrolled removes D too, in one key epoch.
        let d = try await AgentProcess(device("d"))
        try await join(d, through: c)
        try await waitUntil("A sees D", timeout: 15) { try await members(a).contains(d.id) }
        let both = try await a.device.ok("pair", "remove", c.id, "--remove-enrolled", "--json").json?.objectValue ?? [:]
        #expect(Set(both["removed"]?.arrayValue?.compactMap(\.stringValue) ?? []) == [b.id, c.id, d.id])
        #expect(both["members"]?.arrayValue == [.string(a.id)] && both["key_epoch"] == 3)
        // A removed device cannot come back through another member's invite.
        let again = try await a.device.run("pair", "remove", d.id)
        #expect(again.status == 2 && again.stderr.contains("removed already"), "\(again.stderr)")
    }

    /// After a removal every remaining member backs up into the existing local and peer
    /// repositories; a copy of the removed device's data directory opens none of the new snapshots.
    @Test func backupsGoOnAfterARemovalUnderKeysTheRemovedDeviceNeverHeld() async throws {
        try await device("a").ok("init")
        let a = try await AgentProcess(device("a"))
        let b = try await AgentProcess(device("b"))
        let c = try await AgentProcess(device("c"))
        try await join(b, through: a)
        try await join(c, through: a)
        try await b.api("PATCH", "/v1/records/memories/m1", ["text": "before the removal"])
        let local = "local:" + dir.path + "/repo"
        let peer = "peer:" + a.id
        for x in [a, b, c] { try await x.device.ok("backup", "now", "--repo", local) }
        try await b.device.ok("backup", "now", "--repo", peer)
        // The thief's copy of C's data directory, taken before the removal.
        await c.stop()
        let copy = dir.path + "/c-copy"
        try FileManager.default.copyItem(atPath: c.device.data, toPath: copy)
        try? FileManager.default.removeItem(atPath: copy + "/agent.json")

        try await a.device.ok("pair", "remove", c.id)
        try await waitUntil("A and B hold the key of epoch 1", timeout: 20) {
            let onA = try await household(a), onB = try await household(b)
            return onA["held_key_epoch"] == 1 && onB["held_key_epoch"] == 1 && onA["held_key_id"] == onB["held_key_id"]
        }
        try await b.api("PATCH", "/v1/records/memories/m2", ["text": "after the removal"])
        try await waitUntil("m2 on A", timeout: 10) { await a.record("memories", "m2") != nil }
        var newSnapshots: [String] = []
        for x in [a, b] {
            let made = try await x.device.ok("backup", "now", "--repo", local, "--json").json?.objectValue
            newSnapshots.append(try #require(made?["id"]?.stringValue))
        }
        let viaPeer = try await b.device.ok("backup", "now", "--repo", peer, "--json").json?.objectValue
        let peerSnapshot = try #require(viaPeer?["id"]?.stringValue)
        for x in [a, b] {
            let listed = try await x.device.ok("backup", "list", "--repo", local, "--json").json?.arrayValue ?? []
            #expect(listed.count == 5, "\(x.device.data)")
        }
        #expect((try await b.device.ok("backup", "list", "--repo", peer, "--json").json?.arrayValue ?? []).count == 2)
        // Restoring the newest snapshot on A gives the record written after the removal.
        try await a.device.ok("backup", "restore", newSnapshots[1], "--repo", local, "--into", dir.path + "/restored")
        let restored = try await Device(data: dir.path + "/restored").ok("get", "memories", "m2", "--json").json?.objectValue
        #expect(restored?["fields"]?.objectValue?["text"] == "after the removal")

        // The removed device's copy: the new snapshots do not open with anything it holds.
        let thief = Device(data: copy)
        for snapshot in newSnapshots {
            let r = try await thief.run("backup", "restore", snapshot, "--repo", local, "--into", dir.path + "/stolen-\(snapshot)")
            #expect(r.status != 0, "the removed device opened \(snapshot)")
            // F6: said as a key it does not hold, not as damage.
            #expect(r.stderr.contains("a key this device does not hold") && !r.stderr.contains("damaged"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/stolen-\(snapshot)/store.sqlite"))
        }
        // Nor do the snapshot files themselves decrypt with its keys: it lists the old ones and
        // names the new ones as under a key it does not hold (F6, F11: nothing hides the rest).
        let listing = try await thief.run("backup", "list", "--repo", local, "--json")
        #expect(listing.status == 0, "\(listing.stderr)")
        let rows = listing.json?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(rows.filter { $0["unreadable"] == nil }.count == 3, "\(listing.stdout)")
        for snapshot in newSnapshots {
            #expect(rows.contains { $0["id"]?.stringValue?.hasPrefix(snapshot) == true && $0["unreadable"] == "key_not_held" })
        }

        // The peer repository's new snapshot restores on B.
        try await b.device.ok("backup", "restore", peerSnapshot, "--repo", peer, "--into", dir.path + "/from-peer")
    }

    /// Scheduled backups on a remaining member go on after a removal, into the same repository,
    /// under a key entry of the new epoch.
    @Test func scheduledBackupsGoOnAfterARemoval() async throws {
        try await device("a").ok("init")
        let a = try await AgentProcess(device("a"))
        let c = try await AgentProcess(device("c"))
        try await join(c, through: a)
        let repo = dir.path + "/repo"
        try #"{"backup": {"targets": ["local:\#(repo)"], "interval_seconds": 1}}"#
            .write(toFile: a.device.data + "/config.json", atomically: true, encoding: .utf8)
        await a.stop()
        let scheduled = try await AgentProcess(device("a"))
        func lastSnapshot() async throws -> String? {
            try await scheduled.status()["backup"]?.objectValue?["snapshot"]?.stringValue
        }
        try await waitUntil("a scheduled backup before the removal", timeout: 60, interval: 0.1) { try await lastSnapshot() != nil }
        try await scheduled.device.ok("pair", "remove", c.id)
        try await waitUntil("A holds the key of epoch 1", timeout: 20) { try await household(scheduled)["held_key_epoch"] == 1 }
        // A scheduled run under the new key writes its key entry (backup epoch 2) and a snapshot.
        try await waitUntil("a key entry for the new epoch", timeout: 60, interval: 0.1) {
            ((try? FileManager.default.contentsOfDirectory(atPath: repo + "/keys")) ?? []).contains { $0.contains("-2-") }
        }
        let first = try await lastSnapshot()
        try await waitUntil("a scheduled snapshot after the new entry", timeout: 60, interval: 0.1) {
            let now = try await lastSnapshot()
            return now != nil && now != first
        }
        let state = try #require(try await scheduled.status()["backup"]?.objectValue)
        #expect((state["error"] ?? .null) == .null, "\(state)")
        // The remaining member restores the latest scheduled snapshot.
        try await scheduled.device.ok("backup", "restore", "latest", "--repo", "local:" + repo, "--into", dir.path + "/restored")
    }
}
