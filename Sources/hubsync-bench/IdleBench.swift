import Foundation
import HubSyncCore

/// What one process spent over a window: CPU time and voluntary context switches (every thread).
struct ProcessUsage {
    var cpuSeconds: Double
    /// Voluntary context switches so far, by thread ID.
    var threadSwitches: [String: Int]
    /// `voluntary_ctxt_switches` of `/proc/PID/status` itself: the main thread's only.
    var mainThreadSwitches: Int
    /// Resident memory now (`VmRSS`), in MiB, and the part of it that is the process's own
    /// (`RssAnon`: not the program's and libraries' file pages, which every process running them shares).
    var rssMB: Double, anonMB: Double

    /// Voluntary context switches since `earlier`, of the threads alive now (a thread started
    /// since counts whole; one that ended since is not counted).
    func switches(since earlier: ProcessUsage) -> Int {
        threadSwitches.reduce(0) { $0 + $1.value - (earlier.threadSwitches[$1.key] ?? 0) }
    }

    /// Reads `/proc/PID/stat` (utime + stime) and the `voluntary_ctxt_switches` of every thread
    /// in `/proc/PID/task/*/status` (the process's own status counts its main thread only).
    static func of(_ pid: pid_t) -> ProcessUsage {
        let fields = ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").split(separator: ")").last?
            .split(separator: " ") ?? []
        var cpu = 0.0
        if fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) {
            cpu = (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        var switches: [String: Int] = [:], main = 0, rss = 0.0, anon = 0.0
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") {
            if line.hasPrefix("voluntary_ctxt_switches:") {
                main = Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            } else if line.hasPrefix("VmRSS:") {
                rss = (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
            } else if line.hasPrefix("RssAnon:") {
                anon = (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
            }
        }
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches:") {
                switches[task] = Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            }
        }
        return ProcessUsage(cpuSeconds: cpu, threadSwitches: switches, mainThreadSwitches: main, rssMB: rss, anonMB: anon)
    }
}

/// Two idle agents to measure: their PIDs, their sync traffic so far, and how mDNS stands.
struct IdlePair {
    var pids: [pid_t]
    var traffic: () -> Int64
    var mdns: String
    var stop: () -> Void
}

extension Bench {
    /// Two connected agents with nothing to do, discovery on: CPU % and voluntary context switches
    /// per minute of each, over 60 s, the median of `--runs` runs. An idle agent should sleep.
    /// As root the agents run in the testbed's namespaces, each with its own avahi-daemon, and
    /// find each other by mDNS alone; elsewhere on loopback with static addresses.
    func idleFigures() throws -> [Row] {
        let window = 60.0
        var cpu: [[Double]] = [[], []], switches: [[Double]] = [[], []], main: [[Double]] = [[], []], rss: [[Double]] = [[], []], anon: [[Double]] = [[], []]
        var traffic: [Double] = []
        var where_ = ""
        let bed = try BenchTestbed.make(bench: self, folder: work + "/idle")
        defer { bed?.down() }
        for run in 0..<max(1, options.runs) {
            let pair = try bed.map { try idlePairInTestbed($0, run: run) } ?? idlePairOnLoopback(run: run)
            defer { pair.stop() }
            where_ = bed == nil ? "loopback, no testbed (needs root): mDNS \(pair.mdns)" : "testbed namespaces, own avahi-daemons: mDNS \(pair.mdns)"
            // Let the connection's first repair round and the start-up settle.
            sleep(5)
            let bytes0 = pair.traffic()
            let u0 = pair.pids.map(ProcessUsage.of)
            let t0 = Date()
            sleep(UInt32(window))
            let u1 = pair.pids.map(ProcessUsage.of)
            let elapsed = Date().timeIntervalSince(t0)
            traffic.append(Double(pair.traffic() - bytes0))
            for i in 0..<2 {
                cpu[i].append((u1[i].cpuSeconds - u0[i].cpuSeconds) / elapsed * 100)
                switches[i].append(Double(u1[i].switches(since: u0[i])) / elapsed * 60)
                main[i].append(Double(u1[i].mainThreadSwitches - u0[i].mainThreadSwitches) / elapsed * 60)
                rss[i].append(u1[i].rssMB)
                anon[i].append(u1[i].anonMB)
            }
        }
        print("idle: \(where_)")
        let perRun = { (xs: [Double], d: Int) in xs.map { fmt($0, d) }.joined(separator: ", ") }
        let pairRow = { (name: String, xs: [[Double]], d: Int, suffix: String, goal: String) in
            Row(name: name, value: "A \(fmt(median(xs[0]), d))\(suffix)",
                rate: "B \(fmt(median(xs[1]), d))\(suffix)  (runs A \(perRun(xs[0], d)); B \(perRun(xs[1], d)))", goal: goal)
        }
        return [
            pairRow("idle, two connected agents, discovery on, \(Int(window)) s: CPU", cpu, 3, "%", "≤ 0.2% each"),
            pairRow("  voluntary context switches per minute, all threads", switches, 0, "", "≤ 60/min each"),
            pairRow("  the same, /proc/PID/status (main thread)", main, 0, "", "≤ 60/min each"),
            pairRow("  resident memory at the end of the window (VmRSS)", rss, 1, " MB", "≤ 30 MB each"),
            pairRow("    of it the agent's own (RssAnon; the rest is shared program pages)", anon, 1, " MB", "–"),
            Row(name: "  sync traffic while idle", value: "\(Int(median(traffic))) B", goal: "< 2 KB/min"),
        ]
    }

    /// Two agents in the testbed that trust each other with no address: only mDNS joins them.
    func idlePairInTestbed(_ bed: BenchTestbed, run: Int) throws -> IdlePair {
        let dirs = [bed.folder + "/a\(run)", bed.folder + "/b\(run)"]
        for (k, d) in dirs.enumerated() { try bed.hubsync(k + 1, ["init", "--data", d]) }
        let ids = try dirs.enumerated().map { k, d in try bed.hubsync(k + 1, ["id", "--data", d]).trimmingCharacters(in: .whitespacesAndNewlines) }
        try bed.hubsync(1, ["peers", "add", ids[1], "--data", dirs[0]])
        try bed.hubsync(2, ["peers", "add", ids[0], "--data", dirs[1]])
        var pids: [pid_t] = []
        let stop = { for pid in pids { BenchTestbed.stop(pid) } }
        do {
            pids.append(try bed.startAgent(1, data: dirs[0]))
            pids.append(try bed.startAgent(2, data: dirs[1]))
            let peer = { (k: Int) in bed.status(k, data: dirs[k - 1])["peers"]?.arrayValue?.first?.objectValue ?? [:] }
            let start = Date()
            while peer(1)["connected"] != .bool(true) || peer(2)["connected"] != .bool(true) {
                guard Date().timeIntervalSince(start) < 30 else { throw BenchError("the idle agents did not find each other by mDNS in 30 s") }
                usleep(200_000)
            }
            try bed.hubsync(1, ["put", "memories", "idle", "--json", #"{"text": "one record to sync"}"#, "--data", dirs[0]])
            while (try? bed.hubsync(2, ["get", "memories", "idle", "--data", dirs[1]])) == nil {
                guard Date().timeIntervalSince(start) < 30 else { throw BenchError("the record did not sync in 30 s") }
                usleep(100_000)
            }
            let mdns = bed.status(1, data: dirs[0])["mdns"]?.objectValue ?? [:]
            return IdlePair(pids: pids, traffic: {
                let p = peer(1)
                guard case .int(let s) = p["bytes_sent"] ?? .null, case .int(let r) = p["bytes_received"] ?? .null else { return 0 }
                return s + r
            }, mdns: (mdns["state"]?.stringValue ?? "?") + (mdns["reason"]?.stringValue.map { " (\($0))" } ?? ""), stop: stop)
        } catch {
            stop()
            throw error
        }
    }

    /// Two agents on loopback with each other's addresses (discovery on, but without a daemon).
    func idlePairOnLoopback(run: Int) throws -> IdlePair {
        let dirs = [work + "/idle-a\(run)", work + "/idle-b\(run)"]
        for d in dirs { _ = try runCLI(["init", "--data", d]) }
        let a = try BenchAgent(data: dirs[0], hubsync: options.hubsync)
        let b: BenchAgent
        do { b = try BenchAgent(data: dirs[1], hubsync: options.hubsync) } catch { a.stop(); throw error }
        let stop = { a.stop(); b.stop() }
        do {
            let aID = try cliOutput(["id", "--data", dirs[0]]), bID = try cliOutput(["id", "--data", dirs[1]])
            try runCLI(["peers", "add", aID, "--address", a.listen, "--data", dirs[1]])
            try runCLI(["peers", "add", bID, "--address", b.listen, "--data", dirs[0]])
            _ = try a.client.request("PATCH", "/v1/records/memories/idle", body: ["text": "one record to sync"])
            let start = Date()
            while b.memories() < 1 || a.peer()["connected"] != .bool(true) || b.peer()["connected"] != .bool(true) {
                guard Date().timeIntervalSince(start) < 30 else { throw BenchError("the idle agents did not connect in 30 s") }
                usleep(20_000)
            }
            var mdns = "?"
            if let (_, v) = try? a.client.request("GET", "/v1/status"), let m = v.objectValue?["mdns"]?.objectValue {
                mdns = (m["state"]?.stringValue ?? "?") + (m["reason"]?.stringValue.map { " (\($0))" } ?? "")
            }
            return IdlePair(pids: [a.pid, b.pid], traffic: { self.idleBytes(a) }, mdns: mdns, stop: stop)
        } catch {
            stop()
            throw error
        }
    }
}
