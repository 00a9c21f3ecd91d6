import Foundation
import HubSyncCore

extension Bench {
    /// From `hubsync pair join CODE` on a new device to the first record synced from the inviter.
    /// As root: two network namespaces with their own avahi-daemons (scripts/testbed.sh), and the
    /// join gets no address, so finding the inviter over mDNS is part of the time. Without root:
    /// two agents on loopback, the join given `--host`. A fresh joiner each run; median of runs.
    func pairFigures(runs: Int? = nil) throws -> [Row] {
        let script = FileManager.default.currentDirectoryPath + "/scripts/testbed.sh"
        let namespaces = getuid() == 0 && FileManager.default.isExecutableFile(atPath: script)
        let hubsync = URL(fileURLWithPath: options.hubsync).standardizedFileURL.path
        let dir = work + "/pair"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let state = dir + "/state"
        let bed = "hsb\(getpid())"
        /// The command prefix that runs a program on device 1 (inviter) or 2 (joiner).
        func on(_ device: Int) throws -> [String] {
            guard namespaces else { return [] }
            let holder = try String(contentsOfFile: state + "/\(bed)-\(device).pid", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return ["/usr/bin/nsenter", "-t", holder, "-m", "-n"]
        }
        /// Runs hubsync on a device; its exit status and output.
        func cli(_ device: Int, _ args: [String]) throws -> (status: Int32, out: String) {
            let log = dir + "/cli-\(UUID().uuidString).out"
            defer { try? FileManager.default.removeItem(atPath: log) }
            let status = try run(try on(device) + [hubsync] + args, environment: [], output: log)
            return (status, String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self))
        }
        func agent(_ device: Int, data: String) throws -> pid_t {
            try startAgent(try on(device) + [hubsync], data: data, listen: namespaces ? "0.0.0.0:0" : "127.0.0.1:0",
                           log: data + ".log").pid
        }
        func stop(_ pid: pid_t) {
            kill(pid, SIGTERM)
            var s: Int32 = 0
            waitpid(pid, &s, 0)
        }
        if namespaces {
            let status = try run(["/bin/bash", script, "up", bed, "2"], environment: ["TESTBED_STATE=" + state], output: dir + "/testbed.out")
            guard status == 0 else { throw BenchError("testbed.sh up failed; see \(dir)/testbed.out") }
        }
        defer {
            if namespaces { _ = try? run(["/bin/bash", script, "down", bed], environment: ["TESTBED_STATE=" + state], output: dir + "/testbed.out") }
        }
        let a = dir + "/inviter"
        guard try cli(1, ["init", "--data", a]).status == 0 else { throw BenchError("hubsync init failed for the inviter") }
        let agentA = try agent(1, data: a)
        defer { stop(agentA) }
        let listenA = (try? JSON.parse([UInt8](FileManager.default.contents(atPath: a + "/agent.json") ?? Data())))?
            .objectValue?["listen"]?.stringValue ?? ""

        var toRecord: [Double] = [], toJoined: [Double] = []
        for n in 0..<(runs ?? options.runs) {
            let b = dir + "/joiner\(n)"
            guard try cli(2, ["init", "--data", b]).status == 0 else { throw BenchError("hubsync init failed for a joiner") }
            let agentB = try agent(2, data: b)
            defer { stop(agentB) }
            let id = "pair-bench-\(n)"
            guard try cli(1, ["put", "memories", id, "--json", #"{"text": "synced to the new device"}"#, "--data", a]).status == 0 else {
                throw BenchError("hubsync put failed on the inviter")
            }
            let inviteOut = dir + "/invite\(n).out"
            let invite = try start(try on(1) + [hubsync, "pair", "invite", "--ttl", "1m", "--data", a], environment: [], output: inviteOut)
            defer { stop(invite) }
            var code = ""
            let shown = Date().addingTimeInterval(10)
            while code.isEmpty, Date() < shown {
                let text = String(decoding: FileManager.default.contents(atPath: inviteOut) ?? Data(), as: UTF8.self)
                if text.contains("\n") { code = String(text.prefix { $0 != "\n" }) } else { Thread.sleep(forTimeInterval: 0.01) }
            }
            guard !code.isEmpty else { throw BenchError("pair invite printed no code; see \(inviteOut)") }
            let started = Date()
            let join = try cli(2, ["pair", "join", code, "--data", b] + (namespaces ? [] : ["--host", listenA]))
            guard join.status == 0 else { throw BenchError("pair join failed: \(join.out)") }
            toJoined.append(Date().timeIntervalSince(started))
            var synced: Double?
            while Date().timeIntervalSince(started) < 20 {
                if try cli(2, ["get", "memories", id, "--data", b]).status == 0 { synced = Date().timeIntervalSince(started); break }
                Thread.sleep(forTimeInterval: 0.01)
            }
            guard let synced else { throw BenchError("the inviter's record never reached the joiner; see \(dir)") }
            toRecord.append(synced)
        }
        let how = namespaces ? "2 namespaces, inviter found by mDNS" : "loopback, --host given (not root: no namespaces)"
        return [
            Row(name: "pair join to first record synced (\(how))", value: "\(fmt(median(toRecord), 2)) s",
                rate: "join itself \(fmt(median(toJoined), 2)) s; max \(fmt(toRecord.max() ?? 0, 2)) s", goal: "≤ 2 s"),
        ]
    }

    /// Starts `hubsync run` (the command `hubsync` names, with any prefix) on `data`, listening on
    /// `listen`, its output appended to `log`; waits until agent.json names it. Its PID and the
    /// sync listener's address.
    func startAgent(_ hubsync: [String], data: String, listen: String, log: String) throws -> (pid: pid_t, listen: String) {
        let pid = try start(hubsync + ["run", "--data", data, "--listen", listen, "--api", "127.0.0.1:0"],
                            environment: [], output: log)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let d = FileManager.default.contents(atPath: data + "/agent.json"),
               let o = (try? JSON.parse([UInt8](d)))?.objectValue, o["pid"] == .int(Int64(pid)) {
                return (pid, o["listen"]?.stringValue ?? "")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw BenchError("the agent for \(data) did not start; see \(log)")
    }
}
