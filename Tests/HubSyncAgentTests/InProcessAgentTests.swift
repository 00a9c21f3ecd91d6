import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import HubSyncTestSupport
import Logging
import Testing

/// An agent in this process, on port 0, stopped by cancelling its task: the harness for testing
/// the agent without spawning processes.
final class InProcessAgent: Sendable {
    let directory: DataDirectory
    let agent: Agent
    let task: Task<Void, any Error>
    let client: LocalAPIClient

    init(in path: String) async throws {
        directory = DataDirectory(path: path)
        let identity = Identity.exists(in: directory.url) ? try Identity.load(from: directory.url)
            : try Identity.create(in: directory.url)
        // As `hubsync init` leaves it: the identity beside its store (an agent refuses a device without one).
        if !FileManager.default.fileExists(atPath: directory.storePath) {
            _ = try Store(path: directory.storePath, device: identity.deviceID)
        }
        var configuration = AgentConfiguration()
        configuration.listen = "127.0.0.1:0"
        configuration.api = "127.0.0.1:0"
        configuration.mdns = false
        var logger = Logger(label: "test-agent")
        logger.logLevel = .warning
        agent = try Agent(directory: path, identity: identity, configuration: configuration, logger: logger)
        let agent = self.agent
        task = Task { try await agent.run() }
        let directory = self.directory
        // The agent shares this process's cooperative pool with every other test, some of them
        // CPU-bound for seconds at a time, so its start may wait for a thread.
        try await waitUntil("the in-process agent's API is bound", timeout: 120) {
            LocalAPIClient.running(inDataDirectory: directory.path) != nil
        }
        client = LocalAPIClient.running(inDataDirectory: path)!
    }

    /// Cancels the agent's services and waits for them to end.
    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

@Suite struct InProcessAgentTests {
    /// Kept by the suite, so it outlives every agent a test starts in it.
    let tmp = TemporaryDirectory()

    @Test func theAgentHoldsTheWriterLockForItsLifetime() async throws {
        let path = tmp.path + "/lock"
        do {
            let running = try await InProcessAgent(in: path)
            let holder = try #require(WriterLock.holder(in: running.directory))
            #expect(holder.pid == getpid() && holder.isAgent)
            #expect(try WriterLock.acquire(in: running.directory, role: "test") == nil)
            // A second agent on the directory is refused while the first runs.
            #expect(throws: ValidationFailure.self) {
                try Agent(directory: path, identity: try Identity.load(from: running.directory.url),
                          configuration: AgentConfiguration(), logger: Logger(label: "second"))
            }
            await running.stop()
        }
        // Released with the agent: a command may take it now (once no child that another test is
        // spawning right now holds a copy of this process's descriptors, from fork until exec).
        try await waitUntil("the agent's lock is free", timeout: 20) { WriterLock.holder(in: DataDirectory(path: path)) == nil }
        #expect(try WriterLock.acquire(in: DataDirectory(path: path), role: "test") != nil)
    }

    @Test func writesThroughTheAPIAreStoredAsTyped() async throws {
        let running = try await InProcessAgent(in: tmp.path + "/ids")
        let (status, answer) = try await running.client.request(
            "PATCH", "/v1/records/memories/a%2Fb%20%F0%9F%A6%8A", body: ["text": "x"])
        #expect(status == 200, "\(answer)")
        #expect(answer.objectValue?["id"] == "a/b 🦊")
        #expect(try running.agent.store.get(RecordKey(collection: "memories", id: "a/b 🦊"))?.visibleFields["text"] == "x")
        let (refused, why) = try await running.client.request("PATCH", "/v1/records/memories/%00", body: ["text": "x"])
        #expect(refused == 400, "\(why)")
        await running.stop()
    }
}
