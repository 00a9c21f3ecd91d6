import Foundation
import HubSyncCore
import Testing

/// One device of a ``Testbed``: a holder process keeping a network and a mount namespace, its
/// own dbus-daemon and avahi-daemon, a hubsync data directory, and maybe a running agent.
final class TestDevice: @unchecked Sendable { // used from one test at a time
    unowned let testbed: Testbed
    let index: Int
    /// The named network namespace (`ip netns attach`), so leftovers can be found by name.
    let namespace: String
    let holder: ChildProcess
    let directory: String
    var dbus: ChildProcess?
    var avahi: ChildProcess?
    var agent: SpawnedAgent?

    var address: String { "10.77.0.\(index)" }
    var data: String { directory + "/data" }
    /// The bridge-side end of this device's veth pair.
    var bridgePort: String { "v\(index)" }

    init(testbed: Testbed, index: Int) async throws {
        self.testbed = testbed
        self.index = index
        namespace = "\(testbed.name)-\(index)"
        directory = testbed.directory + "/dev\(index)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A tmpfs over /run (only in this mount namespace) gives private /run/dbus and
        // /run/avahi-daemon without creating anything on the host.
        holder = try ChildProcess("/usr/bin/unshare", [
            "--net", "--mount", "--propagation", "private", "/bin/sh", "-c",
            "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/dbus /run/avahi-daemon && exec sleep infinity"],
            stdout: directory + "/holder.log")
        let pid = holder.pid
        try await waitUntil("the holder of \(namespace) to mount its /run", timeout: 10, interval: 0.02) { [holder] in
            guard holder.isRunning else { throw CommandFailed(description: "the holder of \(namespace) exited: \(holder.exitStatus ?? -1)") }
            return FileManager.default.fileExists(atPath: "/proc/\(pid)/root/run/avahi-daemon")
        }
        try await must("/usr/sbin/ip", "netns", "attach", namespace, "\(pid)")
        try await testbed.ip(testbed.bridgeNamespace, "link", "add", bridgePort, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        try await testbed.ip(testbed.bridgeNamespace, "link", "set", bridgePort, "master", "br0", "up")
        try await testbed.ip(namespace, "link", "set", "lo", "up")
        try await testbed.ip(namespace, "addr", "add", "\(address)/16", "dev", "eth0")
        try await testbed.ip(namespace, "link", "set", "eth0", "up")
        try writeConfigurations()
        try await ok("init")
        id = try await ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: daemons

    func writeConfigurations() throws {
        try """
        <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
         "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
        <busconfig>
          <type>system</type>
          <listen>unix:path=/run/dbus/system_bus_socket</listen>
          <auth>EXTERNAL</auth>
          <policy context="default">
            <allow user="*"/>
            <allow own="*"/>
            <allow send_destination="*"/>
            <allow receive_sender="*"/>
          </policy>
        </busconfig>

        """.write(toFile: directory + "/dbus.conf", atomically: true, encoding: .utf8)
        try """
        [server]
        host-name=\(namespace)
        use-ipv4=yes
        use-ipv6=no
        allow-interfaces=eth0
        enable-dbus=yes
        disallow-other-stacks=no
        ratelimit-interval-usec=0
        [wide-area]
        enable-wide-area=no
        [publish]
        publish-hinfo=no
        publish-workstation=no
        publish-aaaa-on-ipv4=no

        """.write(toFile: directory + "/avahi.conf", atomically: true, encoding: .utf8)
    }

    /// Starts a process inside this device's namespaces, its output appended to `log`.
    func spawn(_ args: [String], log: String) throws -> ChildProcess {
        try ChildProcess("/usr/bin/nsenter", ["-t", "\(holder.pid)", "-m", "-n"] + args, stdout: log)
    }

    /// Starts this device's system bus and waits for its socket.
    func startDBus() async throws {
        dbus = try spawn(["/usr/bin/dbus-daemon", "--config-file=\(directory)/dbus.conf", "--nofork", "--nopidfile"],
                         log: directory + "/dbus.log")
        try await waitUntil("dbus-daemon in \(namespace)", timeout: 10, interval: 0.02) {
            FileManager.default.fileExists(atPath: "/proc/\(holder.pid)/root/run/dbus/system_bus_socket")
        }
    }

    /// Starts avahi-daemon and waits until it owns its D-Bus name (its socket appears). A daemon
    /// that exits while starting (seen once in a loaded CI run) is started again, twice at most;
    /// what it said stays in avahi.log, and the error quotes its end.
    func startAvahi() async throws {
        for attempt in 1...3 {
            let log = directory + "/avahi\(attempt == 1 ? "" : "-\(attempt)").log"
            avahi = try spawn(["/usr/sbin/avahi-daemon", "--no-drop-root", "--no-chroot", "--no-rlimits", "-f", directory + "/avahi.conf"],
                              log: log)
            var exited = false
            try await waitUntil("avahi-daemon in \(namespace)", timeout: 10, interval: 0.02) {
                guard avahi?.isRunning == true else { exited = true; return true }
                return FileManager.default.fileExists(atPath: "/proc/\(holder.pid)/root/run/avahi-daemon/socket")
            }
            if !exited { return }
            let said = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            guard attempt < 3 else {
                throw CommandFailed(description: "avahi-daemon in \(namespace) exited three times while starting; it said: \(said.suffix(600))")
            }
            FileHandle.standardError.write(Data("avahi-daemon in \(namespace) exited while starting (\(said.suffix(300))); starting it again\n".utf8))
        }
    }

    /// Stops avahi-daemon (SIGTERM, as a service manager would).
    func stopAvahi() async {
        await avahi?.stop(SIGTERM)
        avahi = nil
    }

    /// Both daemons.
    func startDaemons() async throws {
        try await startDBus()
        try await startAvahi()
    }

    // MARK: hubsync

    /// Runs `hubsync ARGS --data DATA` inside this device.
    @discardableResult
    func hubsync(_ args: String...) async throws -> RunResult {
        try await runProgram("/usr/bin/nsenter", ["-t", "\(holder.pid)", "-m", "-n", hubsyncPath] + args + ["--data", data])
    }

    /// Runs hubsync and requires success.
    @discardableResult
    func ok(_ args: String...) async throws -> RunResult {
        let r = try await runProgram("/usr/bin/nsenter", ["-t", "\(holder.pid)", "-m", "-n", hubsyncPath] + args + ["--data", data])
        guard r.status == 0 else {
            throw CommandFailed(description: "hubsync \(args.joined(separator: " ")) on \(namespace) exited \(r.status): \(r.stderr)")
        }
        return r
    }

    /// This device's ID (`hubsync id`).
    private(set) var id = ""

    /// Starts `hubsync run` on free ports and waits until it is ready.
    func startAgent(_ extra: String...) async throws {
        agent = try await SpawnedAgent.start(data: data, listen: "0.0.0.0:0", extra: ["--log-level", "debug"] + extra,
                                             launcher: ["/usr/bin/nsenter", "-t", "\(holder.pid)", "-m", "-n"],
                                             log: directory + "/agent.log")
    }

    /// The agent's `listen` address as it reports it (0.0.0.0:PORT) turned into ours.
    var listenAddress: String? {
        guard let d = FileManager.default.contents(atPath: data + "/agent.json"),
              let listen = (try? JSON.parse([UInt8](d)))?.objectValue?["listen"]?.stringValue,
              let port = listen.split(separator: ":").last else { return nil }
        return "\(address):\(port)"
    }

    /// Stops the agent with SIGTERM; its exit status.
    /// The end of this device's agent log, for a failure's message.
    func agentLogTail(_ characters: Int = 1500) -> String {
        String(String(decoding: FileManager.default.contents(atPath: directory + "/agent.log") ?? Data(), as: UTF8.self)
            .suffix(characters))
    }

    func stopAgent() async -> Int32 {
        defer { agent = nil }
        guard let agent else { return -1 }
        return await agent.stop()
    }

    func killAgent() async {
        await agent?.kill()
        agent = nil
    }

    /// `hubsync status --json`.
    func status() async throws -> [String: Value] {
        try await ok("status", "--json").json?.objectValue ?? [:]
    }

    func isConnected(to other: TestDevice) async -> Bool {
        guard let peers = (try? await status())?["peers"]?.arrayValue else { return false }
        return peers.contains { $0.objectValue?["device_id"]?.stringValue == other.id && $0.objectValue?["connected"] == .bool(true) }
    }

    // MARK: faults

    /// Takes this device's link down at the bridge (a partition), or up again.
    func setLink(up: Bool) async throws {
        try await testbed.ip(testbed.bridgeNamespace, "link", "set", bridgePort, up ? "up" : "down")
    }

    /// Adds netem delay and loss on this device's interface. Returns false, changing nothing,
    /// when the kernel has no netem qdisc (sch_netem not built or not loadable).
    @discardableResult
    func netem(delayMilliseconds: Int, lossPercent: Double = 0) async throws -> Bool {
        let r = try await runProgram("/usr/bin/nsenter", ["-t", "\(holder.pid)", "-n", "/usr/sbin/tc", "qdisc", "replace", "dev", "eth0",
                                                     "root", "netem", "delay", "\(delayMilliseconds)ms", "loss", "\(lossPercent)%"])
        if r.status != 0, r.stderr.contains("qdisc kind is unknown") { return false }
        guard r.status == 0 else { throw CommandFailed(description: "tc netem on \(namespace): \(r.stderr)") }
        return true
    }

    /// Removes netem again.
    func clearNetem() async throws {
        _ = try await runProgram("/usr/bin/nsenter", ["-t", "\(holder.pid)", "-n", "/usr/sbin/tc", "qdisc", "del", "dev", "eth0", "root"])
    }

    /// avahi-browse inside this device: resolved `_hubsync._tcp` services as (name, address, port);
    /// what it printed within 10 s if it does not end by then.
    func browse() async throws -> [(name: String, address: String, port: Int)] {
        let r = try await runProgram("/usr/bin/nsenter", ["-t", "\(holder.pid)", "-m", "-n",
                                                     "/usr/bin/avahi-browse", "--resolve", "--terminate", "--parsable", "_hubsync._tcp"],
                                   // avahi-browse can wait forever on a resolve whose daemon went away.
                                   timeout: 10)
        return r.stdout.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ";", omittingEmptySubsequences: false)
            guard f.count >= 9, f[0] == "=" else { return nil }
            return (String(f[3]), String(f[7]), Int(f[8]) ?? 0)
        }
    }

    /// Kills everything this device runs (by PID), the holder last.
    /// Blocking: it runs from the testbed's `tearDown()`, which cannot await.
    func kill() {
        for p in [agent?.process, avahi, dbus, holder].compactMap({ $0 }) {
            p.signal(SIGKILL)
            p.waitBlocking()
        }
    }
}

/// Waits until `a` and `b` are each connected to the other.
func waitUntilConnected(_ a: TestDevice, _ b: TestDevice, _ what: String, timeout: Double,
                        fileID: String = #fileID, line: Int = #line) async throws {
    try await waitUntil(what, timeout: timeout, fileID: fileID, line: line) {
        let ab = await a.isConnected(to: b), ba = await b.isConnected(to: a)
        return ab && ba
    }
}
