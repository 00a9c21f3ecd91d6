import Foundation
import Testing

/// Devices in network namespaces joined by veth pairs to a bridge, each with its own dbus-daemon
/// and avahi-daemon, so mDNS really crosses a wire (DESIGN.md, Testbed).
///
/// The bridge lives in its own namespace (`NAME-br`), so nothing touches the host's network.
/// Each device has a long-lived holder process (`unshare --net --mount`, a tmpfs over /run) that
/// keeps its namespaces; its daemons, agent and every CLI call run inside with
/// `nsenter -t HOLDER -m -n`, so avahi-client finds the device's own system bus at the usual path.
/// Addresses are 10.77.0.K/16. Everything is torn down by ``tearDown()`` (also from `deinit`),
/// and objects a crashed earlier run left behind are removed by their name prefix.
final class Testbed: @unchecked Sendable { // used from one test at a time
    /// Namespace names start with this, then the test process's PID: `hsd<PID>x<N>-…`.
    static let prefix = "hsd"
    nonisolated(unsafe) static var counter = 0
    static let counterLock = NSLock()

    let name: String
    let directory: String
    private(set) var devices: [TestDevice] = []
    private var tornDown = false

    /// Why system tests cannot run here, or nil when they can.
    static let unavailableReason: String? = {
        let reason = findUnavailableReason()
        if let reason { FileHandle.standardError.write(Data("SystemTests skipped: \(reason)\n".utf8)) }
        return reason
    }()

    static func findUnavailableReason() -> String? {
        guard getuid() == 0 else { return "system tests need root to create network namespaces (CI runs them as root)" }
        for tool in ["/usr/sbin/ip", "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/sbin/avahi-daemon", "/usr/bin/dbus-daemon", "/usr/bin/avahi-browse"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing; run scripts/setup.sh"
        }
        guard let r = try? runProgramBlocking("/usr/bin/unshare", ["--net", "--mount", "true"]), r.status == 0 else {
            return "cannot create network namespaces here (unshare --net failed)"
        }
        removeLeftovers()
        return nil
    }

    /// Creates the bridge and `count` devices (holders and addresses; daemons start separately).
    init(devices count: Int) async throws {
        let n = Self.counterLock.withLock { Self.counter += 1; return Self.counter }
        name = "\(Self.prefix)\(getpid())x\(n)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-testbed-\(name)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try await must("/usr/sbin/ip", "netns", "add", bridgeNamespace)
            try await ip(bridgeNamespace, "link", "add", "br0", "type", "bridge")
            try await ip(bridgeNamespace, "link", "set", "br0", "up")
            for k in 1...count {
                devices.append(try await TestDevice(testbed: self, index: k))
            }
        } catch {
            tearDown()
            throw error
        }
    }

    deinit { tearDown() }

    var bridgeNamespace: String { name + "-br" }

    /// Runs `ip -n NAMESPACE ARGS`.
    func ip(_ namespace: String, _ args: String...) async throws {
        let r = try await runProgram("/usr/sbin/ip", ["-n", namespace] + args)
        guard r.status == 0 else { throw CommandFailed(description: "ip -n \(namespace) \(args.joined(separator: " ")): \(r.stderr)") }
    }

    /// Kills every process this testbed started and removes its namespaces and files (blocking:
    /// it runs from `defer` and `deinit`, which cannot await).
    func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for d in devices { d.kill() }
        Self.removeNamespaces { $0 == bridgeNamespace || $0.hasPrefix(name + "-") }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Removes namespaces and directories a crashed earlier run left (its test process is gone).
    static func removeLeftovers() {
        func isLeftover(_ name: String) -> Bool {
            guard name.hasPrefix(prefix), let x = name.dropFirst(prefix.count).firstIndex(of: "x"),
                  let pid = Int32(name.dropFirst(prefix.count)[..<x]) else { return false }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }
        removeNamespaces(where: isLeftover)
        let temporary = FileManager.default.temporaryDirectory
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        where entry.hasPrefix("hubsync-testbed-") && isLeftover(String(entry.dropFirst("hubsync-testbed-".count))) {
            try? FileManager.default.removeItem(atPath: temporary.appendingPathComponent(entry).path)
        }
    }

    /// Kills the processes inside each matching named namespace (ours), then deletes it.
    static func removeNamespaces(where matches: (String) -> Bool) {
        guard let list = try? runProgramBlocking("/usr/sbin/ip", ["netns", "list"]) else { return }
        let names = list.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        for ns in names where matches(ns) {
            if let pids = try? runProgramBlocking("/usr/sbin/ip", ["netns", "pids", ns]) {
                for pid in pids.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) {
                    Foundation.kill(pid, SIGKILL)
                }
            }
            _ = try? runProgramBlocking("/usr/sbin/ip", ["netns", "delete", ns])
        }
    }
}
