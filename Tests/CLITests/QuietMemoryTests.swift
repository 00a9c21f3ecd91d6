import Foundation
import HubSyncCore
import HubSyncTestSupport
import Testing

/// A quiet agent gives back the memory its work left mapped: its resident set falls once it has
/// been quiet for 10 s, it goes on answering, and new work makes it give back again later.
@Suite(.timeLimit(.minutes(10))) struct QuietMemoryTests {
    let dir = TemporaryDirectory()

    func trims(in log: String) -> Int {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "quiet: gave back memory").count - 1
    }

    @Test func aQuietAgentGivesBackMemoryAndAnswersOn() async throws {
        let agent = try await AgentProcess(Device(data: dir.path + "/a"), extra: ["--log-level", "debug"])
        let pid = agent.agent.process.pid
        let log = agent.device.data + "/agent.log"
        try await agent.api("PUT", "/v1/records/memories/m1", ["text": "before the quiet"])
        let busy = try procStatusKB("VmRSS", pid: pid)
        // On a loaded machine the agent may have been quiet for 10 s between its start and the
        // request, and trimmed then: only trims after the request count. None comes in the 10 s
        // after it.
        let before = trims(in: log)
        // Reading /proc does not count as activity; the API request above did.
        try await waitUntil("the agent to give back memory once quiet", timeout: 180, interval: 0.2) { trims(in: log) >= before + 1 }
        let quiet = try procStatusKB("VmRSS", pid: pid)
        #expect(quiet < busy * 2 / 3, "VmRSS \(busy) kB at work, \(quiet) kB once quiet")
        // It answers on: the code it runs comes back as it runs it.
        #expect(await agent.record("memories", "m1")?["fields"]?.objectValue?["text"] == "before the quiet")
        // Counted from just before the request: on a loaded machine more than 10 s can pass
        // between the steps above, and the agent may trim again in between.
        let settled = trims(in: log)
        try await agent.api("PUT", "/v1/records/memories/m2", ["text": "after it"])
        #expect(trims(in: log) == settled, "work does not trim at once")
        // Work again, then quiet again: it gives back again.
        try await waitUntil("the agent to give back memory after more work", timeout: 180, interval: 0.2) { trims(in: log) >= settled + 1 }
        #expect(await agent.record("memories", "m2")?["fields"]?.objectValue?["text"] == "after it")
        #expect(await agent.agent.stop() == 0, "SIGTERM stops it cleanly")
    }
}
