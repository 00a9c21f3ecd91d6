import Foundation
import HubSyncCore
import Testing

/// What the CLI sends through a running agent: anything the store can hold gets in, a write too
/// large for any record is bad input, and an agent that stops answering gets a sentence that
/// says what is known.
@Suite(.timeLimit(.minutes(10))) struct AgentTransportTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    /// Six devices each write a different 700 KB field of `memories/giant` offline; their exports
    /// merged into one device make a 4.2 MB record, over the API's 4 MiB body. That device's
    /// export still imports whole into a device whose agent runs (the record alone through `POST /v1/import`), and
    /// a small record of the same file arrives too.
    @Test func anExportWithARecordOverTheRequestLimitImportsThroughTheRunningAgent() async throws {
        let merged = device("merged")
        try await merged.ok("init")
        for i in 1...6 {
            let e = device("e\(i)")
            try await e.ok("init")
            let value = String(repeating: Character(UnicodeScalar(UInt8(96 + i))), count: 700_000)
            try await e.ok("put", "memories", "giant", "--json", "-", stdin: #"{"text": "t", "f\#(i)": "\#(value)"}"#)
            try await e.ok("export", e.data + "/e.jsonl")
            try await merged.ok("import", e.data + "/e.jsonl")
        }
        try await merged.ok("put", "memories", "small", "--json", #"{"text": "small"}"#)
        let file = dir.path + "/merged.jsonl"
        try await merged.ok("export", file)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        #expect(size > 4 << 20)

        let b = try await AgentProcess(device("b"), extra: ["--no-mdns"])
        let r = try await b.device.run("import", file)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("through the running agent"), "\(r.stdout)")
        let giant = try #require(await b.record("memories", "giant"))
        let fields = try #require(giant["fields"]?.objectValue)
        for i in 1...6 { #expect(fields["f\(i)"]?.stringValue?.utf8.count == 700_000, "f\(i)") }
        #expect(await b.record("memories", "small")?["fields"]?.objectValue?["text"] == "small")
        // The record is the one the exporting device holds: the same state, so the same digest.
        let there = try await merged.ok("get", "memories", "giant", "--json").stdout
        let here = try await b.device.ok("get", "memories", "giant", "--json").stdout
        #expect(there == here)
        await b.stop()
    }

    /// Six devices each set the same field of `memories/giant` to a different 700 KB value
    /// offline; merged, that one field holds six concurrent values, 4.2 MB, over the API's 4 MiB
    /// body by itself. An export and a backup of it still go into devices whose agents run
    /// (the record alone through `POST /v1/import`), whole: the same state, so the same digest.
    @Test func aRecordWhoseOneFieldIsOverTheRequestLimitImportsAndRestoresThroughTheRunningAgent() async throws {
        let merged = device("merged")
        let keyFile = dir.path + "/recovery.txt"
        try await merged.initKeepingRecoveryKey(in: keyFile)
        for i in 1...6 {
            let e = device("e\(i)")
            try await e.ok("init")
            let value = String(repeating: Character(UnicodeScalar(UInt8(96 + i))), count: 700_000)
            try await e.ok("put", "memories", "giant", "--json", "-", stdin: #"{"text": "\#(value)"}"#)
            try await e.ok("export", e.data + "/e.jsonl")
            try await merged.ok("import", e.data + "/e.jsonl")
        }
        try await merged.ok("put", "memories", "small", "--json", #"{"text": "small"}"#)
        let state = try #require(try await merged.ok("get", "memories", "giant", "--json").json?.objectValue)
        #expect((state["conflicts"]?.arrayValue?.count ?? 0) >= 1, "\(state.keys)")
        let file = dir.path + "/merged.jsonl"
        try await merged.ok("export", file)
        let repo = "local:" + dir.path + "/repo"
        try await merged.ok("backup", "now", "--repo", repo)
        let there = try await merged.ok("get", "memories", "giant", "--json").stdout

        let b = try await AgentProcess(device("b"), extra: ["--no-mdns"])
        let imported = try await b.device.run("import", file)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("through the running agent"), "\(imported.stdout)")
        #expect(try await b.device.ok("get", "memories", "giant", "--json").stdout == there)
        #expect(await b.record("memories", "small")?["fields"]?.objectValue?["text"] == "small")
        // Again: nothing changes, and the run says so.
        #expect(try await b.device.ok("import", file).stdout.contains("0 merged"))

        let c = try await AgentProcess(device("c"), extra: ["--no-mdns"])
        let restored = try await c.device.run("backup", "restore", "latest", "--merge", "--repo", repo, "--recovery-key-file", keyFile)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try await c.device.ok("get", "memories", "giant", "--json").stdout == there)
        #expect(await c.record("memories", "small")?["fields"]?.objectValue?["text"] == "small")
        await b.stop()
        await c.stop()
    }

    /// A `put` over what one request carries is over the record limit: bad input (exit 2) with
    /// the record-size sentence, not the batch advice of the API's 413.
    @Test func aPutOverTheRequestLimitIsBadInputWithTheRecordSizeSentence() async throws {
        let a = try await AgentProcess(device("a"), extra: ["--no-mdns"])
        let r = try await a.device.run("put", "memories", "huge", "--json", "-",
                                       stdin: #"{"text": "\#(String(repeating: "x", count: 5 << 20))"}"#)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("768 KiB") && r.stderr.contains("split the value"), "\(r.stderr)")
        #expect(!r.stderr.contains("batches"), "\(r.stderr)")
        #expect(await a.record("memories", "huge") == nil)
        await a.stop()
    }

    /// An agent that takes a write and then says nothing (stopped here with SIGSTOP): after a few
    /// seconds the CLI says it waits, then that the outcome is unknown (exit 1); `status` shows
    /// what the store says without it. Once the agent resumes, the write is there — which is
    /// why the message may not call it failed.
    @Test func aSilentAgentGetsASentenceThatSaysTheOutcomeIsUnknown() async throws {
        let a = try await AgentProcess(device("a"), extra: ["--no-mdns"])
        let pid = a.agent.process.pid
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "HUBSYNC_DATA")
        environment["HUBSYNC_AGENT_TIMEOUT"] = "8"
        let put = try await runProgram(hubsyncPath, ["put", "memories", "late", "--json", #"{"text": "x"}"#, "--data", a.device.data],
                                       environment: environment)
        #expect(put.status == 1, "\(put.stderr)")
        #expect(put.stderr.contains("waiting for the agent (pid \(pid))"), "\(put.stderr)")
        #expect(put.stderr.contains("did not answer within 8 s") && put.stderr.contains("may still be applied"), "\(put.stderr)")
        #expect(put.stderr.contains("kill \(pid)"), "\(put.stderr)")
        #expect(ExitCodeTableTests.libraryText(in: put.stderr) == nil && !put.stderr.contains("Timeout"), "\(put.stderr)")

        let status = try await runProgram(hubsyncPath, ["status", "--data", a.device.data], environment: environment)
        #expect(status.status == 1, "\(status.stderr)")
        #expect(status.stdout.contains("pid \(pid) does not answer"), "\(status.stdout)")
        #expect(status.stderr.contains("did not answer within 8 s") && !status.stderr.contains("may still be applied"), "\(status.stderr)")

        kill(pid, SIGCONT)
        try await waitUntil("the write lands once the agent resumes", timeout: 60) {
            await a.record("memories", "late")?["fields"]?.objectValue?["text"] == "x"
        }
        await a.stop()
    }

    /// Naming a record that is not there in a write is bad input (exit 2) on both paths, and
    /// `add` says to create the record first; nothing is created.
    @Test func aWriteToAMissingRecordIsBadInputThroughTheAgentToo() async throws {
        let a = try await AgentProcess(device("a"), extra: ["--no-mdns"])
        for args in [["delete", "memories", "nosuch"], ["undelete", "memories", "nosuch"],
                     ["resolve", "memories", "nosuch", "text", "--value", #""x""#], ["remove", "memories", "nosuch", "tags", "x"]] {
            let r = try await hubsync(args + ["--data", a.device.data])
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("memories/nosuch"), "\(args): \(r.stderr)")
        }
        let add = try await a.device.run("add", "memories", "nosuch", "tags", "x")
        #expect(add.status == 2, "\(add.stderr)")
        #expect(add.stderr.contains("does not exist") && add.stderr.contains("hubsync put memories nosuch"), "\(add.stderr)")
        #expect(try await a.device.ok("list", "memories", "--deleted").stdout.isEmpty)
        await a.stop()
    }
}
