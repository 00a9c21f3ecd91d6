import Foundation
import HubSyncBase
import HubSyncAgent
import HubSyncCore

/// A `hubsync run` process started by the bench, on free loopback ports.
final class BenchAgent {
    let data: String
    let hubsync: String
    var pid: pid_t = 0
    var client: LocalAPIClient!
    var listen = ""

    init(data: String, hubsync: String) throws {
        self.data = data
        self.hubsync = hubsync
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, data + ".log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let args = [hubsync, "run", "--data", data, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--log-level", "warning"]
        let argv = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        unlink(data + "/agent.json")
        guard posix_spawn(&pid, hubsync, &actions, nil, argv, environ) == 0 else { throw BenchError("cannot start the agent") }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let d = FileManager.default.contents(atPath: data + "/agent.json"), let o = (try? JSON.parse([UInt8](d)))?.objectValue,
               o["pid"] == .int(Int64(pid)) {
                listen = o["listen"]?.stringValue ?? ""
                client = LocalAPIClient.running(inDataDirectory: data)
                if client != nil { return }
            }
            usleep(10_000)
        }
        stop() // never leave an agent behind
        throw BenchError("the agent on \(data) did not start, or its API was not found; see \(data).log")
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// Peak resident memory of the agent so far, in MiB (VmHWM).
    var peakRSS: Double {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
    }

    /// CPU seconds used so far (user + system).
    var cpuSeconds: Double {
        let fields = ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").split(separator: ")").last?
            .split(separator: " ") ?? []
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func memories() -> Int {
        guard let (_, v) = try? client.request("GET", "/v1/status"),
              case .int(let n) = v.objectValue?["store"]?.objectValue?["records"]?.objectValue?["memories"] ?? .null else { return 0 }
        return Int(n)
    }

    func peer() -> [String: Value] {
        guard let (_, v) = try? client.request("GET", "/v1/status") else { return [:] }
        return v.objectValue?["peers"]?.arrayValue?.first?.objectValue ?? [:]
    }
}

/// Follows an agent's change feed on a thread, noting when each record ID arrives.
final class FeedWatcher: @unchecked Sendable { // state guarded by `condition`
    let condition = NSCondition()
    var arrivals: [String: Date] = [:]
    /// Set when the feed's connection ended (the agent closed it).
    var ended = false
    let fd: Int32

    init(port: UInt16, token: String) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let request = "GET /v1/changes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n"
        _ = request.withCString { write(fd, $0, strlen($0)) }
        let thread = Thread { [self] in readLoop() }
        thread.start()
    }

    func readLoop() {
        // Lines are found in the bytes (a String's range(of:) through Foundation made this
        // thread, not the agent, the slower end of a large change).
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        let prefix = Array("data: ".utf8)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 {
                condition.lock()
                ended = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let now = Date()
            pending += buf[0..<n]
            var ids: [String] = []
            var start = 0
            while let end = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[start..<end]
                start = end + 1
                guard line.starts(with: prefix),
                      let v = try? JSON.parse(String(decoding: line.dropFirst(prefix.count), as: UTF8.self)),
                      let id = v.objectValue?["record"]?.objectValue?["id"]?.stringValue else { continue }
                ids.append(id)
            }
            pending.removeFirst(start)
            if !ids.isEmpty {
                condition.lock()
                for id in ids { arrivals[id] = now }
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    /// Waits until every ID has arrived; returns the latest arrival, or nil after `timeout` or
    /// once the feed has ended.
    func waitFor(_ ids: Set<String>, timeout: TimeInterval) -> Date? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !ids.allSatisfy({ arrivals[$0] != nil }) {
            if ended || !condition.wait(until: deadline) { return nil }
        }
        return ids.compactMap { arrivals[$0] }.max()
    }

    /// Forgets the arrivals of `ids`, before writing them again.
    func forget(_ ids: [String]) {
        condition.lock()
        for id in ids { arrivals[id] = nil }
        condition.unlock()
    }

    /// Why a wait for `ids` failed: the feed ended, or how many arrived.
    func shortfall(_ ids: Set<String>) -> String {
        condition.lock()
        defer { condition.unlock() }
        return ended ? "B's change feed ended" : "\(ids.filter { arrivals[$0] != nil }.count) of \(ids.count) arrived"
    }

    func close() { shutdown(fd, Int32(SHUT_RDWR)); Foundation.close(fd) }
}

extension Bench {
    /// Live-sync figures between two agents on loopback.
    func syncFigures(plainFile: String) throws -> [Row] {
        var rows: [Row] = []
        let a = work + "/sync-a"
        try runCLI(["init", "--data", a])
        try runCLI(["import", plainFile, "--data", a])
        let aID = try cliOutput(["id", "--data", a])

        // Full sync of every record into an empty peer, several runs.
        var times: [Double] = [], rssA: [Double] = [], rssB: [Double] = [], roundA: [Double] = [], roundB: [Double] = []
        let runs = max(1, min(options.runs, 3))
        for run in 0..<runs {
            let b = work + "/sync-b\(run)"
            let (agentA, agentB, bID, seconds) = try fullSync(from: a, aID: aID, into: b, records: options.records)
            times.append(seconds)
            rssA.append(agentA.peakRSS)
            rssB.append(agentB.peakRSS)
            // The connection's first repair round follows the fast paths: each side loads the
            // set of every record's key and digest. Its peaks are the sync's too.
            let start = Date()
            while agentB.peer()["last_repair_round"]?.objectValue == nil {
                guard Date().timeIntervalSince(start) < 300 else { throw BenchError("no repair round after the full sync in 5 minutes") }
                usleep(20_000)
            }
            roundA.append(agentA.peakRSS)
            roundB.append(agentB.peakRSS)
            if run == runs - 1 {
                rows.append(contentsOf: try liveFigures(agentA, agentB))
                agentA.stop()
                agentB.stop()
                rows.append(contentsOf: try repairFigures(a: a, b: b, aID: aID))
            } else {
                try runCLI(["peers", "remove", bID, "--data", a])
                agentA.stop()
                agentB.stop()
                try? FileManager.default.removeItem(atPath: b)
            }
        }
        rows.insert(Row(name: "full sync of \(options.records) records into an empty peer",
                        value: "\(fmt(median(times), 2)) s", rate: "(peak RSS A \(fmt(median(rssA), 0)) MB, B \(fmt(median(rssB), 0)) MB)",
                        goal: "≤ 2 s at 100k, RSS ≤ 80 MB"), at: 0)
        rows.insert(Row(name: "  peak RSS through the first repair round after it",
                        value: "A \(fmt(median(roundA), 0)) MB", rate: "B \(fmt(median(roundB), 0)) MB",
                        goal: "≤ 80 MB at 100k, ≤ 150 MB at 1M"), at: 1)
        var anchor: Double?
        var gaveUp: [String: Value] = [:]
        if options.anchors {
            let (row, seconds, changes, stopped) = try syncthingFullSync(plainFile: plainFile, records: options.records)
            rows.insert(row, at: 1)
            anchor = seconds
            gaveUp = stopped
            // Each change figure beside HubSync's.
            for (prefix, anchorRow) in changes.reversed() {
                if let i = rows.firstIndex(where: { $0.name.hasPrefix(prefix) }) { rows.insert(anchorRow, at: i + 1) } else { rows.append(anchorRow) }
            }
        }
        results.append("full_sync", .object(gaveUp.merging(["records": .int(Int64(options.records)), "hubsync_s": .double(median(times)),
                                                            "syncthing_s": anchor.map { Value.double($0) } ?? Value.null,
                                                            "rss_a_mb": .double(median(rssA)), "rss_b_mb": .double(median(rssB)),
                                                            "rss_a_round_mb": .double(median(roundA)), "rss_b_round_mb": .double(median(roundB))]) { _, b in b }))
        return rows
    }

    /// Starts agents on `a` (holding the records) and on a new data directory `b`, makes them
    /// peers and waits until `b` holds `records` memories; returns both agents (running), b's
    /// device ID and the seconds from the second `peers add` to the last record.
    func fullSync(from a: String, aID: String, into b: String, records: Int) throws -> (BenchAgent, BenchAgent, String, Double) {
        try runCLI(["init", "--data", b])
        let agentA = try BenchAgent(data: a, hubsync: options.hubsync)
        let agentB: BenchAgent
        do { agentB = try BenchAgent(data: b, hubsync: options.hubsync) } catch { agentA.stop(); throw error }
        do {
            let bID = try cliOutput(["id", "--data", b])
            try runCLI(["peers", "add", aID, "--address", agentA.listen, "--data", b])
            let start = Date()
            try runCLI(["peers", "add", bID, "--address", agentB.listen, "--data", a])
            // Polled every 20 ms through B's status, which counts B's records.
            while agentB.memories() < records {
                guard Date().timeIntervalSince(start) < 1800 else { throw BenchError("full sync did not finish in 30 minutes") }
                usleep(20_000)
            }
            return (agentA, agentB, bID, Date().timeIntervalSince(start))
        } catch {
            agentA.stop()
            agentB.stop()
            throw error
        }
    }

    /// Full-sync time into an empty peer at each record count (median of up to 3 runs), beside
    /// Syncthing's on the same records (one run), for the plot of time against N.
    func fullSyncSweep(sizes: [Int]) throws -> [Row] {
        var rows: [Row] = []
        for n in sizes {
            let plain = work + "/sweep-\(n).jsonl", a = work + "/sweep-a\(n)"
            try writePlainRecords(to: plain, count: n)
            try runCLI(["init", "--data", a])
            try runCLI(["import", plain, "--data", a])
            let aID = try cliOutput(["id", "--data", a])
            var times: [Double] = []
            for run in 0..<max(1, min(options.runs, 3)) {
                let b = work + "/sweep-b\(n)-\(run)"
                let (agentA, agentB, bID, seconds) = try fullSync(from: a, aID: aID, into: b, records: n)
                times.append(seconds)
                try runCLI(["peers", "remove", bID, "--data", a])
                agentA.stop()
                agentB.stop()
                try? FileManager.default.removeItem(atPath: b)
            }
            rows.append(Row(name: "full sync of \(n) records into an empty peer (sweep)", value: "\(fmt(median(times), 2)) s",
                            goal: "the plot's curve"))
            var anchor: Double?
            var gaveUp: [String: Value] = [:]
            if options.anchors {
                let (row, seconds, _, stopped) = try syncthingFullSync(plainFile: plain, records: n)
                rows.append(row)
                anchor = seconds
                gaveUp = stopped
            }
            results.append("full_sync", .object(gaveUp.merging(["records": .int(Int64(n)), "hubsync_s": .double(median(times)),
                                                                "syncthing_s": anchor.map { Value.double($0) } ?? Value.null]) { _, b in b }))
            try? FileManager.default.removeItem(atPath: a)
            try? FileManager.default.removeItem(atPath: plain)
        }
        return rows
    }

    /// The anchor: Syncthing between two instances on loopback, the same records as one JSON
    /// file each, into an empty folder (one run: it takes minutes).
    ///
    /// Returns the full-sync row and seconds (nil when it gave up), the change figures as rows
    /// each to print after the HubSync row whose name starts with the given text, and, when it
    /// gave up, the time it gave up after and the files it had synced by then (for results.json:
    /// the plot draws them as a lower bound).
    func syncthingFullSync(plainFile: String, records: Int) throws -> (Row, Double?, [(String, Row)], [String: Value]) {
        let files = work + "/syncthing-files"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: files) }
        let text = try String(contentsOfFile: plainFile, encoding: .utf8)
        for (i, line) in text.split(separator: "\n").enumerated() {
            FileManager.default.createFile(atPath: files + String(format: "/mem-%06d.json", i), contents: Data((line + "\n").utf8))
        }
        let output = try shellOutput(["bash", options.scripts + "/bench-syncthing.sh", files, work + "/syncthing"])
        guard let o = (try? JSON.parse(output))?.objectValue, let seconds = o["seconds"]?.number else {
            throw BenchError("bench-syncthing.sh printed no figures: \(output)")
        }
        let version = (try? shellOutput(["syncthing", "--version"]))?.split(separator: " ").dropFirst().first ?? "?"
        if o["timed_out"] == .bool(true) {
            return (Row(name: "  anchor: Syncthing \(version), the same records as \(records) files (1 run)",
                        value: "> \(fmt(seconds, 0)) s",
                       rate: "(gave up: \(o["synced"]?.number.map { fmt($0, 0) } ?? "?") of \(records) files synced)",
                        goal: "HubSync well below"), nil, [],
                    ["syncthing_gave_up_s": .double(seconds), "syncthing_synced": o["synced"] ?? .null])
        }
        var changes: [(String, Row)] = []
        if let pct = o["change_1pct_s"]?.number {
            changes.append(("propagation", Row(name: "  anchor: Syncthing, one file changed, scan asked at once, until the peer has it",
                                               value: "p50 \(fmt(median((o["single_change_s"]?.arrayValue ?? []).compactMap(\.number)) * 1000, 0)) ms",
                                               rate: "(\(o["single_change_s"]?.arrayValue?.count ?? 0) changes)", goal: "HubSync well below")))
            changes.append(("a 1% change", Row(name: "  anchor: Syncthing, 1% of the files changed, scan asked at once",
                                               value: "\(fmt(pct, 3)) s", goal: "HubSync well below")))
            results.append("syncthing_changes", ["records": .int(Int64(records)), "change_1pct_s": .double(pct),
                                                 "single_change_s": o["single_change_s"] ?? .null])
        }
        return (Row(name: "  anchor: Syncthing \(version), the same records as \(records) files (1 run)",
                   value: "\(fmt(seconds, 1)) s",
                   rate: "(peak RSS A \(o["rss_a_mb"]?.number.map { fmt($0, 0) } ?? "?") MB, B \(o["rss_b_mb"]?.number.map { fmt($0, 0) } ?? "?") MB)",
                   goal: "HubSync well below"), seconds, changes, [:])
    }

    /// Repair with real agents: records removed from B's store behind its back (no change-log
    /// trace, so only reconciliation finds them), then both agents restarted; B's status reports
    /// the round it ran on connecting.
    func repairFigures(a: String, b: String, aID: String) throws -> [Row] {
        var rows: [Row] = []
        var rng = SplitMix(seed: 7)
        for lost in [0, 10, 1000] {
            var trips: [Double] = [], bytes: [Double] = []
            for _ in 0..<max(1, min(options.runs, 3)) {
                var ids = Set<String>()
                while ids.count < lost { ids.insert(recordID(Int(rng.next() % UInt64(options.records)))) }
                if !ids.isEmpty {
                    let list = ids.map { "'\($0)'" }.joined(separator: ",")
                    _ = try shellOutput(["sqlite3", b + "/store.sqlite", "DELETE FROM records WHERE collection = 'memories' AND id IN (\(list))"])
                }
                let agentA = try BenchAgent(data: a, hubsync: options.hubsync)
                defer { agentA.stop() }
                try runCLI(["peers", "add", aID, "--address", agentA.listen, "--data", b])
                let agentB = try BenchAgent(data: b, hubsync: options.hubsync)
                defer { agentB.stop() }
                let start = Date()
                var round: [String: Value] = [:]
                while true {
                    round = agentB.peer()["last_repair_round"]?.objectValue ?? [:]
                    if round["records_received"] == .int(Int64(lost)) { break }
                    guard Date().timeIntervalSince(start) < 120 else { throw BenchError("no repair round with \(lost) records in 2 minutes: \(round)") }
                    usleep(20_000)
                }
                guard case .int(let t) = round["round_trips"] ?? .null, case .int(let s) = round["bytes_sent"] ?? .null,
                      case .int(let r) = round["bytes_received"] ?? .null else { throw BenchError("repair round without figures: \(round)") }
                trips.append(Double(t))
                bytes.append(Double(s + r))
            }
            let (name, goal) = lost == 0 ? ("already in sync", "1 round trip, ≤ 512 B")
                : lost == 10 ? ("10 random differences", "≤ 3 round trips, ≤ 16 KB") : ("1,000 random differences", "≤ 3 round trips, ≤ 1 MB")
            rows.append(Row(name: "repair at \(options.records / 1000)k, \(name), real agents",
                            value: "\(fmt(median(trips), 0)) RT", rate: "\(Int(median(bytes))) B both ways (reconcile frames)", goal: goal))
        }
        return rows
    }

    /// Runs a program (found on PATH) and returns its standard output; fails on a non-zero exit.
    func shellOutput(_ args: [String]) throws -> String {
        let (text, status) = try output(of: "/usr/bin/env", args)
        guard status == 0 else { throw BenchError("\(args.joined(separator: " ")) exited \(status)") }
        return text
    }

    /// Runs `executable` with `args` to its end; returns its standard output and exit status.
    func output(of executable: String, _ args: [String]) throws -> (text: String, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (String(decoding: data, as: UTF8.self), p.terminationStatus)
    }

    /// Propagation, a 1% change and idle cost, between two connected agents holding the data set.
    func liveFigures(_ a: BenchAgent, _ b: BenchAgent) throws -> [Row] {
        var rows: [Row] = []
        let feed = FeedWatcher(port: b.client.port, token: b.client.token)
        defer { feed.close() }
        usleep(200_000)
        // Propagation: one write at a time through A's API until B's change feed shows it.
        var latencies: [Double] = []
        for i in 0..<1000 {
            let id = "prop-\(i)"
            let start = Date()
            _ = try a.client.request("PATCH", "/v1/records/memories/\(id)", body: ["text": .string("propagation \(i)")])
            guard let arrived = feed.waitFor([id], timeout: 10) else { throw BenchError("\(id) did not reach B: \(feed.shortfall([id]))") }
            latencies.append(arrived.timeIntervalSince(start) * 1000)
        }
        results.set("propagation_ms", .array(latencies.map { Value.double($0) }))
        latencies.sort()
        rows.append(Row(name: "propagation A API → B change feed (1,000 writes)",
                        value: "p50 \(fmt(latencies[499], 2)) ms", rate: "p99 \(fmt(latencies[989], 2)) ms",
                        goal: "p50 ≤ 5 ms, p99 ≤ 25 ms"))
        // A 1% change: 1 % of the records (1,000 at 100k, 10,000 at 1M), spread over the store,
        // edited on A in one batch.
        let changed = min(options.changed ?? max(1, options.records / 100), options.records)
        var changeTimes: [Double] = [], answerTimes: [Double] = []
        for run in 0..<max(1, options.runs) {
            let ids = (0..<changed).map { recordID(($0 * (options.records / changed) + run) % options.records) }
            let ops: [Value] = ids.map { ["op": "put", "collection": "memories", "id": .string($0), "fields": ["mood": .string("run \(run)")]] }
            // Forgotten before the write: B may show some of them before A's answer comes back.
            feed.forget(ids)
            let start = Date()
            let (status, _) = try a.client.request("POST", "/v1/batch", body: ["operations": .array(ops)])
            guard status == 200 else { throw BenchError("batch failed: HTTP \(status)") }
            answerTimes.append(Date().timeIntervalSince(start))
            let expected = Set(ids)
            guard let done = feed.waitFor(expected, timeout: 30) else {
                throw BenchError("the 1% change did not reach B in 30 s: \(feed.shortfall(expected))")
            }
            changeTimes.append(done.timeIntervalSince(start))
        }
        rows.append(Row(name: "\(options.changed == nil ? "a 1% change" : "a change") (\(changed) records edited on A) visible on B",
                        value: "\(fmt(median(changeTimes), 3)) s", rate: "A's batch answered in \(fmt(median(answerTimes), 3)) s",
                        goal: options.changed == nil ? "≤ 0.5 s; ≤ 1.5 s at 1M" : "–"))
        // Idle cost: see idleFigures (`--only idle`). Here, what the two hold once the work is done.
        let now = [a.pid, b.pid].map { ProcessUsage.of($0) }
        rows.append(Row(name: "resident memory now, the two agents holding \(options.records) records (VmRSS)",
                        value: "A \(fmt(now[0].rssMB, 1)) MB", rate: "B \(fmt(now[1].rssMB, 1)) MB  (own, RssAnon: A \(fmt(now[0].anonMB, 1)), "
                            + "B \(fmt(now[1].anonMB, 1)) MB)", goal: "–"))
        return rows
    }

    func idleBytes(_ agent: BenchAgent) -> Int64 {
        let p = agent.peer()
        guard case .int(let s) = p["bytes_sent"] ?? .null, case .int(let r) = p["bytes_received"] ?? .null else { return 0 }
        return s + r
    }

    /// Runs the hubsync CLI and returns its standard output, trimmed, whatever its exit status.
    func cliOutput(_ args: [String]) throws -> String {
        try output(of: options.hubsync, args).text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Value {
    /// A JSON number as a Double (integers too).
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
}
