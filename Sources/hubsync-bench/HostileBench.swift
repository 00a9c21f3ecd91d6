import Foundation
import HubSyncCore

extension Bench {
    /// Issue 10's hostile-network figures, from the hostile-peer suite (Tests/hostile/hostile.py)
    /// against a release agent on loopback: 2,000 connections each sending 1 MiB − 1 byte before
    /// any handshake (agent RSS, local API answer time, a trusted peer's writes arriving), and
    /// 20,000 untrusted identities completing the handshake (RSS growth, refused devices listed).
    /// Each run with fresh agents; medians over runs (3 at most: the strangers take a while).
    func hostileFigures() throws -> [Row] {
        let suite = FileManager.default.currentDirectoryPath + "/Tests/hostile/hostile.py"
        guard FileManager.default.fileExists(atPath: suite) else {
            throw BenchError("\(suite) is missing; run hubsync-bench from the repository's root")
        }
        // 2,000 connections and their sockets: raise the soft limit on open files.
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < 8192 {
            limit.rlim_cur = min(limit.rlim_max, 8192)
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        let hubsync = URL(fileURLWithPath: options.hubsync).standardizedFileURL.path
        var peak: [Double] = [], apiMedian: [Double] = [], apiMax: [Double] = [], writeMax: [Double] = []
        var growth: [Double] = [], listed: [Double] = [], opened: [Double] = [], together: [Double] = []
        for run in 0..<min(options.runs, 3) {
            let dir = work + "/hostile-\(run)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            func agent(_ data: String) throws -> (pid: pid_t, listen: String) {
                guard try self.run([hubsync, "init", "--data", data], environment: [], output: data + ".log") == 0 else {
                    throw BenchError("hubsync init failed; see \(data).log")
                }
                return try startAgent([hubsync], data: data, listen: "127.0.0.1:0", log: data + "/agent.log")
            }
            func stop(_ pid: pid_t) {
                kill(pid, SIGTERM)
                var s: Int32 = 0
                waitpid(pid, &s, 0)
            }
            func id(_ data: String) throws -> String {
                let out = dir + "/id.out"
                defer { try? FileManager.default.removeItem(atPath: out) }
                _ = try self.run([hubsync, "id", "--data", data], environment: [], output: out)
                return String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let a = dir + "/attacked", b = dir + "/peer"
            try FileManager.default.createDirectory(atPath: a, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: b, withIntermediateDirectories: true)
            let agentA = try agent(a)
            defer { stop(agentA.pid) }
            let agentB = try agent(b)
            defer { stop(agentB.pid) }
            _ = try self.run([hubsync, "peers", "add", try id(b), "--address", agentB.listen, "--data", a], environment: [], output: dir + "/cli.log")
            _ = try self.run([hubsync, "peers", "add", try id(a), "--address", agentA.listen, "--data", b], environment: [], output: dir + "/cli.log")

            let flood = try suiteFigures(suite, ["preauth", "--data", a, "--peer-data", b, "--connections", "2000",
                                                 "--max-rss-mb", "150", "--max-api-ms", "100"], output: dir + "/preauth.out")
            peak.append(flood["rss_peak_mb"] ?? .nan)
            opened.append(flood["opened"] ?? .nan)
            together.append(flood["open_at_once_max"] ?? .nan)
            apiMedian.append(flood["api_median_ms"] ?? .nan)
            apiMax.append(flood["api_max_ms"] ?? .nan)
            writeMax.append(flood["peer_write_max_ms"] ?? .nan)
            let strangers = try suiteFigures(suite, ["strangers", "--data", a, "--identities", "20000",
                                                     "--log", a + "/agent.log"], output: dir + "/strangers.out")
            growth.append(strangers["rss_growth_mb"] ?? .nan)
            listed.append(strangers["status_refused"] ?? .nan)
        }
        let runs = "median of \(peak.count) runs"
        return [
            Row(name: "pre-handshake connections opened (all started at once)", value: "\(Int(opened.filter { !$0.isNaN }.min() ?? 0))",
                rate: "fewest of \(opened.count) runs; at most \(Int(together.filter { !$0.isNaN }.max() ?? 0)) open together", goal: "2,000"),
            Row(name: "2,000 pre-handshake connections of 1 MiB − 1: agent RSS peak", value: "\(fmt(median(peak), 1)) MB",
                rate: "max \(fmt(peak.max() ?? 0, 1)) MB, \(runs)", goal: "≤ 150 MB"),
            Row(name: "  meanwhile: local API answer time, worst", value: "\(fmt(median(apiMax), 1)) ms",
                rate: "median of the runs' worst; worst of all \(fmt(apiMax.max() ?? 0, 1)) ms; typical \(fmt(median(apiMedian), 1)) ms",
                goal: "≤ 100 ms"),
            Row(name: "  meanwhile: a trusted peer's write arrives", value: "\(fmt(median(writeMax), 0)) ms",
                rate: "worst of each run, median; worst \(fmt(writeMax.max() ?? 0, 0)) ms", goal: "≤ 1 s"),
            Row(name: "20,000 untrusted identities: agent RSS growth", value: "\(fmt(median(growth), 1)) MB",
                rate: runs, goal: "≤ 5 MB"),
            Row(name: "  refused devices listed in /v1/status", value: "\(Int(listed.max() ?? 0))", goal: "≤ 64"),
        ]
    }

    /// Runs one attack of the suite; the numbers of its `figures:` line. A failed check is
    /// reported (the figures still count), since a bench shows what is, pass or not.
    func suiteFigures(_ suite: String, _ args: [String], output: String) throws -> [String: Double] {
        let status = try run(["/usr/bin/python3", suite] + args, environment: [], output: output)
        let text = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
        if status != 0 { print("hostile.py \(args[0]) reported a failed check; see \(output):\n\(text)") }
        var figures: [String: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("figures:") {
            for pair in line.dropFirst(8).split(separator: " ") {
                let kv = pair.split(separator: "=")
                if kv.count == 2, let v = Double(kv[1].trimmingCharacters(in: .punctuationCharacters)) { figures[String(kv[0])] = v }
            }
        }
        return figures
    }
}
