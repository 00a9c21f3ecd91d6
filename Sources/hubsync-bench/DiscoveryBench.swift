import Foundation
import HubSyncBase
import HubSyncCore

extension Bench {
    /// From agent start to connected with an already-trusted peer that only mDNS can point to
    /// (no static and no last-known address), in two network namespaces with their own
    /// avahi-daemons (scripts/testbed.sh). Needs root; otherwise a row says why it was skipped.
    func discoveryFigures(runs: Int? = nil) throws -> [Row] {
        let name = "start to connected, trusted peer found by mDNS"
        let dir = work + "/discovery"
        guard let bed = try BenchTestbed.make(bench: self, folder: dir) else {
            return [Row(name: name, value: "skipped", rate: "needs root and scripts/testbed.sh", goal: "≤ 3 s")]
        }
        defer { bed.down() }
        let (a, b) = (dir + "/a", dir + "/b")
        try bed.hubsync(1, ["init", "--data", a])
        try bed.hubsync(2, ["init", "--data", b])
        let idA = try bed.hubsync(1, ["id", "--data", a]).trimmingCharacters(in: .whitespacesAndNewlines)
        let idB = try bed.hubsync(2, ["id", "--data", b]).trimmingCharacters(in: .whitespacesAndNewlines)
        try bed.hubsync(1, ["peers", "add", idB, "--data", a])
        let agentA = try bed.startAgent(1, data: a)
        defer { BenchTestbed.stop(agentA) }

        var times: [Double] = []
        for _ in 0..<(runs ?? options.runs) {
            // Forget any address B learnt before: only mDNS can tell it where A is.
            _ = try? bed.hubsync(2, ["peers", "remove", idA, "--data", b])
            try bed.hubsync(2, ["peers", "add", idA, "--data", b])
            let start = Date()
            let agentB = try bed.startAgent(2, data: b)
            var connected: Double?
            while Date().timeIntervalSince(start) < 20 {
                if let peers = bed.status(2, data: b)["peers"]?.arrayValue,
                   peers.contains(where: { $0.objectValue?["connected"] == .bool(true) }) {
                    connected = Date().timeIntervalSince(start)
                    break
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            BenchTestbed.stop(agentB)
            guard let connected else { throw BenchError("B never connected to A over mDNS; see \(dir)") }
            times.append(connected)
        }
        return [Row(name: name, value: "\(fmt(median(times), 2)) s",
                    rate: "first \(fmt(times[0], 2)) s, max \(fmt(times.max() ?? 0, 2)) s", goal: "≤ 3 s")]
    }

    /// posix_spawn with stdin from /dev/null and stdout and stderr appended to `output`.
    func start(_ args: [String], environment: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let argv = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var env: [UnsafeMutablePointer<CChar>?] = []
        var p = environ
        while let e = p.pointee { env.append(strdup(e)); p += 1 }
        env += environment.map { strdup($0) } + [nil]
        defer { env.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, args[0], &actions, nil, argv, env)
        guard rc == 0 else { throw BenchError("cannot start \(args[0]): \(Errno.message(rc))") }
        return pid
    }

    /// Runs to completion (waitpid on exactly this child); its exit status.
    func run(_ args: [String], environment: [String], output: String) throws -> Int32 {
        let pid = try start(args, environment: environment, output: output)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
