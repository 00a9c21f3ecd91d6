import Foundation
import HubSyncBase
import HubSyncCore

extension Bench {
    /// From agent start to connected with an already-trusted peer that only mDNS can point to
    /// (no static and no last-known address), in two network namespaces with their own
    /// avahi-daemons (scripts/testbed.sh). Needs root; otherwise a row says why it was skipped.
    func discoveryFigures(runs: Int? = nil) throws -> [Row] {
        let name = "start to connected, trusted peer found by mDNS"
        let script = FileManager.default.currentDirectoryPath + "/scripts/testbed.sh"
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: script) else {
            return [Row(name: name, value: "skipped", rate: "needs root and scripts/testbed.sh", goal: "≤ 3 s")]
        }
        let bed = "hsb\(getpid())"
        let hubsync = URL(fileURLWithPath: options.hubsync).standardizedFileURL.path
        let dir = work + "/discovery"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        /// Runs the testbed script; its output goes to a log file (its daemons outlive it).
        @discardableResult
        func testbed(_ args: [String]) throws -> String {
            let log = dir + "/testbed-\(UUID().uuidString).out"
            FileManager.default.createFile(atPath: log, contents: nil)
            let status = try run(["/bin/bash", script] + args, environment: ["TESTBED_STATE=" + dir + "/state"], output: log)
            let out = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            guard status == 0 else { throw BenchError("testbed.sh \(args.joined(separator: " ")): \(out)") }
            return out
        }
        // A bench killed earlier left its namespaces (hsb<PID>-…, that PID gone): remove them.
        let listed = dir + "/netns.out"
        _ = try run(["/usr/sbin/ip", "netns", "list"], environment: [], output: listed)
        let stale = Set(String(decoding: FileManager.default.contents(atPath: listed) ?? Data(), as: UTF8.self)
            .split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("hsb"), let dash = line.firstIndex(of: "-"),
                      let pid = Int32(line[line.index(line.startIndex, offsetBy: 3)..<dash]),
                      kill(pid, 0) != 0 && errno == ESRCH else { return nil }
                return String(line[..<dash])
            })
        for old in stale { _ = try? testbed(["down", old]) }
        try testbed(["up", bed, "2"])
        defer { _ = try? testbed(["down", bed]) }
        let (a, b) = (dir + "/a", dir + "/b")
        try testbed(["exec", "\(bed)-1", hubsync, "init", "--data", a])
        try testbed(["exec", "\(bed)-2", hubsync, "init", "--data", b])
        let idA = try testbed(["exec", "\(bed)-1", hubsync, "id", "--data", a]).trimmingCharacters(in: .whitespacesAndNewlines)
        let idB = try testbed(["exec", "\(bed)-2", hubsync, "id", "--data", b]).trimmingCharacters(in: .whitespacesAndNewlines)
        try testbed(["exec", "\(bed)-1", hubsync, "peers", "add", idB, "--data", a])
        let agentA = try startAgent(script: script, device: "\(bed)-1", hubsync: hubsync, data: a, stateDir: dir + "/state")
        defer { kill(agentA, SIGTERM); var s: Int32 = 0; waitpid(agentA, &s, 0) }

        var times: [Double] = []
        for _ in 0..<(runs ?? options.runs) {
            // Forget any address B learnt before: only mDNS can tell it where A is.
            _ = try? testbed(["exec", "\(bed)-2", hubsync, "peers", "remove", idA, "--data", b])
            try testbed(["exec", "\(bed)-2", hubsync, "peers", "add", idA, "--data", b])
            let start = Date()
            let agentB = try startAgent(script: script, device: "\(bed)-2", hubsync: hubsync, data: b, stateDir: dir + "/state")
            var connected: Double?
            while Date().timeIntervalSince(start) < 20 {
                if let out = try? testbed(["exec", "\(bed)-2", hubsync, "status", "--json", "--data", b]),
                   let peers = (try? JSON.parse(out))?.objectValue?["peers"]?.arrayValue,
                   peers.contains(where: { $0.objectValue?["connected"] == .bool(true) }) {
                    connected = Date().timeIntervalSince(start)
                    break
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            kill(agentB, SIGTERM)
            var s: Int32 = 0
            waitpid(agentB, &s, 0)
            guard let connected else { throw BenchError("B never connected to A over mDNS; see \(dir)") }
            times.append(connected)
        }
        return [Row(name: name, value: "\(fmt(median(times), 2)) s",
                    rate: "first \(fmt(times[0], 2)) s, max \(fmt(times.max() ?? 0, 2)) s", goal: "≤ 3 s")]
    }

    /// Starts `hubsync run` inside a testbed device; returns its PID (nsenter execs into it).
    func startAgent(script: String, device: String, hubsync: String, data: String, stateDir: String) throws -> pid_t {
        let holder = try String(contentsOfFile: stateDir + "/\(device).pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return try start(["/usr/bin/nsenter", "-t", holder, "-m", "-n", hubsync, "run", "--data", data,
                          "--listen", "0.0.0.0:0", "--api", "127.0.0.1:0"], environment: [], output: data + ".log")
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
