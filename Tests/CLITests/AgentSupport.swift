import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// A `hubsync run` process on loopback with its own data directory; killed when released.
final class AgentProcess: Sendable {
    let device: Device
    let agent: SpawnedAgent
    let client: LocalAPIClient
    /// The device's ID (`hubsync id`).
    let id: String

    /// Creates the device if needed and starts its agent on free ports.
    init(_ device: Device, extra: [String] = []) async throws {
        self.device = device
        if !FileManager.default.fileExists(atPath: device.data + "/identity.key") { try await device.ok("init") }
        id = try await device.ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        agent = try await SpawnedAgent.start(data: device.data, extra: extra)
        guard let client = LocalAPIClient.running(inDataDirectory: device.data) else {
            throw CommandFailed(description: "no local API address in \(device.data)/agent.json")
        }
        self.client = client
    }

    /// The sync listener's address (`127.0.0.1:PORT`).
    var listen: String { agent.listen }

    /// Stops the agent with SIGTERM and waits for it to exit.
    func stop() async { await agent.stop() }

    /// Kills the agent with SIGKILL and waits for it to exit.
    func kill9() async { await agent.kill() }

    /// A request through the local API.
    func request(_ method: String, _ path: String, body: Value? = nil) async throws -> (status: Int, body: Value) {
        try await client.request(method, path, body: body, timeout: .seconds(60))
    }

    /// A request through the local API that must succeed.
    @discardableResult
    func api(_ method: String, _ path: String, _ body: Value? = nil) async throws -> Value {
        let (status, value) = try await request(method, path, body: body)
        guard (200..<300).contains(status) else { throw APIClientError(.refused, "\(method) \(path): HTTP \(status) \(value)") }
        return value
    }

    func record(_ collection: String, _ id: String) async -> [String: Value]? {
        guard let (status, v) = try? await request("GET", "/v1/records/\(collection)/\(id)"), status == 200 else { return nil }
        return v.objectValue
    }

    func status() async throws -> [String: Value] { try await api("GET", "/v1/status").objectValue ?? [:] }

    func peerStatus(_ deviceID: String) async throws -> [String: Value]? {
        try await status()["peers"]?.arrayValue?.compactMap(\.objectValue).first { $0["device_id"]?.stringValue == deviceID }
    }

    func isConnected(to other: AgentProcess) async -> Bool {
        (try? await peerStatus(other.id)?["connected"]) == .bool(true)
    }
}

/// Trusts each agent to the other, with addresses, and waits until they are connected.
func pair(_ a: AgentProcess, _ b: AgentProcess) async throws {
    try await a.device.ok("peers", "add", b.id, "--address", b.listen)
    try await b.device.ok("peers", "add", a.id, "--address", a.listen)
    try await waitUntilConnected(a, b, "\(a.device.data) and \(b.device.data) connected", timeout: 15)
}

/// Waits until `a` and `b` are each connected to the other.
func waitUntilConnected(_ a: AgentProcess, _ b: AgentProcess, _ what: String, timeout: Double,
                        fileID: String = #fileID, line: Int = #line) async throws {
    try await waitUntil(what, timeout: timeout, fileID: fileID, line: line) {
        let ab = await a.isConnected(to: b), ba = await b.isConnected(to: a)
        return ab && ba
    }
}

/// Joins `joiner` to `member`'s household with an invite `pair invite` opens on the member.
func join(_ joiner: AgentProcess, through member: AgentProcess) async throws {
    let invite = try await InviteProcess(member.device)
    try await joiner.device.ok("pair", "join", invite.code, "--host", member.listen)
    #expect(try await invite.finish(timeout: 10).status == 0)
}

/// The agent's household document (`GET /v1/pairing/household`).
func household(_ agent: AgentProcess) async throws -> [String: Value] {
    try await agent.api("GET", "/v1/pairing/household").objectValue ?? [:]
}
