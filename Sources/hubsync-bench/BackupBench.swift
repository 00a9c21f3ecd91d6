import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// Backup figures beside restic's on the same data: the store's memory records for hubsync,
/// the same records as one JSON file each for restic (from Debian), each in a fresh repository
/// per run, medians of the runs.
extension Bench {
    struct Sample {
        var seconds: [Double] = []
        var rssMiB: [Double] = []
        var bytes: [Double] = []
        mutating func add(_ s: Double, _ kb: Int, bytes b: Int? = nil) {
            seconds.append(s)
            rssMiB.append(Double(kb) / 1024)
            if let b { bytes.append(Double(b)) }
        }
    }

    func backupFigures(data: String, plainFile: String) throws -> [Row] {
        let restic = !options.anchors ? nil : ["/usr/bin/restic", "/usr/local/bin/restic"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let identity = try Identity.load(from: URL(fileURLWithPath: data))
        let names = ["full backup", "1% changed, incremental", "no change, incremental", "verify --read-data", "full restore"]
        var ours = Array(repeating: Sample(), count: names.count)
        var theirs = Array(repeating: Sample(), count: names.count)
        var repoSize = (ours: [Double](), theirs: [Double]())

        // restic's input: one JSON file per record, the same content as the records' fields.
        let files = work + "/files"
        let lines = restic == nil ? [:] : try writeRecordFiles(plainFile, to: files, keeping: 0..<options.runs)

        for run in 0..<options.runs {
            // hubsync
            let repo = work + "/repo-\(run)"
            var (kb, t) = try measureCLIPeak(["backup", "now", "--repo", "local:" + repo, "--data", data])
            ours[0].add(t, kb)
            let size0 = directorySize(repo)
            repoSize.ours.append(Double(size0))
            try changeOnePercent(storePath: data + "/store.sqlite", device: identity.deviceID, run: run)
            (kb, t) = try measureCLIPeak(["backup", "now", "--repo", "local:" + repo, "--data", data])
            ours[1].add(t, kb, bytes: directorySize(repo) - size0)
            (kb, t) = try measureCLIPeak(["backup", "now", "--repo", "local:" + repo, "--data", data])
            ours[2].add(t, kb)
            (kb, t) = try measureCLIPeak(["backup", "verify", "--read-data", "--repo", "local:" + repo, "--data", data])
            ours[3].add(t, kb)
            (kb, t) = try measureCLIPeak(["backup", "restore", "latest", "--repo", "local:" + repo, "--data", data,
                                      "--into", work + "/restored-\(run)"])
            ours[4].add(t, kb)
            try? FileManager.default.removeItem(atPath: repo)
            try? FileManager.default.removeItem(atPath: work + "/restored-\(run)")

            // restic, same steps
            guard let restic else { continue }
            let rrepo = work + "/restic-\(run)"
            let env = ["RESTIC_PASSWORD=bench", "RESTIC_REPOSITORY=" + rrepo, "RESTIC_CACHE_DIR=" + work + "/restic-cache",
                       "HOME=" + work, "PATH=/usr/bin:/bin"]
            _ = try spawnTool(restic, ["init"], env: env)
            (kb, t) = try spawnTool(restic, ["backup", "--quiet", files], env: env)
            theirs[0].add(t, kb)
            let rsize0 = directorySize(rrepo)
            repoSize.theirs.append(Double(rsize0))
            for i in stride(from: run % 100, to: options.records, by: 100) {
                try writeRecordFile(files, i, lines[i]!.replacingOccurrences(of: "\"source\":\"bench\"",
                                                                            with: "\"source\":\"bench\",\"mood\":\"run \(run)\""))
            }
            (kb, t) = try spawnTool(restic, ["backup", "--quiet", files], env: env)
            theirs[1].add(t, kb, bytes: directorySize(rrepo) - rsize0)
            (kb, t) = try spawnTool(restic, ["backup", "--quiet", files], env: env)
            theirs[2].add(t, kb)
            (kb, t) = try spawnTool(restic, ["check", "--read-data"], env: env)
            theirs[3].add(t, kb)
            (kb, t) = try spawnTool(restic, ["restore", "latest", "--target", work + "/restic-restored-\(run)"], env: env)
            theirs[4].add(t, kb)
            try? FileManager.default.removeItem(atPath: rrepo)
            try? FileManager.default.removeItem(atPath: work + "/restic-restored-\(run)")
        }

        let goals = ["≤ restic", "≤ restic", "≤ 1 s", "≤ restic", "≤ restic"]
        func col(_ s: Sample, bytes: Bool) -> String {
            guard !s.seconds.isEmpty else { return "n/a" }
            var t = "\(fmt(median(s.seconds), 2)) s, \(fmt(median(s.rssMiB), 0)) MiB"
            if bytes, !s.bytes.isEmpty { t += ", +\(fmt(median(s.bytes) / 1e6, 2)) MB" }
            return t
        }
        var table: [(String, String, String, String)] = [("backup figure (time, peak RSS)", "hubsync", restic == nil ? (options.anchors ? "restic (not installed)" : "restic (skipped)") : "restic", "goal")]
        for (i, name) in names.enumerated() {
            table.append((name, col(ours[i], bytes: i == 1), col(theirs[i], bytes: i == 1), goals[i] + "; RSS ≤ 150 MB"))
            results.append("backup", ["name": .string(name), "hubsync_s": .double(median(ours[i].seconds)),
                                      "restic_s": theirs[i].seconds.isEmpty ? Value.null : Value.double(median(theirs[i].seconds)),
                                      "hubsync_rss_mb": .double(median(ours[i].rssMiB))])
        }
        table.append(("repository size after the full backup", "\(fmt(median(repoSize.ours) / 1e6, 1)) MB",
                      repoSize.theirs.isEmpty ? "n/a" : "\(fmt(median(repoSize.theirs) / 1e6, 1)) MB", "≤ restic"))
        print("Backup: \(options.records) memory records; restic gets them as \(options.records) JSON files; median of \(options.runs) runs")
        let w0 = table.map(\.0.count).max()!, w1 = table.map(\.1.count).max()!, w2 = table.map(\.2.count).max()!
        for r in table {
            print(r.0.padding(toLength: w0, withPad: " ", startingAt: 0) + "  " + r.1.padding(toLength: w1, withPad: " ", startingAt: 0)
                + "  " + r.2.padding(toLength: w2, withPad: " ", startingAt: 0) + "  " + r.3)
        }
        print("")
        return []
    }

    /// Changes 1% of the records, spread evenly over the store (a new field on every 100th).
    func changeOnePercent(storePath: String, device: DeviceID, run: Int) throws {
        let store = try Store(path: storePath, device: device)
        let ops: [RecordOperation] = stride(from: run % 100, to: options.records, by: 100).map {
            .put(RecordKey(collection: "memories", id: recordID($0)), ["mood": .string("run \(run)")])
        }
        for part in stride(from: 0, to: ops.count, by: 1000) { try store.apply(Array(ops[part..<min(part + 1000, ops.count)])) }
    }

    /// Writes each record of `plainFile` as a JSON file under `files` (restic's input); returns
    /// the lines of the records whose index modulo 100 is in `keeping` (the ones runs change),
    /// so this process stays small.
    func writeRecordFiles(_ plainFile: String, to files: String, keeping: Range<Int>) throws -> [Int: String] {
        var lines: [Int: String] = [:]
        var i = 0
        try forEachLine(of: plainFile) { line in
            try writeRecordFile(files, i, line)
            if keeping.contains(i % 100) { lines[i] = line }
            i += 1
        }
        return lines
    }

    func writeRecordFile(_ root: String, _ i: Int, _ content: String) throws {
        let dir = root + "/" + String(format: "%03d", i / 1000)
        if i % 1000 == 0 { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try content.write(toFile: dir + "/" + recordID(i) + ".json", atomically: false, encoding: .utf8)
    }

    /// Runs the CLI with output to /dev/null; returns its peak RSS (KiB, read as in
    /// ``spawnTool(_:_:env:)``) and wall time.
    func measureCLIPeak(_ args: [String]) throws -> (maxRSSKiB: Int, seconds: Double) {
        try spawnTool(options.hubsync, args, env: ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" })
    }

    /// Calls `body` with each line of a file, reading it in blocks.
    func forEachLine(of path: String, _ body: (String) throws -> Void) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { throw BenchError("cannot read \(path)") }
        defer { try? h.close() }
        var pending = Data()
        while true {
            let block = h.readData(ofLength: 1 << 20)
            if block.isEmpty { break }
            pending.append(block)
            while let nl = pending.firstIndex(of: 10) {
                try body(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...nl)
            }
        }
        if !pending.isEmpty { try body(String(decoding: pending, as: UTF8.self)) }
    }

    /// Runs a tool with standard output to /dev/null; returns its peak RSS (KiB) and wall time.
    /// Its standard error goes to a file whose end a failure quotes.
    ///
    /// The peak is the child's VmHWM, polled from /proc every 2 ms until it exits: rusage's
    /// ru_maxrss would start from this process's own peak, which a spawned child inherits.
    func spawnTool(_ exe: String, _ args: [String], env: [String]) throws -> (maxRSSKiB: Int, seconds: Double) {
        let errors = NSTemporaryDirectory() + "/hubsync-bench-tool-\(getpid()).err"
        defer { try? FileManager.default.removeItem(atPath: errors) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        // What the steps before left for the kernel to write back (restic's restore of 100,000
        // files before HubSync's next run) is written now, not while this tool is timed.
        sync()
        let start = Date()
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, envp)
        guard rc == 0 else { throw BenchError("cannot start \(exe): \(Errno.message(rc))") }
        var status: Int32 = 0
        var peak = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
               let kb = Int(line.split(separator: " ").dropFirst().first ?? "") {
                peak = max(peak, kb)
            }
            usleep(2000)
        }
        guard status == 0 else {
            let said = ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").suffix(2_000)
            throw BenchError("\(exe) \(args.joined(separator: " ")) failed (status \(status)): \(said)")
        }
        return (peak, Date().timeIntervalSince(start))
    }

    func directorySize(_ path: String) -> Int {
        var total = 0
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: path) else { return 0 }
        for case let f as String in e {
            if let a = try? fm.attributesOfItem(atPath: path + "/" + f), a[.type] as? FileAttributeType == .typeRegular {
                total += (a[.size] as? Int) ?? 0
            }
        }
        return total
    }
}
