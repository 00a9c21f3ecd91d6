@_exported import HubSyncTestSupport
import Foundation
import HubSyncCore
import Testing

// The temporary directory, `waitUntil`, the child processes and `hubsyncPath` come from
// HubSyncTestSupport, re-exported above to every file of this target.

/// Runs `hubsync` with arguments to completion, feeding `stdin` if given.
@discardableResult
func hubsync(_ args: [String], stdin: String? = nil) async throws -> RunResult {
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "HUBSYNC_DATA")
    return try await runProgram(hubsyncPath, args, stdin: stdin, environment: environment)
}

/// A device's data directory inside a test's temporary directory.
struct Device {
    let data: String
    func run(_ args: String..., stdin: String? = nil) async throws -> RunResult {
        try await hubsync(args + ["--data", data], stdin: stdin)
    }
    /// Runs and requires success; returns the parsed JSON output when there is one.
    @discardableResult
    func ok(_ args: String..., stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> RunResult {
        let r = try await hubsync(args + ["--data", data], stdin: stdin)
        #expect(r.status == 0, "hubsync \(args.joined(separator: " ")) failed: \(r.stderr)", sourceLocation: sourceLocation)
        return r
    }

    /// Makes the device (`init`) and writes the household's recovery key it prints to `file`
    /// (mode 0600), for `--recovery-key-file`.
    func initKeepingRecoveryKey(in file: String) async throws {
        let key = try #require(try await ok("init", "--json").json?.objectValue?["recovery_key"]?.stringValue)
        #expect(FileManager.default.createFile(atPath: file, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600]))
    }
}

/// An export's record lines, sorted: without the header (it names the device and the time) and
/// without the audit journal's records (each backup, restore and repair adds an entry after its
/// snapshot, so a restored store lacks them by design).
func recordLines(ofExport text: String) -> [String] {
    text.split(separator: "\n").dropFirst().map(String.init).filter { !$0.hasPrefix(#"{"collection":"audit""#) }.sorted()
}

