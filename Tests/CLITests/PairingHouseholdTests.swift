import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// Three devices paired in a line: membership syncs, so A trusts C with no step on A, and a
/// removal signed on A takes C out of B's trust too.
@Suite(.timeLimit(.minutes(5))) struct PairingHouseholdTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    func join(_ joiner: AgentProcess, through member: AgentProcess) throws {
        let invite = try InviteProcess(member.device)
        try joiner.device.ok("pair", "join", invite.code, "--host", member.listen)
        #expect(try invite.finish(timeout: 10).status == 0)
    }

    func household(_ agent: AgentProcess) throws -> [String: Value] {
        try agent.api("GET", "/v1/pairing/household").objectValue ?? [:]
    }

    @Test func membershipSyncsAndRemovalReachesEveryMember() throws {
        let a = try AgentProcess(device("a"))
        var b = try AgentProcess(device("b"))
        let c = try AgentProcess(device("c"))
        try join(b, through: a)
        try join(c, through: b)

        // A never saw C pair, yet trusts it once the signed chain A→B→C reaches it.
        try waitUntil("A connected to C directly", timeout: 15) { a.isConnected(to: c) }
        try waitUntil("all three see three members", timeout: 10) {
            try [a, b, c].allSatisfy { try household($0)["members"]?.arrayValue?.count == 3 }
        }
        try c.api("PATCH", "/v1/records/memories/from-c", ["text": "written on C"])
        try waitUntil("C's record on A", timeout: 5) { a.record("memories", "from-c") != nil }

        // With B gone, A's writes still reach C directly.
        b.kill9()
        try a.api("PATCH", "/v1/records/memories/from-a", ["text": "written on A while B is down"])
        try waitUntil("A's record on C without B", timeout: 5) { c.record("memories", "from-a") != nil }
        b = try AgentProcess(device("b"))
        try waitUntil("B back with A and C", timeout: 15) { b.isConnected(to: a) && b.isConnected(to: c) }

        // A removes C: A and B drop it, it cannot come back, and what it writes stays with it.
        let keyBefore = try household(a)["held_key_id"]
        #expect(try household(b)["held_key_id"] == keyBefore && household(c)["held_key_id"] == keyBefore)
        // `peers remove` of a household member is a household removal (so is `pair remove`).
        let removed = try a.device.ok("peers", "remove", c.id, "--json").json?.objectValue ?? [:]
        #expect(removed["removed"]?.arrayValue == [.string(c.id)])
        #expect(removed["key_epoch"] == 1)
        try waitUntil("A and B dropped C", timeout: 5) {
            let gone = try a.peerStatus(c.id) == nil && b.peerStatus(c.id) == nil
            return gone && !a.isConnected(to: c) && !b.isConnected(to: c)
        }
        #expect(try household(b)["removed"]?.arrayValue == [.string(c.id)])
        // The group key rotated: A and B hold the new one, C still the old one.
        try waitUntil("A and B hold the key of epoch 1", timeout: 5) {
            let onA = try household(a), onB = try household(b)
            return onA["held_key_epoch"] == 1 && onB["held_key_epoch"] == 1 && onA["held_key_id"] == onB["held_key_id"]
        }
        #expect(try household(a)["held_key_id"] != keyBefore)
        #expect(try household(c)["held_key_id"] == keyBefore)
        try c.api("PATCH", "/v1/records/memories/after-removal", ["text": "must not leave C"])
        // B restarted on a new port: tell C where it is now, as discovery would.
        try c.device.ok("peers", "add", b.id, "--address", b.listen)
        try waitUntil("C's reconnects refused", timeout: 15) {
            let refusedBy = { (x: AgentProcess) in
                (try? x.status()["refused"]?.arrayValue?.contains { $0.objectValue?["device_id"]?.stringValue == c.id }) == true
            }
            return refusedBy(a) || refusedBy(b)
        }
        try a.api("PATCH", "/v1/records/memories/marker", ["text": "sync between A and B still flows"])
        try waitUntil("marker on B", timeout: 5) { b.record("memories", "marker") != nil }
        #expect(a.record("memories", "after-removal") == nil)
        #expect(b.record("memories", "after-removal") == nil)
        #expect(!a.isConnected(to: c) && !b.isConnected(to: c))
        let again = try a.device.run("pair", "remove", c.id)
        #expect(again.status == 1 && again.stderr.contains("removed already"), "\(again.stderr)")

        // A device joining after the rotation gets the current key, and nobody rotates again.
        let keyNow = try household(a)["held_key_id"]
        let d = try AgentProcess(device("d"))
        try join(d, through: a)
        try waitUntil("D connected to B through the synced membership", timeout: 15) { b.isConnected(to: d) }
        for x in [a, b, d] {
            let h = try household(x)
            #expect(h["held_key_epoch"] == 1 && h["held_key_id"] == keyNow, "\(x.device.data)")
        }
    }
}
