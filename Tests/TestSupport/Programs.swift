import Foundation
import HubSyncCore

/// The `hubsync` executable built beside the tests ($HUBSYNC_BIN overrides).
public let hubsyncPath: String = {
    if let p = ProcessInfo.processInfo.environment["HUBSYNC_BIN"] { return p }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // The test bundle may sit one level down (e.g. X.xctest/Contents/MacOS on other platforms).
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("hubsync").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir.deleteLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath + "/.build/debug/hubsync"
}()

/// What a finished process left: exit status and output.
public struct RunResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var json: Value? { try? JSON.parse(stdout) }

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A command a test needed did not start or did not succeed.
public struct CommandFailed: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Runs a program to completion, feeding it `stdin` if given, and collects its output (through
/// temporary files, so no pipe can fill up and nothing blocks while it runs). With a `timeout`
/// (seconds), a program still running then is killed (status 128 + SIGKILL).
@discardableResult
public func runProgram(_ path: String, _ args: [String], stdin: String? = nil,
                       environment: [String: String]? = nil, timeout: Double? = nil) async throws -> RunResult {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-run-\(UUID().uuidString)").path
    defer {
        for suffix in [".in", ".out", ".err"] { try? FileManager.default.removeItem(atPath: base + suffix) }
    }
    if let stdin { try stdin.write(toFile: base + ".in", atomically: false, encoding: .utf8) }
    let child = try ChildProcess(path, args, stdin: stdin == nil ? nil : base + ".in",
                                 stdout: base + ".out", stderr: base + ".err", environment: environment)
    let killer = timeout.map { seconds in
        Task {
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            child.signal(SIGKILL)
        }
    }
    let status = await child.wait()
    killer?.cancel()
    return RunResult(status: status,
                     stdout: String(decoding: FileManager.default.contents(atPath: base + ".out") ?? Data(), as: UTF8.self),
                     stderr: String(decoding: FileManager.default.contents(atPath: base + ".err") ?? Data(), as: UTF8.self))
}

/// ``runProgram(_:_:stdin:environment:)`` blocking the calling thread; for a `deinit` or a static
/// initializer, which cannot await.
@discardableResult
public func runProgramBlocking(_ path: String, _ args: [String]) throws -> RunResult {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-run-\(UUID().uuidString)").path
    defer {
        for suffix in [".out", ".err"] { try? FileManager.default.removeItem(atPath: base + suffix) }
    }
    let status = try ChildProcess(path, args, stdout: base + ".out", stderr: base + ".err").waitBlocking()
    return RunResult(status: status,
                     stdout: String(decoding: FileManager.default.contents(atPath: base + ".out") ?? Data(), as: UTF8.self),
                     stderr: String(decoding: FileManager.default.contents(atPath: base + ".err") ?? Data(), as: UTF8.self))
}

/// Runs a program that must succeed.
@discardableResult
public func must(_ path: String, _ args: String...) async throws -> RunResult {
    let r = try await runProgram(path, args)
    guard r.status == 0 else {
        throw CommandFailed(description: "\(path) \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)\(r.stdout)")
    }
    return r
}
