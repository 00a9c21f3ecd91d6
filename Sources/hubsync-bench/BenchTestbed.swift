import Foundation
import HubSyncBase
import HubSyncCore

/// Two devices in network namespaces with their own dbus and avahi daemons (scripts/testbed.sh),
/// for the figures that need real mDNS. Needs root; ``make(bench:folder:)`` returns nil otherwise.
final class BenchTestbed {
    let bench: Bench
    let name: String
    let folder: String
    let script: String
    let hubsync: String
    private var isUp = false

    private init(bench: Bench, folder: String, script: String) {
        self.bench = bench
        self.folder = folder
        self.script = script
        name = "hsb\(getpid())x\(UUID().uuidString.prefix(4).lowercased())"
        hubsync = URL(fileURLWithPath: bench.options.hubsync).standardizedFileURL.path
    }

    /// Brings up two devices (`1`, `2`), after removing what a killed earlier bench left.
    static func make(bench: Bench, folder: String) throws -> BenchTestbed? {
        let script = FileManager.default.currentDirectoryPath + "/scripts/testbed.sh"
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: script) else { return nil }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let bed = BenchTestbed(bench: bench, folder: folder, script: script)
        bed.removeStale()
        try bed.testbed(["up", bed.name, "2"])
        bed.isUp = true
        return bed
    }

    deinit { down() }

    func down() {
        guard isUp else { return }
        isUp = false
        _ = try? testbed(["down", name])
    }

    /// Runs the testbed script; its output goes to a log file (its daemons outlive it).
    @discardableResult
    func testbed(_ args: [String]) throws -> String {
        let log = folder + "/testbed-\(UUID().uuidString).out"
        FileManager.default.createFile(atPath: log, contents: nil)
        defer { unlink(log) }
        let status = try bench.run(["/bin/bash", script] + args, environment: ["TESTBED_STATE=" + folder + "/state"], output: log)
        let out = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        guard status == 0 else { throw BenchError("testbed.sh \(args.joined(separator: " ")): \(out)") }
        return out
    }

    /// Runs the hubsync CLI inside device `k`; its output.
    @discardableResult
    func hubsync(_ k: Int, _ args: [String]) throws -> String {
        try testbed(["exec", "\(name)-\(k)", hubsync] + args)
    }

    /// `hubsync status --json` inside device `k` (empty when it fails).
    func status(_ k: Int, data: String) -> [String: Value] {
        guard let out = try? hubsync(k, ["status", "--json", "--data", data]) else { return [:] }
        return (try? JSON.parse(Array(out.utf8)))?.objectValue ?? [:]
    }

    /// Starts `hubsync run` inside device `k`; returns its PID (nsenter execs into it).
    func startAgent(_ k: Int, data: String) throws -> pid_t {
        let holder = try String(contentsOfFile: folder + "/state/\(name)-\(k).pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return try bench.start(["/usr/bin/nsenter", "-t", holder, "-m", "-n", hubsync, "run", "--data", data,
                                "--listen", "0.0.0.0:0", "--api", "127.0.0.1:0", "--log-level", "warning"],
                               environment: [], output: data + ".log")
    }

    /// Stops an agent with SIGTERM and waits for it.
    static func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// Namespaces `hsb<PID>…` whose bench process is gone.
    private func removeStale() {
        let listed = folder + "/netns.out"
        defer { unlink(listed) }
        guard (try? bench.run(["/usr/sbin/ip", "netns", "list"], environment: [], output: listed)) == 0 else { return }
        let stale = Set(String(decoding: FileManager.default.contents(atPath: listed) ?? Data(), as: UTF8.self)
            .split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("hsb"), let x = line.firstIndex(of: "x"),
                      let pid = Int32(line[line.index(line.startIndex, offsetBy: 3)..<x]),
                      kill(pid, 0) != 0 && errno == ESRCH, let dash = line.firstIndex(of: "-") else { return nil }
                return String(line[..<dash])
            })
        for old in stale { _ = try? testbed(["down", old]) }
    }
}
