import Foundation
import HubSyncCore

/// What one process spent over a window: CPU time and voluntary context switches (every thread).
struct ProcessUsage {
    var cpuSeconds: Double
    var voluntarySwitches: Int

    /// Reads `/proc/PID/stat` (utime + stime) and the `voluntary_ctxt_switches` of every thread
    /// in `/proc/PID/task/*/status` (the process's own status counts its main thread only).
    static func of(_ pid: pid_t) -> ProcessUsage {
        let fields = ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").split(separator: ")").last?
            .split(separator: " ") ?? []
        var cpu = 0.0
        if fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) {
            cpu = (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        var switches = 0
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches:") {
                switches += Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            }
        }
        return ProcessUsage(cpuSeconds: cpu, voluntarySwitches: switches)
    }
}

extension Bench {
    /// Two connected agents with nothing to do, discovery on: CPU % and voluntary context switches
    /// per minute of each, over 60 s, the median of `--runs` runs. An idle agent should sleep.
    func idleFigures() throws -> [Row] {
        let window = 60.0
        var cpu: [[Double]] = [[], []], switches: [[Double]] = [[], []], traffic: [Double] = []
        var mdnsState = "?"
        for run in 0..<max(1, options.runs) {
            let dirs = [work + "/idle-a\(run)", work + "/idle-b\(run)"]
            for d in dirs {
                _ = try runCLI(["init", "--data", d])
                // Discovery on: browse (and advertise when listening beyond loopback).
                try Data("{\"mdns\": true}\n".utf8).write(to: URL(fileURLWithPath: d + "/config.json"))
            }
            let a = try BenchAgent(data: dirs[0], hubsync: options.hubsync)
            defer { a.stop() }
            let b = try BenchAgent(data: dirs[1], hubsync: options.hubsync)
            defer { b.stop() }
            let aID = try cliOutput(["id", "--data", dirs[0]]), bID = try cliOutput(["id", "--data", dirs[1]])
            try runCLI(["peers", "add", aID, "--address", a.listen, "--data", dirs[1]])
            try runCLI(["peers", "add", bID, "--address", b.listen, "--data", dirs[0]])
            _ = try a.client.request("PATCH", "/v1/records/memories/idle", body: ["text": "one record to sync"])
            let start = Date()
            while b.memories() < 1 || a.peer()["connected"] != .bool(true) || b.peer()["connected"] != .bool(true) {
                guard Date().timeIntervalSince(start) < 30 else { throw BenchError("the idle agents did not connect in 30 s") }
                usleep(20_000)
            }
            if let (_, v) = try? a.client.request("GET", "/v1/status"), let m = v.objectValue?["mdns"]?.objectValue {
                mdnsState = (m["state"]?.stringValue ?? "?") + (m["reason"]?.stringValue.map { " (\($0))" } ?? "")
            }
            // Let the connection's first repair round and the start-up settle.
            sleep(5)
            let bytes0 = idleBytes(a)
            let u0 = [ProcessUsage.of(a.pid), ProcessUsage.of(b.pid)]
            let t0 = Date()
            sleep(UInt32(window))
            let u1 = [ProcessUsage.of(a.pid), ProcessUsage.of(b.pid)]
            let elapsed = Date().timeIntervalSince(t0)
            traffic.append(Double(idleBytes(a) - bytes0))
            for i in 0..<2 {
                cpu[i].append((u1[i].cpuSeconds - u0[i].cpuSeconds) / elapsed * 100)
                switches[i].append(Double(u1[i].voluntarySwitches - u0[i].voluntarySwitches) / elapsed * 60)
            }
            try runCLI(["peers", "remove", bID, "--data", dirs[0]])
        }
        let avahi = FileManager.default.fileExists(atPath: "/run/avahi-daemon/socket")
        let note = avahi ? "mDNS \(mdnsState)" : "no avahi-daemon runs here: mDNS \(mdnsState); measured anyway"
        print("idle: \(note)")
        let perRun = { (xs: [Double], d: Int) in xs.map { fmt($0, d) }.joined(separator: ", ") }
        return [
            Row(name: "idle, two connected agents, discovery on, \(Int(window)) s: CPU",
                value: "A \(fmt(median(cpu[0]), 3))%", rate: "B \(fmt(median(cpu[1]), 3))%  (runs A \(perRun(cpu[0], 3)); B \(perRun(cpu[1], 3)))",
                goal: "≤ 0.2% each"),
            Row(name: "  voluntary context switches per minute (all threads)",
                value: "A \(Int(median(switches[0]).rounded()))",
                rate: "B \(Int(median(switches[1]).rounded()))  (runs A \(perRun(switches[0], 0)); B \(perRun(switches[1], 0)))",
                goal: "≤ 60/min each"),
            Row(name: "  sync traffic while idle", value: "\(Int(median(traffic))) B", goal: "< 2 KB/min"),
        ]
    }
}
