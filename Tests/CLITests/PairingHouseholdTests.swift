import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// Three devices paired in a line: membership syncs, so A trusts C with no step on A, and a
/// removal signed on A takes C out of B's trust too.
@Suite(.timeLimit(.minutes(10))) struct PairingHouseholdTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }


    @Test func membershipSyncsAndRemovalReachesEveryMember() async throws {
        let a = try await AgentProcess(device("a"))
        var b = try await AgentProcess(device("b"))
        let c = try await AgentProcess(device("c"))
        try await join(b, through: a)
        try await join(c, through: b)

        // A never saw C pair, yet trusts it once the signed chain A→B→C reaches it.
        try await waitUntil("A connected to C directly", timeout: 15) { await a.isConnected(to: c) }
        try await waitUntil("all three see three members", timeout: 10) {
            for agent in [a, b, c] where try await household(agent)["members"]?.arrayValue?.count != 3 { return false }
            return true
        }
        try await c.api("PATCH", "/v1/records/memories/from-c", ["text": "written on C"])
        try await waitUntil("C's record on A", timeout: 5) { await a.record("memories", "from-c") != nil }

        // With B gone, A's writes still reach C directly.
        await b.kill9()
        try await a.api("PATCH", "/v1/records/memories/from-a", ["text": "written on A while B is down"])
        try await waitUntil("A's record on C without B", timeout: 5) { await c.record("memories", "from-a") != nil }
        b = try await AgentProcess(device("b"))
        try await waitUntil("B back with A and C", timeout: 15) {
            let ba = await b.isConnected(to: a), bc = await b.isConnected(to: c)
            return ba && bc
        }

        // A removes C: A and B drop it, it cannot come back, and what it writes stays with it.
        let keyBefore = try await household(a)["held_key_id"]
        let householdOfB = try await household(b), householdOfC = try await household(c)
        #expect(householdOfB["held_key_id"] == keyBefore && householdOfC["held_key_id"] == keyBefore)
        // `peers remove` of a household member is a household removal (so is `pair remove`).
        let removed = try await a.device.ok("peers", "remove", c.id, "--json").json?.objectValue ?? [:]
        #expect(removed["removed"]?.arrayValue == [.string(c.id)])
        #expect(removed["key_epoch"] == 1)
        try await waitUntil("A and B dropped C", timeout: 20) {
            let goneFromA = try await a.peerStatus(c.id) == nil, goneFromB = try await b.peerStatus(c.id) == nil
            let ac = await a.isConnected(to: c), bc = await b.isConnected(to: c)
            return goneFromA && goneFromB && !ac && !bc
        }
        #expect(try await household(b)["removed"]?.arrayValue == [.string(c.id)])
        // The group key rotated: A and B hold the new one, C still the old one.
        // A condition, not a speed: under a loaded make test a sync round may take seconds.
        try await waitUntil("A and B hold the key of epoch 1", timeout: 20) {
            let onA = try await household(a), onB = try await household(b)
            return onA["held_key_epoch"] == 1 && onB["held_key_epoch"] == 1 && onA["held_key_id"] == onB["held_key_id"]
        }
        #expect(try await household(a)["held_key_id"] != keyBefore)
        #expect(try await household(c)["held_key_id"] == keyBefore)
        try await c.api("PATCH", "/v1/records/memories/after-removal", ["text": "must not leave C"])
        // B restarted on a new port: tell C where it is now, as discovery would.
        try await c.device.ok("peers", "add", b.id, "--address", b.listen)
        try await waitUntil("C's reconnects refused", timeout: 15) {
            let refusedBy = { (x: AgentProcess) async in
                (try? await x.status()["refused"]?.arrayValue?.contains { $0.objectValue?["device_id"]?.stringValue == c.id }) == true
            }
            let byA = await refusedBy(a), byB = await refusedBy(b)
            return byA || byB
        }
        try await a.api("PATCH", "/v1/records/memories/marker", ["text": "sync between A and B still flows"])
        try await waitUntil("marker on B", timeout: 5) { await b.record("memories", "marker") != nil }
        #expect(await a.record("memories", "after-removal") == nil)
        #expect(await b.record("memories", "after-removal") == nil)
        let ac = await a.isConnected(to: c), bc = await b.isConnected(to: c)
        #expect(!ac && !bc)
        let again = try await a.device.run("pair", "remove", c.id)
        #expect(again.status == 2 && again.stderr.contains("removed already"), "\(again.stderr)")

        // A device joining after the rotation gets the current key, and nobody rotates again.
        let keyNow = try await household(a)["held_key_id"]
        let d = try await AgentProcess(device("d"))
        try await join(d, through: a)
        try await waitUntil("D connected to B through the synced membership", timeout: 15) { await b.isConnected(to: d) }
        for x in [a, b, d] {
            let h = try await household(x)
            #expect(h["held_key_epoch"] == 1 && h["held_key_id"] == keyNow, "\(x.device.data)")
        }
    }

    /// With no agent running, `pair remove` is signed by the command itself (it holds the writer
    /// lock); the agent, started later, applies it and keeps it.
    /// A member whose household.key was lost is never led to found a second household
    /// (review of issue 11's fixes, finding 1): pair household, pair invite and doctor say what
    /// happened and name the way back.
    @Test func aMemberThatLostItsHouseholdKeyIsNotLedToFoundAnother() async throws {
        let a = try await AgentProcess(device("a"))
        var b = try await AgentProcess(device("b"))
        try await join(b, through: a)
        await b.stop()
        try FileManager.default.removeItem(atPath: b.device.data + "/household.key")
        let household = try await b.device.run("pair", "household")
        #expect(household.status == 1 && household.stderr.contains("household.key is missing")
                && household.stderr.contains("--recovery-key-file"), "\(household.stdout)\(household.stderr)")
        let doctor = try await b.device.run("doctor")
        #expect(doctor.status == 1 && doctor.stdout.contains("household.key is missing"), "\(doctor.stdout)")
        // A backup says the same, not that the directory was made before backups existed.
        let backup = try await b.device.run("backup", "now", "--repo", "local:" + b.device.data + "/../lost-key-repo")
        #expect(backup.status == 1 && backup.stderr.contains("household.key is missing")
                && backup.stderr.contains("--recovery-key-file") && !backup.stderr.contains("before backups existed"),
                "\(backup.stderr)")
        b = try await AgentProcess(b.device)
        let invite = try await b.device.run("pair", "invite", "--ttl", "10s")
        #expect(invite.status != 0 && invite.stderr.contains("household.key is missing"), "\(invite.stdout)\(invite.stderr)")
        #expect(!FileManager.default.fileExists(atPath: b.device.data + "/household.key"), "no second household was founded")
    }

    @Test func aRemovalWithoutAnAgentIsSignedByTheCommand() async throws {
        var a = try await AgentProcess(device("a"))
        let b = try await AgentProcess(device("b"))
        try await join(b, through: a)
        await a.stop()
        let removed = try await a.device.ok("pair", "remove", b.id, "--json").json?.objectValue ?? [:]
        #expect(removed["removed"]?.arrayValue == [.string(b.id)])
        #expect(removed["key_epoch"] == 1 && removed["held_key_epoch"] == 1)
        let peers = try await a.device.ok("peers", "list", "--json").json?.arrayValue ?? []
        #expect(!peers.contains { $0.objectValue?["device_id"]?.stringValue == b.id })
        let again = try await a.device.run("pair", "remove", b.id)
        #expect(again.status == 2 && again.stderr.contains("removed already"), "\(again.stderr)")

        a = try await AgentProcess(device("a"))
        let household = try await household(a)
        #expect(household["removed"]?.arrayValue == [.string(b.id)] && household["held_key_epoch"] == 1)
        #expect(household["held_key_id"] == removed["held_key_id"])
        #expect(try await a.peerStatus(b.id) == nil)
    }
}
