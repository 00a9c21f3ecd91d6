import Foundation
import HubSyncCore

/// Import speed of other tools' files beside the plain import path, and the memory a large
/// ChatGPT export takes (it is streamed).
extension Bench {
    func migrationFigures() throws -> [Row] {
        var rows: [Row] = []
        let count = options.records
        let perConversation = 100
        let chatgpt = work + "/conversations.json", plain = work + "/conversations.jsonl"
        try writeChatGPTExport(to: chatgpt, messages: count, perConversation: perConversation, textBytes: 400,
                               plainCopy: plain)
        for (name, file) in [("plain records (hubsync import)", plain), ("ChatGPT export (hubsync import, streamed)", chatgpt)] {
            var rates: [Double] = [], rss: [Double] = []
            for run in 0..<options.runs {
                let data = work + "/import-\(run)"
                try runCLI(["init", "--data", data])
                let (kb, secs) = try measureCLIPeak(["import", file, "--data", data])
                rates.append(Double(count) / secs)
                rss.append(Double(kb) / 1024)
                try? FileManager.default.removeItem(atPath: data)
            }
            rows.append(Row(name: "import \(count) messages: \(name)", value: "\(Int(median(rates)))/s",
                            rate: "(peak RSS \(fmt(median(rss), 1)) MB)", goal: "beside each other"))
        }
        // About 200 MB of conversations.json: peak RSS of the whole import.
        let big = work + "/conversations-200mb.json"
        let bigCount = 100_000
        try writeChatGPTExport(to: big, messages: bigCount, perConversation: 200, textBytes: 1_800, plainCopy: nil)
        let size = Double((try FileManager.default.attributesOfItem(atPath: big)[.size] as? Int) ?? 0) / 1e6
        let data = work + "/import-big"
        try runCLI(["init", "--data", data])
        let (kb, secs) = try measureCLIPeak(["import", big, "--data", data])
        rows.append(Row(name: "import a \(Int(size)) MB ChatGPT conversations.json (\(bigCount) messages)",
                        value: "\(fmt(Double(kb) / 1024, 1)) MB RSS", rate: "(\(fmt(secs, 1)) s, \(Int(Double(bigCount) / secs))/s)",
                        goal: "< 150 MB"))
        try? FileManager.default.removeItem(atPath: data)
        try? FileManager.default.removeItem(atPath: big)
        return rows
    }

    /// A ChatGPT export in the shape of the real one (a `mapping` tree, `current_node`), and
    /// optionally the same messages as plain-record lines.
    func writeChatGPTExport(to path: String, messages: Int, perConversation: Int, textBytes: Int, plainCopy: String?) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        var p: FileHandle?
        if let plainCopy {
            FileManager.default.createFile(atPath: plainCopy, contents: nil)
            p = try FileHandle(forWritingTo: URL(fileURLWithPath: plainCopy))
        }
        var rng = SplitMix(seed: 7)
        let words = ["tea", "garden", "river", "code", "music", "light", "quiet", "idea", "walk", "book"]
        var buffer = "[", plainBuffer = ""
        var written = 0, conv = 0
        while written < messages {
            let n = min(perConversation, messages - written)
            var mapping: [String: Value] = ["root": ["id": "root", "parent": nil, "children": ["n0"], "message": nil]]
            for i in 0..<n {
                var text = ""
                while text.utf8.count < textBytes { text += words[Int(rng.next() % 10)] + " " }
                let role = i % 2 == 0 ? "user" : "assistant"
                mapping["n\(i)"] = ["id": .string("n\(i)"), "parent": .string(i == 0 ? "root" : "n\(i - 1)"),
                                    "children": i + 1 < n ? [.string("n\(i + 1)")] : [],
                                    "message": ["id": .string("c\(conv)-m\(i)"), "author": ["role": .string(role)],
                                                "create_time": .double(1_700_000_000.25 + Double(i)),
                                                "content": ["content_type": "text", "parts": [.string(text)]]]]
                if p != nil {
                    plainBuffer += JSON.serialize(["collection": "conversations", "id": .string("chatgpt.c\(conv).c\(conv)-m\(i)"),
                                                   "fields": ["conversation": .string("chatgpt.c\(conv)"), "role": .string(role),
                                                              "content": .string(text)]]) + "\n"
                }
            }
            let conversation: Value = ["id": .string("c\(conv)"), "title": .string("Conversation \(conv)"),
                                       "create_time": 1_700_000_000.5, "current_node": .string("n\(n - 1)"), "mapping": .object(mapping)]
            buffer += (conv == 0 ? "" : ",") + JSON.serialize(conversation)
            written += n
            conv += 1
            if buffer.utf8.count > 1 << 20 { h.write(Data(buffer.utf8)); buffer = "" }
            if plainBuffer.utf8.count > 1 << 20 { p?.write(Data(plainBuffer.utf8)); plainBuffer = "" }
        }
        h.write(Data((buffer + "]\n").utf8))
        try h.close()
        p?.write(Data(plainBuffer.utf8))
        try p?.close()
    }
}
