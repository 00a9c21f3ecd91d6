import Foundation
import HubSyncCore
import Testing

/// `hubsync backup` against a real SeaweedFS on loopback (started by each test, its own ports and
/// folder), through real CLI processes; boto3 is the independent client that looks at what was
/// stored.
@Suite(.timeLimit(.minutes(10))) struct S3BackupTests {
    let dir = TemporaryDirectory()

    /// Runs hubsync with the S3 credentials in `environment` (none from the machine's own).
    func run(_ d: Device, _ args: [String], environment extra: [String: String]) async throws -> RunResult {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
        environment.removeValue(forKey: "HUBSYNC_DATA")
        environment["HOME"] = dir.path // no ~/.aws/credentials of the machine's
        environment.merge(extra) { $1 }
        return try await runProgram(hubsyncPath, args + ["--data", d.data], environment: environment, timeout: 240)
    }

    @discardableResult
    func ok(_ d: Device, _ args: String..., fs: SeaweedFS, sourceLocation: SourceLocation = #_sourceLocation) async throws -> RunResult {
        let r = try await run(d, args, environment: fs.credentials)
        #expect(r.status == 0, "hubsync \(args.joined(separator: " ")) failed: \(r.stderr)", sourceLocation: sourceLocation)
        return r
    }

    /// Memory records `m00000`…, about 1 KB each, each text with a marker a plaintext search finds.
    func recordsFile(_ name: String, ids: some Sequence<Int>, marker: String = "plaintext-marker") throws -> String {
        let path = "\(dir.path)/\(name).jsonl"
        let words = ["tea", "garden", "music", "river", "quiet", "coffee", "idea", "book", "walk", "light"]
        var out = ""
        for i in ids {
            var text = "\(marker) \(i) "
            var k = UInt64(i) &* 0x9E37_79B9_7F4A_7C15
            while text.utf8.count < 950 { text += words[Int(k >> 33) % words.count] + " "; k = k &* 6364136223846793005 &+ 1442695040888963407 }
            out += #"{"collection":"memories","id":"m\#(String(format: "%05d", i))","fields":{"text":"\#(text)"}}"# + "\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func exportedRecords(_ d: Device, _ fs: SeaweedFS) async throws -> [String] {
        recordLines(ofExport: try await ok(d, "export", "-", fs: fs).stdout)
    }

    /// A device with `count` records.
    func device(_ name: String, records count: Int, fs: SeaweedFS) async throws -> Device {
        let d = Device(data: dir.path + "/" + name)
        try await ok(d, "init", fs: fs)
        try await ok(d, "import", try recordsFile(name, ids: 0..<count), fs: fs)
        return d
    }

    /// The keys under `prefix` in a bucket, through boto3.
    func keys(_ fs: SeaweedFS, _ bucket: String, prefix: String = "") async throws -> [String] {
        let out = try await fs.boto3(bucket, """
            keys = []
            for page in s3.get_paginator('list_objects_v2').paginate(Bucket=B, Prefix=\(pythonString(prefix))):
                keys += [o['Key'] for o in page.get('Contents', [])]
            print(json.dumps(keys))
            """)
        return (try JSON.parse(out).arrayValue ?? []).compactMap(\.stringValue)
    }

    func bucketExists(_ fs: SeaweedFS, _ bucket: String) async throws -> Bool {
        try await fs.boto3(bucket, """
            try:
                s3.head_bucket(Bucket=B); print('yes')
            except s3.exceptions.ClientError:
                print('no')
            """).hasPrefix("yes")
    }

    func pythonString(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "\\'") + "'" }

    @Test func everyBackupCommandAgainstSeaweedFS() async throws {
        let fs = try await SeaweedFS.start()
        let d = try await device("d", records: 3_000, fs: fs)
        let repo = "s3:\(fs.endpoint)/hub-backups/home"

        // A missing bucket: a clear refusal without --create-bucket in a run without a terminal.
        let missing = try await run(d, ["backup", "now", "--repo", repo], environment: fs.credentials)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("bucket hub-backups does not exist") && missing.stderr.contains("--create-bucket"))
        // Where there is no repository, a command that reads one says so as bad input (exit 2).
        let listed = try await run(d, ["backup", "list", "--repo", repo], environment: fs.credentials)
        #expect(listed.status == 2 && listed.stderr.contains("bucket hub-backups does not exist"), "\(listed.status) \(listed.stderr)")
        let refused = try await run(d, ["backup", "init", "--repo", repo], environment: fs.credentials)
        #expect(refused.status == 1 && refused.stderr.contains("--create-bucket"))
        #expect(try await bucketExists(fs, "hub-backups") == false, "a refused init creates nothing")
        try await ok(d, "backup", "init", "--repo", repo, "--create-bucket", "--pack-size", "262144", fs: fs)

        #expect(try await bucketExists(fs, "hub-backups"))
        let first = try #require(try JSON.parse(try await ok(d, "backup", "now", "--repo", repo, "--json", fs: fs).stdout).objectValue)
        #expect(first["repository_created"] == .bool(false))
        try await ok(d, "import", try recordsFile("change", ids: stride(from: 7, to: 3_000, by: 100), marker: "edited-marker"), fs: fs)
        let second = try #require(try JSON.parse(try await ok(d, "backup", "now", "--repo", repo, "--json", fs: fs).stdout).objectValue)
        guard case .int(let newChunks) = second["new_chunks"] ?? .null, case .int(let chunks) = second["chunks"] ?? .null else {
            Issue.record("no chunk counts"); return
        }
        #expect(newChunks < chunks / 4, "an incremental backup wrote \(newChunks) of \(chunks) chunks")

        let list = try #require(try JSON.parse(try await ok(d, "backup", "list", "--repo", repo, "--json", fs: fs).stdout).arrayValue)
        #expect(list.count == 2)
        let verify = try #require(try JSON.parse(try await ok(d, "backup", "verify", "--read-data", "--repo", repo, "--json", fs: fs).stdout).objectValue)
        #expect(verify["ok"] == .bool(true))
        #expect(verify["packs_read"] != .int(0))

        let restored = Device(data: dir.path + "/restored")
        try await ok(d, "backup", "restore", "latest", "--repo", repo, "--into", restored.data, fs: fs)
        #expect(try await exportedRecords(restored, fs) == exportedRecords(d, fs))

        let drill = try #require(try JSON.parse(try await ok(d, "backup", "drill", "--repo", repo, "--json", fs: fs).stdout).objectValue)
        #expect(drill["ok"] == .bool(true))

        // Every object is under the prefix, in the repository's layout; none holds a record's text.
        let all = try await keys(fs, "hub-backups")
        #expect(all.allSatisfy { $0.hasPrefix("home/") })
        for folder in ["home/config", "home/keys/", "home/data/", "home/index/", "home/snapshots/"] {
            #expect(all.contains { $0.hasPrefix(folder) }, "no \(folder) object")
        }
        let scan = try JSON.parse(try await fs.boto3("hub-backups", """
            needles = [b'plaintext-marker', b'edited-marker', b'garden music']
            read, found = 0, []
            for page in s3.get_paginator('list_objects_v2').paginate(Bucket=B):
                for o in page.get('Contents', []):
                    body = s3.get_object(Bucket=B, Key=o['Key'])['Body'].read()
                    assert len(body) == o['Size'], o['Key']
                    read += 1
                    found += [o['Key'] for n in needles if n in body]
            print(json.dumps({'read': read, 'found': found}))
            """)).objectValue
        #expect(scan?["read"] == .int(Int64(all.count)))
        #expect(scan?["found"] == .array([]), "plaintext in \(String(describing: scan?["found"]))")

        // forget --prune, then prune: objects of the forgotten snapshot go.
        let before = all.count
        let forget = try #require(try JSON.parse(try await ok(d, "backup", "forget", "--keep-last", "1", "--prune", "--repo", repo,
                                                               "--json", fs: fs).stdout).objectValue)
        #expect(forget["prune"]?.objectValue != nil)
        try await ok(d, "backup", "prune", "--repo", repo, fs: fs)
        let after = try await keys(fs, "hub-backups")
        #expect(after.count < before)
        #expect(after.filter { $0.hasPrefix("home/snapshots/") }.count == 1)
        #expect(after.filter { $0.hasPrefix("home/locks/") }.isEmpty, "leases are given up")
        try await ok(d, "backup", "verify", "--read-data", "--repo", repo, fs: fs)
        try await ok(d, "backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/restored2", fs: fs)
        #expect(try await exportedRecords(Device(data: dir.path + "/restored2"), fs) == exportedRecords(d, fs))
    }
}
