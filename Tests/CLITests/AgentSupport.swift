import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// A `hubsync run` process on loopback with its own data directory; stopped when released.
final class AgentProcess: @unchecked Sendable { // used from one test at a time
    let device: Device
    let process = Process()
    private(set) var listen = ""
    private(set) var client: LocalAPIClient!

    /// Creates the device if needed and starts its agent on free ports.
    init(_ device: Device, extra: [String] = []) throws {
        self.device = device
        if !FileManager.default.fileExists(atPath: device.data + "/identity.key") { try device.ok("init") }
        process.executableURL = URL(fileURLWithPath: hubsyncPath)
        process.arguments = ["run", "--data", device.data, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"] + extra
        let log = FileHandle(forWritingAtPath: device.data + "/agent.log") ?? {
            FileManager.default.createFile(atPath: device.data + "/agent.log", contents: nil)
            return FileHandle(forWritingAtPath: device.data + "/agent.log")!
        }()
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        // The agent writes agent.json once both listeners are bound.
        try waitUntil("agent \(device.data) ready", timeout: 15) {
            guard let data = FileManager.default.contents(atPath: device.data + "/agent.json"),
                  let o = (try? JSON.parse([UInt8](data)))?.objectValue,
                  o["pid"] == .int(Int64(process.processIdentifier)) else { return false }
            listen = o["listen"]?.stringValue ?? ""
            return true
        }
        client = LocalAPIClient.running(inDataDirectory: device.data)
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }

    var id: String { (try? device.ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "" }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// A request through the local API that must succeed.
    @discardableResult
    func api(_ method: String, _ path: String, _ body: Value? = nil) throws -> Value {
        let (status, value) = try client.request(method, path, body: body)
        guard (200..<300).contains(status) else { throw APIClientError(.refused, "\(method) \(path): HTTP \(status) \(value)") }
        return value
    }

    func record(_ collection: String, _ id: String) -> [String: Value]? {
        guard let (status, v) = try? client.request("GET", "/v1/records/\(collection)/\(id)"), status == 200 else { return nil }
        return v.objectValue
    }

    func status() throws -> [String: Value] { try api("GET", "/v1/status").objectValue ?? [:] }

    func peerStatus(_ deviceID: String) throws -> [String: Value]? {
        try status()["peers"]?.arrayValue?.compactMap(\.objectValue).first { $0["device_id"]?.stringValue == deviceID }
    }

    func isConnected(to other: AgentProcess) -> Bool {
        (try? peerStatus(other.id)?["connected"]) == .bool(true)
    }
}

/// Trusts each agent to the other, with addresses, and waits until they are connected.
func pair(_ a: AgentProcess, _ b: AgentProcess) throws {
    try a.device.ok("peers", "add", b.id, "--address", b.listen)
    try b.device.ok("peers", "add", a.id, "--address", a.listen)
    try waitUntil("\(a.device.data) and \(b.device.data) connected", timeout: 15) {
        a.isConnected(to: b) && b.isConnected(to: a)
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` until it holds, failing after `timeout` seconds.
func waitUntil(_ what: String, timeout: Double, interval: Double = 0.01, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        Thread.sleep(forTimeInterval: interval)
    }
    throw TimedOut(description: "timed out after \(timeout) s waiting for \(what)")
}
