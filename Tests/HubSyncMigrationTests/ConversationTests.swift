import Foundation
import HubSyncCore
@testable import HubSyncMigration
import HubSyncTestSupport
import Testing

@Suite struct ConversationTests {
    static func node(_ id: String, parent: String?, children: [String], role: String? = nil, text: String = "",
                     hidden: Bool = false) -> Value {
        var o: [String: Value] = ["id": .string(id), "parent": parent.map(Value.string) ?? nil, "children": .array(children.map(Value.string))]
        if let role {
            o["message"] = ["id": .string("m-" + id), "author": ["role": .string(role)], "create_time": 1_700_000_000.5,
                            "content": ["content_type": "text", "parts": [.string(text)]],
                            "metadata": ["is_visually_hidden_from_conversation": .bool(hidden)]]
        } else {
            o["message"] = nil
        }
        return .object(o)
    }

    /// root → sys(hidden) → u1 → {a1 (old), a2 (regenerated)}; a2 → u2 → a3; an empty node under u2 too.
    static func chatGPT(current: String?) -> Value {
        var conv: [String: Value] = ["id": "c1", "title": "Tea", "mapping": [
            "root": node("root", parent: nil, children: ["sys"]),
            "sys": node("sys", parent: "root", children: ["u1"], role: "system", text: "You are helpful", hidden: true),
            "u1": node("u1", parent: "sys", children: ["a1", "a2"], role: "user", text: "Tea? {\"]"),
            "a1": node("a1", parent: "u1", children: [], role: "assistant", text: "Old answer"),
            "a2": node("a2", parent: "u1", children: ["u2"], role: "assistant", text: "Yes, tea."),
            "u2": node("u2", parent: "a2", children: ["empty", "a3"], role: "user", text: "Green — please"),
            "empty": node("empty", parent: "u2", children: [], role: "assistant", text: ""),
            "a3": node("a3", parent: "u2", children: [], role: "assistant", text: "Here 🍵"),
        ]]
        if let current { conv["current_node"] = .string(current) }
        return .array([.object(conv)])
    }

    @Test(arguments: [Optional("a3"), nil])
    func chatGPTWalksTheShownBranch(current: String?) throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("conversations.json")
            try Data(JSON.serialize(Self.chatGPT(current: current)).utf8).write(to: url)
            let c = try importFile(url)
            #expect(c.records.map { $0.fields["content"] } == ["Tea? {\"]", "Yes, tea.", "Green — please", "Here 🍵"])
            #expect(c.records.map { $0.fields["role"] } == ["user", "assistant", "user", "assistant"])
            #expect(c.records.map(\.id) == ["chatgpt.c1.m-u1", "chatgpt.c1.m-a2", "chatgpt.c1.m-u2", "chatgpt.c1.m-a3"])
            #expect(c.records.allSatisfy { $0.fields["conversation"] == "chatgpt.c1" && $0.fields["source"] == "chatgpt" })
            #expect(c.records[0].fields["time"] == "2023-11-14T22:13:20.500Z")
            #expect(c.records.map { $0.fields["position"] } == [0, 1, 2, 3])
            #expect(c.notes.contains { $0.reason.contains("2 messages on other branches") })
            #expect(c.notes.contains { $0.reason == "hidden system message" })
            if current == "a3" { #expect(c.notes.contains { $0.reason == "empty message" } == false) }
        }
    }

    @Test func streamReadsAcrossBlockBoundaries() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("a.json")
            let values: [Value] = [["a": "x]\\\"}{["], ["b": [1, 2, ["c": "]]"]]], "s", 12, nil, ["é": "🍵"]]
            try Data(("  " + JSON.serialize(.array(values)) + "\n").utf8).write(to: url)
            for block in [1, 2, 3, 7, 64, 1 << 20] {
                let stream = try JSONElementStream(path: url.path, blockSize: block)
                var got: [Value] = []
                while let bytes = try stream.next() { got.append(try JSON.parse(bytes)) }
                #expect(got == values, "block size \(block)")
            }
            try Data("[{\"a\": 1}, {\"b\": ".utf8).write(to: url)
            let stream = try JSONElementStream(path: url.path, blockSize: 4)
            _ = try stream.next()
            #expect(throws: FormatProblem.self) { try stream.next() }
        }
    }

    @Test func claudeAndOpenWebUI() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let claude: Value = [["uuid": "k1", "name": "Pasta", "chat_messages": [
                ["uuid": "q", "sender": "human", "text": "Why?", "created_at": "2024-01-20T15:30:00Z"],
                ["uuid": "r", "sender": "assistant", "text": "", "content": [["type": "text", "text": "Because."]],
                 "created_at": "2024-01-20T15:31:00.250Z"],
            ]]]
            let url = dir.appendingPathComponent("claude.json")
            try Data(JSON.serialize(claude).utf8).write(to: url)
            let c = try importFile(url)
            #expect(c.records.map(\.id) == ["claude.k1.q", "claude.k1.r"])
            #expect(c.records.map { $0.fields["role"] } == ["user", "assistant"])
            #expect(c.records[1].fields["content"] == "Because.")
            #expect(c.records[0].fields["time"] == "2024-01-20T15:30:00.000Z")

            let webui: Value = [["id": "w1", "title": "Hi", "chat": ["history": ["currentId": "3", "messages": [
                "1": ["id": "1", "parentId": nil, "role": "user", "content": "Hello", "timestamp": 1_700_000_000],
                "2": ["id": "2", "parentId": "1", "role": "assistant", "content": "Old", "timestamp": 1_700_000_001],
                "3": ["id": "3", "parentId": "1", "role": "assistant", "content": "New", "timestamp": 1_700_000_002],
            ]]]]]
            let url2 = dir.appendingPathComponent("webui.json")
            try Data(JSON.serialize(webui).utf8).write(to: url2)
            let w = try importFile(url2)
            #expect(w.records.map { $0.fields["content"] } == ["Hello", "New"])
            #expect(w.records.map(\.id) == ["openwebui.w1.1", "openwebui.w1.3"])
            #expect(w.notes.contains { $0.reason.contains("1 messages on other branches") })
        }
    }

    @Test func sillyTavernBothHeaderFormsAndDateForms() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let messages = [
                #"{"name":"You","is_user":true,"is_system":false,"send_date":"May 18, 2023 7:25pm","mes":"Hi","extra":{}}"#,
                #"{"name":"Sera","is_user":false,"is_system":false,"send_date":"2023-5-18 @19h 25m 18s 345ms","mes":"Hello","swipes":["Hello","Hey"],"swipe_id":0,"extra":{"api":"x"}}"#,
                #"{"name":"Sys","is_user":false,"is_system":true,"send_date":1684437918345,"mes":"note"}"#,
                #"{"name":"Sera","is_user":false,"send_date":"2023-05-18T19:25:19.000Z","mes":"Bye"}"#,
            ]
            let headers = [
                #"{"user_name":"You","character_name":"Sera","create_date":"2023-5-18 @19h 25m 18s 345ms","chat_metadata":{"note_prompt":""}}"#,
                #"{"chat_metadata":{}}"#,
            ]
            for (i, header) in headers.enumerated() {
                let url = dir.appendingPathComponent("Sera - chat\(i).jsonl")
                try Data(([header] + messages).joined(separator: "\n").utf8).write(to: url)
                let c = try importFile(url)
                #expect(c.records.map { $0.fields["role"] } == ["user", "assistant", "system", "assistant"])
                #expect(c.records.map { $0.fields["time"] } == ["2023-05-18T19:25:00.000Z", "2023-05-18T19:25:18.345Z",
                                                                 "2023-05-18T19:25:18.345Z", "2023-05-18T19:25:19.000Z"])
                #expect(c.records[1].fields["swipes"] == ["Hello", "Hey"])
                #expect(c.records[1].fields["extra"] == ["api": "x"])
                #expect(Set(c.records.map { $0.fields["conversation"] }).count == 1)
                // The same file again gives the same IDs.
                #expect(try importFile(url).records == c.records)
            }
        }
    }

    @Test func markdownSectionsParagraphsAndTags() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("notes.md")
            try Data("---\ntitle: x\ntags: [tea, \"mornings\"]\n---\n# Tea\nLikes green tea.\n\nNot black.\n## Walks\nEvery morning.\n```\n# not a heading\n```\n".utf8).write(to: url)
            let c = try importFile(url, persona: "ada")
            #expect(c.records.map { $0.fields["text"] } == ["# Tea\nLikes green tea.\n\nNot black.", "## Walks\nEvery morning.\n```\n# not a heading\n```"])
            #expect(c.records.allSatisfy { $0.fields["tags"] == ["tea", "mornings"] && $0.fields["persona"] == "ada" })
            let txt = dir.appendingPathComponent("plain.txt")
            try Data("one\nstill one\n\ntwo\n\n\nthree".utf8).write(to: txt)
            #expect(try importFile(txt).records.map { $0.fields["text"] } == ["one\nstill one", "two", "three"])
        }
    }

    @Test func detectionAndUnknownFiles() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            func detect(_ name: String, _ text: String) throws -> Migration.Format {
                let url = dir.appendingPathComponent(name)
                try Data(text.utf8).write(to: url)
                return try Migration.detect(path: url.path, displayName: name)
            }
            #expect(try detect("a.jsonl", #"{"collection":"memories","id":"m","fields":{"text":"x"}}"# + "\n") == .hubsync)
            #expect(try detect("b", #"{"chat_metadata":{}}"# + "\n" + #"{"name":"a","is_user":true,"mes":"x"}"#) == .sillytavern)
            #expect(try detect("c.json", JSON.serialize(Self.chatGPT(current: nil))) == .chatgpt)
            #expect(try detect("d.js", "export const conversations = [{\"uuid\":\"1\",\"chat_messages\":[]}];\n") == .claude)
            #expect(try detect("e.json", JSON.serialize(Fixtures.v1Card)) == .card)
            for (name, text, message) in [("f.bin", "\u{1}\u{2}binary", "not a format HubSync imports"),
                                          ("g.json", #"{"hello":"world"}"#, "JSON of no known format"),
                                          ("h.json", "[]", "empty JSON array"),
                                          ("i.json", "[{\"mapping\": ", "truncated"),
                                          ("j.json", "", "the file is empty")] {
                do {
                    _ = try detect(name, text)
                    Issue.record("\(name) was accepted")
                } catch let error as MigrationError {
                    #expect(error.file == name)
                    #expect(error.message.contains(message), "\(name): \(error.message)")
                }
            }
        }
    }

    @Test func brokenConversationFileNamesThePlace() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("conversations.json")
            try Data("[{\"id\":\"c\",\"mapping\":{}},{\"id\":\"d\",\"mapping\":{\"x\":tru}}]".utf8).write(to: url)
            do {
                _ = try importFile(url, format: .chatgpt)
                Issue.record("accepted")
            } catch let e as MigrationError {
                #expect(e.place?.hasPrefix("conversation 2 (from byte 25), byte 50 of the file") == true, "\(e)")
                #expect(e.message.contains("JSON does not decode"))
            }
        }
    }
}
