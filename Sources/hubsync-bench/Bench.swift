import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// `hubsync-bench`: store and core figures on 100k memory records of about 1 KB, each a
/// median of several runs. Usage: hubsync-bench [--hubsync PATH] [--records N] [--runs N]
@main
struct Bench {
    static func main() throws {
        var args = CommandLine.arguments.dropFirst()
        var options = Options()
        func usage(_ message: String) -> Never {
            FileHandle.standardError.write(Data("hubsync-bench: \(message); see --help\n".utf8))
            exit(2)
        }
        /// The value after an option; a missing one is bad usage.
        func value(_ option: String) -> String {
            guard let v = args.popFirst(), !v.hasPrefix("--") else { usage("\(option) needs a value") }
            return v
        }
        /// A count after an option: a whole number from 1 to 10,000,000.
        func count(_ option: String, _ text: String) -> Int {
            guard let n = Int(text), (1...10_000_000).contains(n) else {
                usage("\(option) takes whole numbers from 1 to 10000000, not \"\(text)\"")
            }
            return n
        }
        while let a = args.popFirst() {
            switch a {
            case "--hubsync": options.hubsync = value(a)
            case "--records": options.records = count(a, value(a))
            case "--runs": options.runs = count(a, value(a))
            case "--changed": options.changed = count(a, value(a))
            case "--only": options.only = value(a)
            case "--skip-anchors": options.anchors = false
            case "--scripts": options.scripts = value(a)
            case "--plots": options.plots = value(a)
            case "--sizes": options.sizes = value(a).split(separator: ",", omittingEmptySubsequences: false).map { count(a, String($0)) }
            case "--million":
                // The million-record run: every figure that scales with the store, once each.
                options.records = 1_000_000
                options.runs = 1
                options.only = options.only ?? "import,open,sync,backup"
            case "--help", "-h":
                print("""
                    usage: hubsync-bench [--hubsync PATH] [--records N] [--runs N] [--only writes|merges|open|list|sync|idle|backup|s3|discovery|pair|hostile|migration|raw]
                                         [--skip-anchors] [--scripts DIR] [--plots DIR] [--sizes N,N,...] [--million] [--changed N]
                      --only NAMES    run only the figures whose name contains one of these (comma-separated)
                      --skip-anchors  do not run Syncthing or restic on the same data (a full sync takes Syncthing minutes)
                      --plots DIR     write the figures as DIR/results.json and draw PNG plots there
                      --sizes N,...   also time a full sync at each record count, HubSync and Syncthing (the plot's curve)
                      --million       1,000,000 records, one run: import, open, sync and backup figures with peak RSS
                      --changed N     records edited in the sync figure's change (default 1 % of --records)
                      --scripts DIR   where bench-syncthing.sh and bench-sqlite.py are (default: scripts)
                    """)
                return
            default:
                usage("unknown argument \(a)")
            }
        }
        do {
            try Bench(options: options).run()
        } catch {
            // A sentence and exit status 1, not a trap with a backtrace.
            FileHandle.standardError.write(Data("hubsync-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    struct Options {
        var hubsync = ".build/release/hubsync"
        var records = 100_000
        var runs = 5
        /// Records edited in one batch for the sync figure's change; nil: 1 % of the records.
        var changed: Int?
        /// Run only the figures whose name contains one of these comma-separated texts (the data
        /// set is always made).
        var only: String?
        /// Where to write results.json and the plots; nil: no plots.
        var plots: String?
        /// Record counts at which to time a full sync for the plot (with Syncthing as the anchor).
        var sizes: [Int] = []
        /// Measure the anchors (Syncthing) in the same run, on the same data.
        var anchors = true
        var scripts = "scripts"
    }

    let options: Options
    let work: String
    /// What the plots are drawn from (`--plots`).
    let results = BenchResults()

    init(options: Options) {
        self.options = options
        work = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-bench-\(getpid())").path
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        print("HubSync store and core benchmarks: \(options.records) memory records of about 1 KB, median of \(options.runs) runs; load average \(loadAverage())")
        print("")
        var rows: [Row] = []

        // The data directory every figure below uses, made through the CLI like a user would.
        let data = work + "/device"
        try runCLI(["init", "--data", data])
        let plain = work + "/memories.jsonl"
        try writePlainRecords(to: plain, count: options.records)
        let wanted = { (name: String) in options.only.map { $0.split(separator: ",").contains { name.contains($0) } } ?? true }
        if wanted("import") { rows.append(contentsOf: try importFigures(plainFile: plain, data: data)) } else { try runCLI(["import", plain, "--data", data]) }

        let identity = try Identity.load(from: URL(fileURLWithPath: data))
        results.set("records", .int(Int64(options.records)))
        results.set("load_average", .string(loadAverage()))
        if wanted("writes") {
            for spread in [false, true] {
                rows.append(try batchedWrites(storePath: data + "/store.sqlite", device: identity.deviceID, spread: spread))
            }
        }
        if wanted("merges") { rows.append(merges()) }
        if wanted("open") { rows.append(try openTime(storePath: data + "/store.sqlite", device: identity.deviceID)) }
        if wanted("list") { rows.append(contentsOf: try listRSS(data: data)) }
        if wanted("sync") { rows.append(contentsOf: try syncFigures(plainFile: plain)) }
        if wanted("idle") { rows.append(contentsOf: try idleFigures()) }
        if wanted("backup") { rows.append(contentsOf: try backupFigures(data: data, plainFile: plain)) }
        if wanted("s3") { rows.append(contentsOf: try s3Figures(data: data, plainFile: plain)) }
        if wanted("discovery") { rows.append(contentsOf: try discoveryFigures()) }
        if wanted("pair") { rows.append(contentsOf: try pairFigures()) }
        if wanted("hostile") { rows.append(contentsOf: try hostileFigures()) }
        if wanted("migration") { rows.append(contentsOf: try migrationFigures()) }
        if wanted("raw") {
            rows.append(blake2bThroughput())
            rows.append(try zstdThroughput(plainFile: plain))
            rows.append(try loopbackRoundTrip())
        }

        if !options.sizes.isEmpty { rows.append(contentsOf: try fullSyncSweep(sizes: options.sizes)) }
        if let dir = options.plots { try results.write(to: dir, scripts: options.scripts) }

        print("load average at the end: \(loadAverage())")
        let width = rows.map(\.name.count).max() ?? 40
        for r in rows {
            print(r.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + r.value.padding(toLength: 14, withPad: " ", startingAt: 0)
                + r.rate.padding(toLength: 42, withPad: " ", startingAt: 0) + "goal: " + r.goal)
        }
    }

    struct Row {
        var name: String
        var value: String
        var rate: String = ""
        var goal: String
    }

    // MARK: figures

    /// `hubsync import` of the plain-record file into a new data directory, `--runs` times (the
    /// first one's directory is `data`, which the other figures use), each run beside SQLite alone
    /// inserting the same rows (scripts/bench-sqlite.py), with the import's peak RSS.
    func importFigures(plainFile: String, data: String) throws -> [Row] {
        var times: [Double] = [], rss: [Double] = [], anchor: [Double] = []
        for run in 0..<max(1, options.runs) {
            let target = run == 0 ? data : work + "/import-\(run)"
            if run > 0 { try runCLI(["init", "--data", target]) }
            let (kb, t) = try measureCLIPeak(["import", plainFile, "--data", target])
            times.append(t)
            rss.append(Double(kb) / 1024)
            if run > 0 { try? FileManager.default.removeItem(atPath: target) }
            if let raw = try sqliteInsert(plainFile: plainFile) { anchor.append(raw.rowsPerSecond) }
        }
        let rate = Double(options.records) / median(times)
        var rows = [Row(name: "import \(options.records) plain records (hubsync import)",
                        value: "\(fmt(median(times), 2)) s",
                        rate: "\(Int(rate)) records/s, peak RSS \(fmt(median(rss), 0)) MB",
                        goal: "≥ 1/2 of SQLite alone")]
        if !anchor.isEmpty {
            rows.append(Row(name: "  raw: SQLite alone, the same rows (ID + JSON), 1 transaction, WAL, synchronous=NORMAL",
                            value: "\(Int(median(anchor)))/s", rate: "HubSync's import: \(fmt(rate / median(anchor), 2)) of it",
                            goal: "limit, no goal"))
        }
        return rows
    }

    /// Field writes in batches of 1,000 (one transaction each) on existing records: either runs of
    /// neighbouring records (a bulk edit), or records spread over the whole store.
    func batchedWrites(storePath: String, device: DeviceID, spread: Bool) throws -> Row {
        let store = try Store(path: storePath, device: device)
        let perRun = 20_000
        var rates: [Double] = []
        var cpuShare: [Double] = []
        for run in 0..<options.runs {
            let start = Date()
            let cpuStart = cpuSeconds()
            var i = 0
            while i < perRun {
                let ops: [RecordOperation] = (i..<min(i + 1000, perRun)).map { n in
                    let id = recordID(spread ? (n &* 7919 &+ run &* 13) % options.records : (n + run * perRun) % options.records)
                    return .put(RecordKey(collection: "memories", id: id), ["mood": .string("run \(run) write \(n)")])
                }
                try store.apply(ops)
                i += 1000
            }
            let wall = Date().timeIntervalSince(start)
            rates.append(Double(perRun) / wall)
            cpuShare.append((cpuSeconds() - cpuStart) / wall)
        }
        return Row(name: "batched field writes, 1,000 per transaction, " + (spread ? "spread over the store" : "neighbouring records"),
                   value: "\(Int(median(rates)))/s", rate: "(CPU \(Int(median(cpuShare) * 100))% of wall)",
                   goal: "≥ 50,000/s")
    }

    /// Merges of two replicas' states of a 1 KB record with a concurrent edit, in memory.
    func merges() -> Row {
        let a = DeviceID(words: (1, 2, 3, 4)), b = DeviceID(words: (5, 6, 7, 8))
        var base = RecordState(key: RecordKey(collection: "memories", id: "m"))
        let t0 = Timestamp(millis: 1_800_000_000_000, counter: 0)
        base.write(field: "text", value: .string(String(repeating: "lorem ipsum ", count: 80)), stamp: Stamp(time: t0, device: a))
        base.insert(["work", "tea"], into: "tags", stamp: Stamp(time: t0, device: a))
        base.write(field: "source", value: "chat", stamp: Stamp(time: t0, device: a))
        var left = base, right = base
        left.write(field: "text", value: "edited on a", stamp: Stamp(time: Timestamp(millis: 1_800_000_000_005, counter: 0), device: a))
        right.write(field: "text", value: "edited on b", stamp: Stamp(time: Timestamp(millis: 1_800_000_000_006, counter: 0), device: b))
        right.insert(["home"], into: "tags", stamp: Stamp(time: Timestamp(millis: 1_800_000_000_006, counter: 0), device: b))
        let n = 200_000
        var rates: [Double] = []
        var sink = 0
        for _ in 0..<options.runs {
            let start = Date()
            for i in 0..<n {
                let m = i & 1 == 0 ? RecordState.merge(left, right) : RecordState.merge(right, left)
                sink &+= m.fields.count
            }
            rates.append(Double(n) / Date().timeIntervalSince(start))
        }
        precondition(sink > 0)
        return Row(name: "in-memory merges (1 KB record, concurrent edit)", value: "\(Int(median(rates)))/s",
                   goal: "≥ 200,000/s")
    }

    /// Opening the store in a fresh process-like state: open, migrate check, first read.
    func openTime(storePath: String, device: DeviceID) throws -> Row {
        var times: [Double] = []
        for _ in 0..<options.runs {
            let start = Date()
            let store = try Store(path: storePath, device: device)
            _ = try store.get(RecordKey(collection: "memories", id: recordID(options.records / 2)))
            times.append(Date().timeIntervalSince(start))
        }
        let get = ["get", "memories", recordID(options.records / 2), "--data", work + "/device"]
        var cli: [Double] = []
        for _ in 0..<options.runs { cli.append(try timeCLI(get)) }
        // The peak apart from the timing: polling the child's /proc entry every 2 ms would take
        // from a process that lives some tens of milliseconds.
        var peaks: [Double] = []
        for _ in 0..<options.runs { peaks.append(Double(try measureCLIPeak(get).maxRSSKiB) / 1024) }
        return Row(name: "open the \(options.records)-record store and read a record",
                   value: "\(fmt(median(times) * 1000, 1)) ms",
                   rate: "(`hubsync get` \(fmt(median(cli) * 1000, 0)) ms, peak RSS \(fmt(median(peaks), 1)) MB)", goal: "< 200 ms")
    }

    /// Peak RSS of `hubsync list memories` (text and --json) over the whole store.
    func listRSS(data: String) throws -> [Row] {
        var rows: [Row] = []
        for extra in [[], ["--json"]] {
            var rss: [Double] = []
            var secs: [Double] = []
            for _ in 0..<options.runs {
                let (kb, t) = try measureCLIPeak(["list", "memories", "--data", data] + extra)
                rss.append(Double(kb) / 1024)
                secs.append(t)
            }
            rows.append(Row(name: "peak RSS of `hubsync list memories\(extra.isEmpty ? "" : " --json")`",
                            value: "\(fmt(median(rss), 1)) MB", rate: "(\(fmt(median(secs), 2)) s)", goal: "< 50 MB"))
        }
        return rows
    }

    // MARK: helpers

    /// The 1, 5 and 15 minute load averages, as `uptime` prints them: how busy the machine was.
    func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }

    func recordID(_ n: Int) -> String { "m" + String(format: "%06d", n) }

    func writePlainRecords(to path: String, count: Int) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        var rng = SplitMix(seed: 42)
        let words = ["tea", "persona", "likes", "morning", "project", "garden", "music", "travel", "remember",
                     "meeting", "family", "book", "quiet", "coffee", "walk", "idea", "code", "river", "light", "note"]
        var buffer = ""
        for i in 0..<count {
            var text = ""
            while text.utf8.count < 950 { text += words[Int(rng.next() % UInt64(words.count))] + " " }
            let line: Value = [
                "collection": "memories", "id": .string(recordID(i)),
                "fields": ["text": .string(text), "tags": [.string(words[i % words.count])], "source": "bench"],
            ]
            buffer += JSON.serialize(line) + "\n"
            if buffer.utf8.count > 1 << 20 { h.write(Data(buffer.utf8)); buffer = "" }
        }
        h.write(Data(buffer.utf8))
        try h.close()
    }

    @discardableResult
    func runCLI(_ args: [String]) throws -> Int32 {
        let status = try spawn(args)
        guard status == 0 else { throw BenchError("hubsync \(args.joined(separator: " ")) exited \(status)") }
        return status
    }

    /// Runs the CLI with output to /dev/null; returns its wall time (``measureCLIPeak(_:)`` also
    /// gives its peak RSS).
    func timeCLI(_ args: [String]) throws -> Double {
        let start = Date()
        let status = try spawn(args)
        guard status == 0 else { throw BenchError("hubsync \(args.joined(separator: " ")) exited \(status)") }
        return Date().timeIntervalSince(start)
    }

    /// posix_spawn + waitpid; the exit status. No peak RSS: rusage's ru_maxrss of a child spawned here starts from
    /// this process's own peak (the bench's hundreds of MB after making a large file); see
    /// ``spawnTool(_:_:env:)``.
    func spawn(_ args: [String]) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([options.hubsync] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, options.hubsync, &actions, nil, argv, environ)
        guard rc == 0 else { throw BenchError("cannot start \(options.hubsync): \(Errno.message(rc))") }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return exit
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// User plus system CPU time of this process so far.
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func fmt(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
