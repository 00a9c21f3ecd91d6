import Foundation
import HubSyncCore
import Testing

/// The `hubsync` executable built beside the tests ($HUBSYNC_BIN overrides).
let hubsyncPath: String = {
    if let p = ProcessInfo.processInfo.environment["HUBSYNC_BIN"] { return p }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // The test bundle may sit one level down (e.g. X.xctest/Contents/MacOS on other platforms).
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("hubsync").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir.deleteLastPathComponent()
    }
    return ".build/debug/hubsync"
}()

/// What a finished process left: exit status and output.
struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var json: Value? { try? JSON.parse(stdout) }
}

/// A temporary directory removed when the value is released.
final class TemporaryDirectory: Sendable {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-cli-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs `hubsync` with arguments to completion, feeding `stdin` if given.
@discardableResult
func hubsync(_ args: [String], stdin: String? = nil) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: hubsyncPath)
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "HUBSYNC_DATA")
    p.environment = env
    let out = Pipe(), err = Pipe(), input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    try p.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    // Read both pipes to the end before waiting, so a large output cannot block the child.
    let errData = Box<Data>()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    group.wait()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                     stderr: String(decoding: errData.value ?? Data(), as: UTF8.self))
}

/// A value handed from one thread to another.
final class Box<T>: @unchecked Sendable { // every access goes through `lock`
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// A device's data directory inside a test's temporary directory.
struct Device {
    let data: String
    func run(_ args: String..., stdin: String? = nil) throws -> RunResult {
        try hubsync(args + ["--data", data], stdin: stdin)
    }
    /// Runs and requires success; returns the parsed JSON output when there is one.
    @discardableResult
    func ok(_ args: String..., stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> RunResult {
        let r = try hubsync(args + ["--data", data], stdin: stdin)
        #expect(r.status == 0, "hubsync \(args.joined(separator: " ")) failed: \(r.stderr)", sourceLocation: sourceLocation)
        return r
    }
}
