import Foundation
import HubSyncAgent
import HubSyncCore
import HubSyncCrypto
import Testing

/// Mixed versions: this build beside the previous release, built from this repository's own
/// history (tag `v0.1.0`, else its commit) into `.build/compat/COMMIT` (kept, so a second run
/// is fast), syncing both ways over loopback (protocol/SPEC.md 3.6). The session handshake is
/// version 2 here and 1 there: this build dials the old one in version 1, and refuses the old
/// one's dials (protocol/SPEC.md 2.4.2), so every session below is one this build opened.
@Suite struct CompatibilityTests {
    static let previousTag = "v0.1.0"
    static let previousCommit = "9a69ffd471450e1ee998b039707b56283a40cd63"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path

    /// The previous release's `hubsync`, built once per commit by scripts/build-previous.sh
    /// (which `make test` runs before the tests, so the build does not compete with them).
    static func previousRelease() async throws -> String {
        let r = try await runProgram("/bin/bash", [repository + "/scripts/build-previous.sh", previousTag, previousCommit])
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status == 0, FileManager.default.isExecutableFile(atPath: path) else {
            throw CommandFailed(description: "could not build the previous release \(previousTag): \(r.stderr)")
        }
        return path
    }

    /// An agent of the previous release on loopback.
    struct OldAgent {
        let binary: String, data: String
        let agent: SpawnedAgent
        let client: LocalAPIClient
        let id: String

        init(binary: String, data: String) async throws {
            self.binary = binary
            self.data = data
            guard try await runProgram(binary, ["init", "--data", data]).status == 0 else { throw CommandFailed(description: "old init failed") }
            id = try await runProgram(binary, ["id", "--data", data]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            // The launcher runs the old binary in place of this build's.
            agent = try await SpawnedAgent.start(data: data, launcher: ["/bin/sh", "-c", "shift; exec \"$0\" \"$@\"", binary])
            guard let client = LocalAPIClient.running(inDataDirectory: data) else { throw CommandFailed(description: "no API in \(data)") }
            self.client = client
        }

        @discardableResult
        func run(_ args: String...) async throws -> RunResult {
            let r = try await runProgram(binary, args + ["--data", data])
            guard r.status == 0 else { throw CommandFailed(description: "old hubsync \(args.joined(separator: " ")): \(r.stderr)") }
            return r
        }

        /// What the old agent's status says about `peer`: connected, or why not.
        func peerStatus(_ peer: String) async -> [String: Value]? {
            guard let (status, v) = try? await client.request("GET", "/v1/status"), status == 200 else { return nil }
            return v.objectValue?["peers"]?.arrayValue?.compactMap(\.objectValue).first { $0["device_id"]?.stringValue == peer }
        }

        func record(_ collection: String, _ id: String) async -> [String: Value]? {
            guard let (status, v) = try? await client.request("GET", "/v1/records/\(collection)/\(id)"), status == 200 else { return nil }
            return v.objectValue
        }
    }

    /// A state line of `collection`, which this build merges and keeps though it has no such
    /// collection: made from a real record's export line, renamed, its digest made anew.
    static func foreignCollectionLine(_ scratch: Device, collection: String, id: String) async throws -> String {
        try await scratch.ok("init")
        try await scratch.ok("put", "memories", id, "--json", #"{"text":"from a newer release","kind":"sticker"}"#)
        // The memory's line (the export also holds the device's own `devices` records, its name among them).
        let line = try #require(try await scratch.ok("export", "-").stdout.split(separator: "\n").dropFirst()
            .first { $0.contains(#""collection":"memories""#) })
        var o = try #require(try JSON.parse(String(line)).objectValue)
        let state = try StateJSON.state(key: RecordKey(collection: collection, id: id), from: o["state"] ?? .null)
        o["collection"] = .string(collection)
        o["digest"] = .string(Hex.encode(CanonicalEncoding.digest(state)))
        return JSON.serialize(.object(o))
    }

    static func exportLines(_ binary: String, _ data: String) async throws -> [String: String] {
        let r = try await runProgram(binary, ["export", "-", "--data", data])
        var out: [String: String] = [:]
        for line in r.stdout.split(separator: "\n").dropFirst() {
            guard let o = try? JSON.parse(String(line)).objectValue, let c = o["collection"]?.stringValue, let i = o["id"]?.stringValue else { continue }
            out[c + "/" + i] = String(line)
        }
        return out
    }

    @Test(.timeLimit(.minutes(30))) func syncsBothWaysWithThePreviousRelease() async throws {
        let old = try await Self.previousRelease()
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let a = try await AgentProcess(Device(data: dir.appendingPathComponent("new-a").path))
            let b = try await OldAgent(binary: old, data: dir.appendingPathComponent("old-b").path)
            // v0.1.0 dials this release and is refused: a listener here speaks only handshake
            // version 2, which v0.1.0 cannot (answering version 1 would name this device to
            // anyone). `a` does not know `b` yet, so only `b` dials.
            try await b.run("peers", "add", a.id, "--address", a.listen)
            try await waitUntil("the old release reports its dial to the new one refused", timeout: 30) {
                let peer = await b.peerStatus(a.id)
                return peer?["connected"] == .bool(false) && (peer?["reason"]?.stringValue ?? "").contains("handshake")
            }
            #expect(try await a.peerStatus(b.id) == nil)
            // This release dials v0.1.0 (version 2, refused at message 1, then version 1) and they sync.
            try await a.device.ok("peers", "add", b.id, "--address", b.agent.listen)
            try await waitUntil("the new release is connected to the old one", timeout: 30) {
                (try? await a.peerStatus(b.id)?["connected"]) == .bool(true)
            }

            // Written by this release: a persona from a card (fields v0.1.0 never wrote), a
            // conversation, and a record of a collection v0.1.0 does not know.
            let card = dir.appendingPathComponent("card.png")
            try MigrationCLITests.cardPNG(name: "Vesper").write(to: card)
            try await a.device.ok("import", card.path, "--persona", "vesper")
            let chat = dir.appendingPathComponent("conversations.json")
            try Data(MigrationCLITests.chatGPT.utf8).write(to: chat)
            try await a.device.ok("import", chat.path)
            let foreign = dir.appendingPathComponent("foreign.jsonl")
            try Data((try await Self.foreignCollectionLine(Device(data: dir.appendingPathComponent("scratch").path),
                                                           collection: "stickers", id: "s1") + "\n").utf8).write(to: foreign)
            try await a.device.ok("import", foreign.path)

            let persona = try #require(await a.record("personas", "vesper"))
            try await waitUntil("the old release has the new release's persona, every field", timeout: 30) {
                await b.record("personas", "vesper")?["fields"] == persona["fields"]
            }
            #expect(persona["fields"]?.objectValue?["avatar_png"]?.stringValue?.isEmpty == false)
            try await waitUntil("the old release has the conversation", timeout: 30) {
                await b.record("conversations", "chatgpt.c1.mb")?["fields"]?.objectValue?["content"] == "Yes."
            }
            // Written by the old release: reaches the new one.
            try await b.run("put", "memories", "m-old", "--json", #"{"text":"written by v0.1.0"}"#)
            try await waitUntil("the new release has the old release's memory", timeout: 30) {
                await a.record("memories", "m-old")?["fields"]?.objectValue?["text"] == "written by v0.1.0"
            }
            // A later edit of a new field, after both were connected, travels too (live push).
            try await a.device.ok("put", "personas", "vesper", "--json", #"{"card_root":{"fav":true}}"#)
            try await waitUntil("the edit of a new field reaches the old release", timeout: 30) {
                await b.record("personas", "vesper")?["fields"]?.objectValue?["card_root"] == ["fav": true]
            }
            // What v0.1.0 does with a collection it does not know is fixed: it refuses such a
            // record, so this release holds it back from a protocol-1 peer (SPEC 3.6) and the
            // session goes on; v0.1.0 never sees it.
            #expect(await a.record("stickers", "s1") == nil) // the local API serves the user collections only
            #expect(try await Self.exportLines(hubsyncPath, a.device.data)["stickers/s1"] != nil)
            await a.stop()

            // Records written by the new release survive a trip through the old one: a new device
            // that only ever meets the old one gets them byte for byte (same state, same digest).
            let c = try await AgentProcess(Device(data: dir.appendingPathComponent("new-c").path))
            try await c.device.ok("peers", "add", b.id, "--address", b.agent.listen)
            try await b.run("peers", "add", c.id, "--address", c.listen)
            let fromA = try await Self.exportLines(hubsyncPath, a.device.data)
            try await waitUntil("the third device has the persona through the old release", timeout: 30) {
                await c.record("personas", "vesper")?["fields"]?.objectValue?["card_root"] == ["fav": true]
            }
            try await waitUntil("the third device has the conversation through the old release", timeout: 30) {
                await c.record("conversations", "chatgpt.c1.mb") != nil
            }
            let fromC = try await Self.exportLines(hubsyncPath, c.device.data)
            for key in ["personas/vesper", "personas/vesper", "conversations/chatgpt.c1.ma", "conversations/chatgpt.c1.mb",
                        "memories/vesper.book.1"] {
                #expect(fromC[key] != nil && fromC[key] == fromA[key], "\(key) changed on its way through v0.1.0")
            }
            #expect(fromC["stickers/s1"] == nil)
            await c.stop()
            _ = await b.agent.stop()

            // The store v0.1.0 made opens in this release (its schema migrations run from there)
            // with every record intact, and v0.1.0 still opens it afterwards.
            let oldView = try await Self.exportLines(old, b.data)
            let newView = try await Self.exportLines(hubsyncPath, b.data)
            #expect(!oldView.isEmpty && newView == oldView)
            #expect(try await Self.exportLines(old, b.data) == oldView)
        }
    }

    /// Between two devices of this release (protocol 2), a record of a collection neither knows
    /// is kept and relayed like any other.
    @Test func unknownCollectionsAreRelayedBetweenThisRelease() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let a = try await AgentProcess(Device(data: dir.appendingPathComponent("a").path))
            let b = try await AgentProcess(Device(data: dir.appendingPathComponent("b").path))
            let foreign = dir.appendingPathComponent("foreign.jsonl")
            try Data((try await Self.foreignCollectionLine(Device(data: dir.appendingPathComponent("scratch").path),
                                                           collection: "stickers", id: "s1") + "\n").utf8).write(to: foreign)
            try await a.device.ok("import", foreign.path)
            try await pair(a, b)
            let want = try #require(try await Self.exportLines(hubsyncPath, a.device.data)["stickers/s1"])
            try await waitUntil("b keeps the record of a collection it does not know", timeout: 30) {
                try await Self.exportLines(hubsyncPath, b.device.data)["stickers/s1"] == want
            }
            await a.stop()
            await b.stop()
        }
    }
}
