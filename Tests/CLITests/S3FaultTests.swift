import Foundation
import HubSyncBase
import HubSyncCore
import Testing

/// What goes wrong with an S3 target, each against a real SeaweedFS (or, for a server that never
/// answers, a listening socket of the test's own): a clear sentence, and nothing lost.
extension S3BackupTests {
    /// A device, a bucket made by `backup init --create-bucket`, and one snapshot.
    func backedUp(_ fs: SeaweedFS, records: Int = 2_000, packSize: Int = 131_072) async throws -> (Device, String, String) {
        let d = try await device("d", records: records, fs: fs)
        let repo = "s3:\(fs.endpoint)/faults"
        try await ok(d, "backup", "init", "--repo", repo, "--create-bucket", "--pack-size", String(packSize), fs: fs)
        let snap = try #require(try JSON.parse(try await ok(d, "backup", "now", "--repo", repo, "--json", fs: fs).stdout)
            .objectValue?["id"]?.stringValue)
        return (d, repo, snap)
    }

    @Test func wrongCredentialsAreNamedAndChangeNothing() async throws {
        let fs = try await SeaweedFS.start()
        let (d, repo, _) = try await backedUp(fs)
        let before = try await keys(fs, "faults")

        let badSecret = try await run(d, ["backup", "now", "--repo", repo], environment: [
            "AWS_ACCESS_KEY_ID": SeaweedFS.accessKey, "AWS_SECRET_ACCESS_KEY": "not-the-secret"])
        #expect(badSecret.status == 1)
        #expect(badSecret.stderr.contains("secret access key"), "\(badSecret.stderr)")
        let badKey = try await run(d, ["backup", "list", "--repo", repo], environment: [
            "AWS_ACCESS_KEY_ID": "NOSUCHKEY", "AWS_SECRET_ACCESS_KEY": "whatever"])
        #expect(badKey.status == 1)
        #expect(badKey.stderr.contains("access key ID NOSUCHKEY"), "\(badKey.stderr)")
        let none = try await run(d, ["backup", "list", "--repo", repo], environment: [:])
        #expect(none.status != 0 && none.stderr.contains("AWS_ACCESS_KEY_ID"), "\(none.stderr)")
        #expect(try await keys(fs, "faults") == before)
    }

    @Test func aClockTooFarOffIsNamed() async throws {
        let fs = try await SeaweedFS.start()
        let (d, repo, _) = try await backedUp(fs, records: 200)
        var environment = fs.credentials
        environment["HUBSYNC_S3_CLOCK_OFFSET_SECONDS"] = "7200"
        let r = try await run(d, ["backup", "now", "--repo", repo], environment: environment)
        #expect(r.status == 1)
        #expect(r.stderr.contains("clock"), "\(r.stderr)")
        // Within the allowed skew all is well.
        environment["HUBSYNC_S3_CLOCK_OFFSET_SECONDS"] = "60"
        #expect(try await run(d, ["backup", "list", "--repo", repo], environment: environment).status == 0)
    }

    @Test func aServerThatNeverAnswersHitsTheTimeLimit() async throws {
        // A socket that listens and never accepts: connections complete, no answer ever comes.
        let (fd, port) = try ListeningSocket.bindLoopback()
        defer { close(fd) }
        try #require(listen(fd, 64) == 0)

        let d = Device(data: dir.path + "/slow")
        #expect(try await run(d, ["init"], environment: [:]).status == 0)
        try #"{"backup": {"s3": {"timeout_seconds": 1, "attempts": 2}}}"#.write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        let start = Date()
        let r = try await run(d, ["backup", "now", "--repo", "s3:http://127.0.0.1:\(port)/slow"], environment: [
            "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"])
        let seconds = Date().timeIntervalSince(start)
        #expect(r.status == 1)
        #expect(r.stderr.contains("did not answer within 1 s"), "\(r.stderr)")
        #expect(r.stderr.contains("tried 2 times"), "\(r.stderr)")
        // Two attempts of 1 s, and the process around them: well under a minute, even on a busy machine.
        #expect(seconds < 90, "gave up after \(seconds) s")

        // A bad setting is refused by name.
        try #"{"backup": {"s3": {"timeout_seconds": "soon"}}}"#.write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        let bad = try await run(d, ["backup", "list", "--repo", "s3:http://127.0.0.1:\(port)/slow"], environment: [:])
        #expect(bad.status == 2 && bad.stderr.contains("backup.s3.timeout_seconds"), "\(bad.stderr)")
    }

    @Test func aDamagedObjectIsNamedWithTheSnapshotsThatNeedIt() async throws {
        let fs = try await SeaweedFS.start()
        let (d, repo, snap) = try await backedUp(fs, records: 3_000)
        let packs = try await keys(fs, "faults", prefix: "data/").sorted()
        try #require(packs.count >= 2)
        let victim = packs[1]
        _ = try await fs.boto3("faults", """
            body = bytearray(s3.get_object(Bucket=B, Key=\(pythonString(victim)))['Body'].read())
            body[1000] ^= 1
            s3.put_object(Bucket=B, Key=\(pythonString(victim)), Body=bytes(body))
            """)
        let packID = String(victim.split(separator: "/").last!)
        let verify = try await run(d, ["backup", "verify", "--read-data", "--repo", repo, "--json"], environment: fs.credentials)
        #expect(verify.status == 1)
        let damaged = try #require(verify.json?.objectValue?["damaged_packs"]?.arrayValue?.first?.objectValue)
        #expect(damaged["pack"]?.stringValue == packID)
        #expect(damaged["snapshots"]?.arrayValue == [.string(snap)])
        let text = try await run(d, ["backup", "verify", "--read-data", "--repo", repo], environment: fs.credentials)
        #expect(text.stdout.contains(packID) && text.stdout.contains(String(snap.prefix(8))), "\(text.stdout)")
    }

    @Test func theServerKilledMidBackupLeavesAValidRepositoryAndTheRerunResumes() async throws {
        let fs = try await SeaweedFS.start()
        let d = try await device("d", records: 100, fs: fs)
        // Records that do not compress: about 4 MB of packs.
        var random = SeededRandom(seed: 14)
        var lines = ""
        for i in 0..<10_000 {
            let text = random.bytes(count: 300).map { String(format: "%02x", $0) }.joined()
            lines += #"{"collection":"memories","id":"r\#(i)","fields":{"text":"\#(text)"}}"# + "\n"
        }
        try lines.write(toFile: dir.path + "/random.jsonl", atomically: true, encoding: .utf8)
        try await ok(d, "import", dir.path + "/random.jsonl", fs: fs)
        let repo = "s3:\(fs.endpoint)/resume"
        try await ok(d, "backup", "init", "--repo", repo, "--create-bucket", "--pack-size", "65536", fs: fs)
        // The backup goes through a relay that holds it still once 1 MB has passed, so the server
        // dies mid-backup however fast the machine is (racing a progress line lost on a busy one).
        let relay = try GatedRelay(to: fs.s3Port, passing: 1_000_000)
        defer { relay.cut() }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
        environment.merge(fs.credentials) { $1 }
        environment["HOME"] = dir.path
        let log = dir.path + "/backup.log"
        let backup = try ChildProcess(hubsyncPath, ["backup", "now", "--repo", "s3:http://127.0.0.1:\(relay.port)/resume",
                                                    "--data", d.data, "--json"], stdout: log, environment: environment)
        try await waitUntil("the backup to send 1 MB", timeout: 120) { relay.isHolding || !backup.isRunning }
        try #require(backup.isRunning, "the backup ended before sending 1 MB")
        await fs.kill("server")
        relay.cut()
        let status = await backup.wait()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(status == 1, "the backup ended with \(status): \(output)")
        #expect(!output.contains("snapshot "), "\(output)")
        #expect(output.contains("cannot reach the S3 service") || output.contains("did not answer"), "\(output)")

        try await fs.restart("server")
        let stored = try await keys(fs, "resume", prefix: "data/").count
        #expect(stored >= 3)
        #expect(try await keys(fs, "resume", prefix: "snapshots/").isEmpty)
        // Valid as it is; the rerun adopts what arrived and writes only the rest.
        try await ok(d, "backup", "verify", "--repo", repo, fs: fs)
        let rerun = try #require(try JSON.parse(try await ok(d, "backup", "now", "--repo", repo, "--json", fs: fs).stdout).objectValue)
        guard case .int(let reused) = rerun["orphan_packs_reused"] ?? .null, case .int(let written) = rerun["packs_written"] ?? .null else {
            Issue.record("no pack counts"); return
        }
        #expect(reused >= 3 && Int(reused) <= stored)
        #expect(written > 0)
        try await ok(d, "backup", "verify", "--read-data", "--repo", repo, fs: fs)
        try await ok(d, "backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/r", fs: fs)
        #expect(try await exportedRecords(Device(data: dir.path + "/r"), fs) == exportedRecords(d, fs))
    }

    @Test func aClusterLosesAVolumeServerAndTheBackupStillReadsAndRestores() async throws {
        let fs = try await SeaweedFS.startCluster()
        let (d, repo, _) = try await backedUp(fs, records: 3_000)
        await fs.kill("volume1")
        let verify = try #require(try JSON.parse(try await ok(d, "backup", "verify", "--read-data", "--repo", repo, "--json", fs: fs).stdout).objectValue)
        #expect(verify["ok"] == .bool(true))
        try await ok(d, "backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/r", fs: fs)
        #expect(try await exportedRecords(Device(data: dir.path + "/r"), fs) == exportedRecords(d, fs))
    }

    @Test func theScheduleBacksUpToS3WithACredentialsFileFromConfig() async throws {
        let fs = try await SeaweedFS.start()
        let d = try await device("d", records: 100, fs: fs)
        let repo = "s3:\(fs.endpoint)/scheduled/hub"
        try await ok(d, "backup", "init", "--repo", repo, "--create-bucket", fs: fs)
        let credentials = dir.path + "/s3-credentials"
        try "[hub]\naws_access_key_id = \(SeaweedFS.accessKey)\naws_secret_access_key = \(SeaweedFS.secretKey)\n"
            .write(toFile: credentials, atomically: true, encoding: .utf8)
        chmod(credentials, 0o644)
        try #"{"backup": {"targets": ["\#(repo)"], "interval_seconds": 1, "s3": {"credentials_file": "\#(credentials)", "profile": "hub"}}}"#
            .write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        // A credentials file others can read is refused by name.
        let open = try await run(d, ["backup", "list"], environment: [:])
        #expect(open.status == 1 && open.stderr.contains("chmod 600"), "\(open.stderr)")
        chmod(credentials, 0o600)

        let agent = try await AgentProcess(d)
        try await waitUntil("a scheduled backup to S3", timeout: 90, interval: 0.1) {
            try await agent.status()["backup"]?.objectValue?["snapshot"]?.stringValue != nil
        }
        await agent.stop()
        // The CLI's default --repo is the schedule's first target, with the same credentials file.
        let listed = try JSON.parse(try await run(d, ["backup", "list", "--json"], environment: [:]).stdout).arrayValue ?? []
        #expect(!listed.isEmpty)
    }
}
