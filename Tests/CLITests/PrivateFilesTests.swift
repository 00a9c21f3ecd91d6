import Foundation
import HubSyncCore
import Testing

/// The data directory and every file in it are private to the owner, and the recovery key need
/// not be typed on the command line (issue 10, files and secrets).
@Suite(.timeLimit(.minutes(10))) struct PrivateFilesTests {
    let dir = TemporaryDirectory()

    func modes(_ path: String) throws -> [String: mode_t] {
        var out: [String: mode_t] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            var s = stat()
            if lstat(path + "/" + name, &s) == 0, s.st_mode & S_IFMT == S_IFREG { out[name] = s.st_mode & 0o777 }
        }
        return out
    }

    func mode(_ path: String) -> mode_t {
        var s = stat()
        return stat(path, &s) == 0 ? s.st_mode & 0o777 : 0
    }

    @Test func anExistingOpenDirectoryAndEveryFileInItBecomePrivate() async throws {
        let path = dir.path + "/open"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        let d = Device(data: path)
        try await d.ok("init")
        #expect(mode(path) == 0o700)
        let afterInit = try modes(path)
        #expect(afterInit["store.sqlite"] != nil)
        #expect(afterInit.allSatisfy { $0.value == 0o600 }, "\(afterInit)")

        // A store made readable by all, and the directory opened again, are fixed when the agent starts.
        chmod(path + "/store.sqlite", 0o644)
        chmod(path, 0o755)
        let agent = try await AgentProcess(d)
        try await agent.api("PATCH", "/v1/records/memories/m1", ["text": "private"])
        #expect(mode(path) == 0o700)
        let running = try modes(path)
        #expect(running["store.sqlite-wal"] != nil && running["api.token"] != nil, "\(running.keys.sorted())")
        #expect(running.allSatisfy { $0.value == 0o600 }, "\(running)")
    }

    @Test func theRecoveryKeyComesFromStandardInputOrAFile() async throws {
        let d = Device(data: dir.path + "/d")
        let key = try #require(try await d.ok("init", "--json").json?.objectValue?["recovery_key"]?.stringValue)
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "now", "--repo", repo)
        let bare = Device(data: dir.path + "/bare")
        let piped = try await bare.run("backup", "list", "--repo", repo, "--recovery-key", "-", "--json", stdin: key + "\n")
        #expect(piped.status == 0 && piped.json?.arrayValue?.count == 1, "\(piped.stderr)")
        #expect(!piped.stderr.contains("process list"))
        let file = dir.path + "/recovery.txt"
        try (key + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        let fromFile = try await bare.run("backup", "list", "--repo", repo, "--recovery-key-file", file, "--json")
        #expect(fromFile.status == 0 && fromFile.json?.arrayValue?.count == 1, "\(fromFile.stderr)")
        #expect(!fromFile.stderr.contains("other users"), "\(fromFile.stderr)")
        // A key file others can read still opens the repository, with a warning that says what to do.
        chmod(file, 0o644)
        let readable = try await bare.run("backup", "list", "--repo", repo, "--recovery-key-file", file, "--json")
        #expect(readable.status == 0 && readable.stderr.contains("chmod 600"), "\(readable.stderr)")
        // On the command line it still works, with a warning.
        let typed = try await bare.run("backup", "list", "--repo", repo, "--recovery-key", key)
        #expect(typed.status == 0 && typed.stderr.contains("process list"), "\(typed.stderr)")

        let missing = try await bare.run("backup", "list", "--repo", repo, "--recovery-key-file", dir.path + "/nowhere")
        #expect(missing.status == 2 && missing.stderr.contains("cannot read"), "\(missing.stderr)")
        let both = try await bare.run("backup", "list", "--repo", repo, "--recovery-key", "-", "--recovery-key-file", file)
        #expect(both.status == 2, "\(both.stderr)")
        let empty = try await bare.run("backup", "list", "--repo", repo, "--recovery-key", "-", stdin: "")
        #expect(empty.status == 2 && empty.stderr.contains("nothing was read"), "\(empty.stderr)")
        try "not a key\n".write(toFile: file, atomically: true, encoding: .utf8)
        let garbage = try await bare.run("backup", "list", "--repo", repo, "--recovery-key-file", file)
        #expect(garbage.status == 2 && garbage.stderr.contains("--recovery-key-file"), "\(garbage.stderr)")
    }

    @Test func exportsARepairedStoreAndDoctorKeepToThisUser() async throws {
        let d = Device(data: dir.path + "/e")
        try await d.ok("init")
        try await d.ok("put", "memories", "m1", "--json", #"{"text": "private"}"#)
        // Files the tool writes outside the directory are this user's too (the umask here is 022).
        let export = dir.path + "/export.jsonl"
        try await d.ok("export", export)
        #expect(mode(export) == 0o600)

        // A rebuilt store is private at once, not only at the agent's next start.
        try await d.ok("repair", "--force")
        let afterRepair = try modes(d.data)
        #expect(afterRepair.filter { $0.key.hasPrefix("store.sqlite") }.allSatisfy { $0.value == 0o600 }, "\(afterRepair)")

        // doctor looks at every file of the directory, not only the key files it knows.
        let legacy = d.data + "/pairing-group.key"
        try Data(repeating: 1, count: 104).write(to: URL(fileURLWithPath: legacy))
        chmod(legacy, 0o644)
        let doctor = try await d.run("doctor")
        #expect(doctor.status != 0 && doctor.stdout.contains("pairing-group.key is mode 644"), "\(doctor.stdout)")
    }

    @Test func aPairingSecretsFileOthersCanReadIsRefused() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let legacy = d.data + "/pairing-group.key"
        try Data(repeating: 1, count: 104).write(to: URL(fileURLWithPath: legacy))
        chmod(legacy, 0o644)
        let r = try await d.run("pair", "household")
        #expect(r.status != 0 && r.stderr.contains("pairing-group.key is accessible by others"), "\(r.stderr)")
    }
}
