import Foundation
import HubSyncCore
import Testing

/// The `hubsync` executable built beside the tests ($HUBSYNC_BIN overrides).
let hubsyncPath: String = {
    if let p = ProcessInfo.processInfo.environment["HUBSYNC_BIN"] { return p }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("hubsync").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir.deleteLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath + "/.build/debug/hubsync"
}()

/// What a finished process left: exit status and output.
struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var json: Value? { try? JSON.parse(stdout) }
}

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a program to completion and collects its output (through temporary files).
@discardableResult
func runProgram(_ path: String, _ args: [String]) throws -> RunResult {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-run-\(UUID().uuidString)").path
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let status = try ChildProcess(path, args, stdout: base + ".out", stderr: base + ".err").wait()
    return RunResult(status: status,
                     stdout: String(decoding: FileManager.default.contents(atPath: base + ".out") ?? Data(), as: UTF8.self),
                     stderr: String(decoding: FileManager.default.contents(atPath: base + ".err") ?? Data(), as: UTF8.self))
}

/// Runs a program that must succeed.
@discardableResult
func must(_ path: String, _ args: String...) throws -> RunResult {
    let r = try runProgram(path, args)
    guard r.status == 0 else {
        throw CommandFailed(description: "\(path) \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)\(r.stdout)")
    }
    return r
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` until it holds, failing after `timeout` seconds.
func waitUntil(_ what: String, timeout: Double, interval: Double = 0.1, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        Thread.sleep(forTimeInterval: interval)
    }
    throw TimedOut(description: "timed out after \(timeout) s waiting for \(what)")
}
