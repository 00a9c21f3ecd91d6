import Foundation
import HubSyncCore
import Testing

/// Real agents in network namespaces with real avahi-daemons: discovery over the wire.
@Suite(.disabled(if: Testbed.unavailableReason != nil,
                 "needs root and network namespaces (unshare --net); CI runs these as root"))
struct DiscoverySystemTests {
    /// Two devices, trusted to each other without addresses, find each other over mDNS; a
    /// record written on one is read on the other; each records the other's address.
    @Test func trustedPeersFindEachOtherOverMDNSAndSync() async throws {
        let bed = try await Testbed(devices: 2)
        defer { bed.tearDown() }
        let (a, b) = (bed.devices[0], bed.devices[1])
        try await a.startDaemons()
        try await b.startDaemons()
        try await a.ok("peers", "add", b.id)
        try await b.ok("peers", "add", a.id)
        try await a.startAgent()
        try await b.startAgent()
        try await waitUntilConnected(a, b, "A and B connected over mDNS", timeout: 20)
        #expect(try await a.status()["mdns"]?.objectValue?["state"] == "running")
        #expect(try await a.ok("status").stdout.contains("mDNS: running"))

        try await a.ok("put", "personas", "ada", "--json", #"{"name": "Ada"}"#)
        try await waitUntil("the record on B", timeout: 10) { try await b.hubsync("get", "personas", "ada").stdout.contains("Ada") }
        // Whoever dialled recorded the other's discovered address as its last-known one.
        let recorded = try await [a.ok("peers", "list", "--json").json, b.ok("peers", "list", "--json").json]
            .compactMap { $0?.arrayValue?.first?.objectValue?["address"]?.stringValue }
        #expect(recorded.contains { $0 == a.listenAddress || $0 == b.listenAddress }, "recorded: \(recorded)")

        // SIGTERM: A stops cleanly and withdraws its advert.
        let nameOfA = try #require(try await a.status()["mdns"]?.objectValue?["service_name"]?.stringValue)
        #expect(try await b.browse().contains { $0.name == nameOfA })
        let stopped = await a.stopAgent()
        #expect(stopped == 0, "the agent exited \(stopped) on SIGTERM; its log ends: \(a.agentLogTail())")
        try await waitUntil("B's avahi-browse to lose A", timeout: 10, interval: 0.25) {
            try await !b.browse().contains { $0.name == nameOfA }
        }
    }

    /// avahi-daemon restarted in A's namespace: A is advertised again within seconds, and after
    /// A's agent restarts on a new port, B finds it there and they reconnect.
    @Test func survivesAnAvahiDaemonRestart() async throws {
        let bed = try await Testbed(devices: 2)
        defer { bed.tearDown() }
        let (a, b) = (bed.devices[0], bed.devices[1])
        try await a.startDaemons()
        try await b.startDaemons()
        try await a.ok("peers", "add", b.id)
        try await b.ok("peers", "add", a.id)
        try await a.startAgent()
        try await b.startAgent()
        try await waitUntilConnected(a, b, "A and B connected", timeout: 20)
        let serviceName = try #require(try await a.status()["mdns"]?.objectValue?["service_name"]?.stringValue)

        await a.stopAvahi()
        try await waitUntil("A's status to say mDNS is unavailable", timeout: 10) {
            try await a.status()["mdns"]?.objectValue?["state"] == "unavailable"
        }
        #expect(try await a.ok("status").stdout.contains("mDNS unavailable: avahi-daemon is not running"))
        // The stopped daemon said goodbye: B forgets A's advert (about a second later).
        try await waitUntil("B's avahi-browse to lose A", timeout: 15, interval: 0.25) {
            try await !b.browse().contains { $0.name == serviceName }
        }
        let restarted = Date()
        try await a.startAvahi()
        try await waitUntil("B's avahi-browse to see A again", timeout: 15) {
            try await b.browse().contains { $0.name == serviceName && $0.address == a.address }
        }
        let readvertised = Date().timeIntervalSince(restarted)
        #expect(readvertised < 10, "A advertised again after \(readvertised) s")
        try await waitUntil("A's status to say mDNS is running again", timeout: 10) {
            try await a.status()["mdns"]?.objectValue?["state"] == "running"
        }

        // A's agent comes back on another port: only mDNS can tell B where.
        await a.killAgent()
        try await a.startAgent()
        let newAddress = try #require(a.listenAddress)
        let agentRestarted = Date()
        try await waitUntilConnected(a, b, "A and B reconnected", timeout: 20)
        let reconnected = Date().timeIntervalSince(agentRestarted)
        // B learnt A's new port from mDNS and recorded it as A's last-known address.
        try await waitUntil("B to record A's new address", timeout: 10) {
            try await b.ok("peers", "list", "--json").json?.arrayValue?.first?.objectValue?["address"]?.stringValue == newAddress
        }
        try await a.ok("put", "memories", "m1", "--json", #"{"text": "after the restart"}"#)
        try await waitUntil("the record on B", timeout: 10) { try await b.hubsync("get", "memories", "m1").stdout.contains("after the restart") }
        print("avahi-daemon restart: advertised again after \(String(format: "%.2f", readvertised)) s; "
            + "agent restarted on a new port: reconnected after \(String(format: "%.2f", reconnected)) s")
    }

    /// Another device took A's service name while A's daemon was down: A renames itself,
    /// status says so, and A is advertised under the new name.
    @Test func aNameCollisionRenamesTheService() async throws {
        let bed = try await Testbed(devices: 2)
        defer { bed.tearDown() }
        let (a, b) = (bed.devices[0], bed.devices[1])
        try await a.startDaemons()
        try await b.startDaemons()
        try await a.startAgent()
        let original = try #require(try await a.status()["mdns"]?.objectValue?["service_name"]?.stringValue)
        await a.stopAvahi()
        try await waitUntil("B's avahi-browse to lose A", timeout: 15, interval: 0.25) {
            try await !b.browse().contains { $0.name == original }
        }
        let squatter = try b.spawn(["/usr/bin/avahi-publish", "--service", original, "_hubsync._tcp", "9", "v=1"],
                                   log: b.directory + "/publish.log")
        defer { squatter.signal(SIGKILL) }
        try await waitUntil("B's own advert under A's old name", timeout: 15, interval: 0.25) {
            try await b.browse().contains { $0.name == original && $0.address == b.address }
        }
        try await a.startAvahi()
        try await waitUntil("A to rename its service", timeout: 20) {
            try await a.status()["mdns"]?.objectValue?["service_name"]?.stringValue != original
        }
        let mdns = try await a.status()["mdns"]?.objectValue ?? [:]
        let renamed = try #require(mdns["service_name"]?.stringValue)
        #expect(mdns["state"] == "running")
        #expect(mdns["reason"]?.stringValue?.contains("renamed to \(renamed)") == true)
        try await waitUntil("B to see A under its new name", timeout: 15, interval: 0.25) {
            try await b.browse().contains { $0.name == renamed && $0.address == a.address }
        }
    }

    /// No avahi-daemon: status says mDNS is unavailable and the agent still syncs over a
    /// static address; once the daemons start, the agents advertise without a restart.
    @Test func withoutAvahiStatusSaysSoAndStaticAddressesStillSync() async throws {
        let bed = try await Testbed(devices: 2)
        defer { bed.tearDown() }
        let (a, b) = (bed.devices[0], bed.devices[1])
        try await a.startDBus() // a system bus, but no avahi-daemon on it
        // B has neither.
        try await a.startAgent()
        try await b.startAgent()
        try await waitUntil("A's status to say mDNS is unavailable", timeout: 10) {
            try await a.status()["mdns"]?.objectValue?["state"] == "unavailable"
        }
        #expect(try await a.ok("status").stdout.contains("mDNS unavailable: avahi-daemon is not running"))
        #expect(try await b.ok("status").stdout.contains("mDNS unavailable: avahi-daemon is not running"))

        let bAddress = try #require(b.listenAddress)
        try await a.ok("peers", "add", b.id, "--address", bAddress)
        try await b.ok("peers", "add", a.id)
        try await waitUntilConnected(a, b, "A and B connected over the static address", timeout: 20)
        try await b.ok("put", "personas", "bo", "--json", #"{"name": "Bo"}"#)
        try await waitUntil("the record on A", timeout: 10) { try await a.hubsync("get", "personas", "bo").stdout.contains("Bo") }

        // The daemons arrive later (on A: avahi on an existing bus; on B: bus and avahi): both
        // agents pick mDNS up by themselves and advertise.
        try await a.startAvahi()
        try await b.startDaemons()
        try await waitUntil("both to say mDNS is running", timeout: 15) {
            let onA = try await a.status()["mdns"]?.objectValue?["state"], onB = try await b.status()["mdns"]?.objectValue?["state"]
            return onA == "running" && onB == "running"
        }
        let nameOfA = try #require(try await a.status()["mdns"]?.objectValue?["service_name"]?.stringValue)
        try await waitUntil("B's avahi-browse to see A", timeout: 15, interval: 0.25) {
            try await b.browse().contains { $0.name == nameOfA && $0.address == a.address }
        }
    }

    /// Three devices found over mDNS; with B's link down (and netem delay on C), a record
    /// written on A reaches C directly.
    @Test func withOneLinkDownTheOthersStillSyncDirectly() async throws {
        let bed = try await Testbed(devices: 3)
        defer { bed.tearDown() }
        let devices = bed.devices
        for d in devices { try await d.startDaemons() }
        for d in devices { for o in devices where o !== d { try await d.ok("peers", "add", o.id) } }
        for d in devices { try await d.startAgent() }
        let (a, b, c) = (devices[0], devices[1], devices[2])
        try await waitUntil("all three connected", timeout: 30) {
            let ab = await a.isConnected(to: b), ac = await a.isConnected(to: c), bc = await b.isConnected(to: c)
            return ab && ac && bc
        }
        try await b.setLink(up: false)
        if try await !c.netem(delayMilliseconds: 50, lossPercent: 1) {
            print("note: this kernel has no netem qdisc (sch_netem); C's link runs without delay and loss")
        }
        try await a.ok("put", "personas", "cy", "--json", #"{"name": "Cy"}"#)
        try await waitUntil("the record on C", timeout: 10) { try await c.hubsync("get", "personas", "cy").stdout.contains("Cy") }
        #expect(try await !b.hubsync("get", "personas", "cy").stdout.contains("Cy"))
        try await b.setLink(up: true)
        try await waitUntil("the record on B once its link is back", timeout: 60) {
            try await b.hubsync("get", "personas", "cy").stdout.contains("Cy")
        }
    }
}
