import Foundation
import HubSyncCore
import Testing

/// `hubsync import` of other tools' files and `hubsync export-card`, through the real CLI.
@Suite struct MigrationCLITests {
    /// A 1×1 PNG with a V2 card in a `chara` chunk (the tests build their own fixtures).
    /// A PNG chunk: length, type, data, CRC-32.
    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let n = UInt32(data.count), t = Array(type.utf8)
        var crc: UInt32 = 0xFFFF_FFFF
        for b in t + data {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        crc = ~crc
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + t + data
            + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
    }

    static func cardPNG(name: String = "Seraphina",
                        entries: [Value] = [["id": 1, "keys": ["eldoria"], "content": "An old forest."]]) -> Data {
        let card: Value = ["spec": "chara_card_v2", "spec_version": "2.0", "data": [
            "name": .string(name), "description": "Guardian — of the forest", "first_mes": "Welcome.", "tags": ["fantasy"],
            "creator": "bench", "extensions": ["world": "Eldoria"],
            "character_book": ["entries": .array(entries)],
        ]]
        let text = Array("chara".utf8) + [0] + Array(Data(JSON.serialize(card).utf8).base64EncodedString().utf8)
        let idat: [UInt8] = [0x78, 0x01, 0x01, 0x02, 0x00, 0xFD, 0xFF, 0x00, 0x80, 0x00, 0x82, 0x00, 0x81]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0])
                    + chunk("IDAT", idat) + chunk("tEXt", text) + chunk("IEND", []))
    }

    static let chatGPT = """
        [{"id":"c1","title":"Tea","current_node":"b","mapping":{
          "r":{"id":"r","parent":null,"children":["a"],"message":null},
          "a":{"id":"a","parent":"r","children":["b"],"message":{"id":"ma","author":{"role":"user"},"create_time":1700000000,"content":{"content_type":"text","parts":["Tea?"]}}},
          "b":{"id":"b","parent":"a","children":[],"message":{"id":"mb","author":{"role":"assistant"},"create_time":1700000001,"content":{"content_type":"text","parts":["Yes."]}}}}}]
        """

    /// The data members Character Card V2 requires, which an exported card gains when missing.
    static let specMembers: Set<String> = ["name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
                                           "system_prompt", "post_history_instructions", "alternate_greetings", "tags", "creator",
                                           "character_version", "extensions"]

    /// The persona's lorebook memories' fields, in the book's order.
    func lorebook(_ d: Device, _ persona: String) async throws -> [[String: Value]] {
        let all = try #require(try await d.ok("list", "memories", "--json").json?.arrayValue).compactMap { $0.objectValue?["fields"]?.objectValue }
        return all.filter { $0["persona"] == .string(persona) && $0["source"] == "character-card-lorebook" }
            .sorted { a, b in
                func position(_ f: [String: Value]) -> Int64 { if case .int(let n)? = f["position"] { n } else { 0 } }
                return position(a) < position(b)
            }
    }

    /// The device's records as `hubsync export` writes them, without the header (which names the time).
    func export(_ d: Device) async throws -> [String] {
        // The records of the user's collections: the device's own `devices` records (its name) are not imported data.
        Array(try await d.ok("export", "-").stdout.split(separator: "\n").dropFirst().map(String.init)
            .filter { !$0.hasPrefix(#"{"collection":"devices""#) })
    }

    /// Writes the persona as a card (`export-card`), imports the card on a new device in `dir`,
    /// and returns the persona's fields there.
    func throughExportCard(_ d: Device, _ persona: String, spec: String, ext: String, in dir: URL) async throws -> [String: Value] {
        let out = dir.path + "." + ext
        try await d.ok("export-card", persona, "--out", out, "--spec", spec)
        let e = Device(data: dir.path)
        try await e.ok("init")
        try await e.ok("import", out)
        return try #require(try await e.ok("get", "personas", persona, "--json").json?.objectValue?["fields"]?.objectValue)
    }

    @Test func importTwiceChangesNothingAndCardsRoundTrip() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let d = Device(data: dir.appendingPathComponent("d").path)
            try await d.ok("init")
            let png = dir.appendingPathComponent("sera.png"), chat = dir.appendingPathComponent("conversations.json")
            let notes = dir.appendingPathComponent("notes.md")
            try Self.cardPNG().write(to: png)
            try Data(Self.chatGPT.utf8).write(to: chat)
            try Data("---\ntags: [tea]\n---\n# Tea\nGreen.\n# Walks\nMornings.\n".utf8).write(to: notes)
            let first = try await d.ok("import", png.path, chat.path, notes.path, "--json")
            let reports = try #require(first.json?.arrayValue)
            #expect(reports.map { $0.objectValue?["format"] } == ["card", "chatgpt", "markdown"])
            #expect(reports.map { $0.objectValue?["create"] } == [2, 2, 2])
            let before = try await export(d)
            #expect(before.count == 6)
            let again = try await d.ok("import", png.path, chat.path, notes.path, "--json")
            #expect(again.json?.arrayValue?.map { $0.objectValue?["unchanged"] } == [2, 2, 2])
            #expect(again.json?.arrayValue?.map { $0.objectValue?["written"] } == [0, 0, 0])
            #expect(try await export(d) == before)

            // export-card in every container and spec gives a card that imports as the same persona.
            let persona = try #require(reports[0].objectValue.flatMap { _ in
                before.compactMap { try? JSON.parse($0).objectValue }.first { $0["collection"] == "personas" }?["id"]?.stringValue
            })
            let original = try await d.ok("get", "personas", persona, "--json").json?.objectValue?["fields"]
            for (spec, exts) in [("v2", ["json", "png"]), ("v3", ["json", "png", "charx"])] {
                for ext in exts {
                    var fields = try await throughExportCard(d, persona, spec: spec, ext: ext, in: dir.appendingPathComponent("e-\(spec)-\(ext)"))
                    var expected = try #require(original?.objectValue)
                    // Members the spec requires that the card lacked come back empty.
                    for k in ["personality", "scenario", "mes_example", "creator_notes", "system_prompt", "post_history_instructions",
                              "character_version"] { expected[k] = "" }
                    expected["alternate_greetings"] = []
                    expected["character_book"] = ["extensions": [:]]
                    if spec == "v3" {
                        expected["card_spec"] = "chara_card_v3"
                        expected["card_spec_version"] = "3.0"
                        expected["group_only_greetings"] = []
                    }
                    if ext == "json" { expected["avatar_png"] = nil; fields["avatar_png"] = nil }
                    if ext == "charx" {
                        expected["assets"] = [["type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"]]
                    }
                    #expect(fields == expected, "\(spec) \(ext)")
                }
            }
            // A CHARX is V3: its default, and --spec v2 is refused.
            let refused = try await d.run("export-card", persona, "--out", dir.path + "/v2.charx", "--spec", "v2")
            #expect(refused.status == 2 && refused.stderr.contains("CHARX holds a Character Card V3"), "\(refused.stderr)")
            try await d.ok("export-card", persona, "--out", dir.path + "/default.charx")
            #expect(try await d.ok("import", dir.path + "/default.charx", "--dry-run", "--json").json?.objectValue?["format"] == "card")
        }
    }

    /// The lorebook's entries are memories linked to the persona: an edit of one on another
    /// device shows in the card `export-card` writes; importing that card changes nothing; a
    /// newer card without an entry removes its memory everywhere.
    @Test func lorebookMemoriesAreTheBookOnEveryDevice() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let a = try await AgentProcess(Device(data: dir.appendingPathComponent("a").path))
            let b = try await AgentProcess(Device(data: dir.appendingPathComponent("b").path))
            try await pair(a, b)
            let card = dir.appendingPathComponent("sera.png")
            try Self.cardPNG(entries: [["id": 1, "keys": ["eldoria"], "content": "An old forest."],
                                       ["id": 2, "keys": ["moon"], "content": "The moon is green."]]).write(to: card)
            try await a.device.ok("import", card.path, "--persona", "sera")
            let memory = try #require(await a.record("memories", "sera.book.1")?["fields"]?.objectValue)
            #expect(memory["persona"] == "sera" && memory["source_id"] == "1" && memory["position"] == 0)
            #expect(memory["source"] == "character-card-lorebook")
            #expect(memory["lorebook_entry"] == ["id": 1, "insertion_order": 0, "enabled": true, "extensions": [:]])
            #expect(memory["tags"] == ["lorebook", "eldoria"] || memory["tags"] == ["eldoria", "lorebook"])
            try await waitUntil("b has the lorebook memory", timeout: 30) { await b.record("memories", "sera.book.1") != nil }
            // Edited on b: the text and a new key.
            try await b.device.ok("put", "memories", "sera.book.1", "--json", #"{"text": "A forest, burned."}"#)
            try await b.device.ok("add", "memories", "sera.book.1", "tags", "ash")
            try await waitUntil("a has b's edit", timeout: 30) {
                let fields = await a.record("memories", "sera.book.1")?["fields"]?.objectValue
                return fields?["tags"]?.arrayValue?.contains("ash") == true && fields?["text"] == "A forest, burned."
            }
            let out = dir.appendingPathComponent("out.json")
            let wrote = try await a.device.ok("export-card", "sera", "--out", out.path)
            #expect(wrote.stdout.contains("2 lorebook entries from its memories"), "\(wrote.stdout)")
            let written = try JSON.parse([UInt8](try Data(contentsOf: out)))
            let entries = try #require(written.objectValue?["data"]?.objectValue?["character_book"]?.objectValue?["entries"]?.arrayValue)
            #expect(entries.map { $0.objectValue?["content"] } == ["A forest, burned.", "The moon is green."])
            #expect(entries.first?.objectValue?["keys"] == ["ash", "eldoria"])
            // Importing the written card changes nothing.
            let again = try #require(try await a.device.ok("import", out.path, "--persona", "sera", "--json").json?.objectValue)
            #expect(again["written"] == 0 && again["create"] == 0 && again["update"] == 0 && again["remove"] == 0, "\(again)")
            // A newer card without entry 2: its memory is removed, on b too.
            let newer = dir.appendingPathComponent("sera2.png")
            try Self.cardPNG(entries: [["id": 1, "keys": ["eldoria", "ash"], "content": "A forest, burned."]]).write(to: newer)
            let dry = try await a.device.ok("import", newer.path, "--persona", "sera", "--dry-run")
            #expect(dry.stdout.contains("would remove 1 lorebook memory"), "\(dry.stdout)")
            #expect(await a.record("memories", "sera.book.2")?["deleted"] == false)
            try await a.device.ok("import", newer.path, "--persona", "sera")
            try await waitUntil("the removed entry's memory is deleted on b", timeout: 30) {
                await b.record("memories", "sera.book.2")?["deleted"] == true
            }
            #expect(await b.record("memories", "sera.book.1")?["deleted"] == false)
            await a.stop()
            await b.stop()
        }
    }

    @Test func badFilesExitTwoNameThePlaceAndImportNothingFromThem() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let d = Device(data: dir.appendingPathComponent("d").path)
            try await d.ok("init")
            var png = [UInt8](Self.cardPNG())
            png[png.count - 20] ^= 0xFF // inside the tEXt chunk: its CRC no longer matches
            let cases: [(String, Data, String)] = [
                ("crc.png", Data(png), "CRC does not match"),
                ("cut.png", Self.cardPNG().prefix(60), "truncated"),
                ("noname.json", Data(#"{"spec":"chara_card_v2","data":{"description":"x"}}"#.utf8), "data.name"),
                ("what.bin", Data([0x01, 0x02, 0x03]), "not a format HubSync imports"),
                ("half.json", Data("[{\"id\":\"c\",\"mapping\":{}},{\"id\":".utf8), "truncated"),
            ]
            let good = dir.appendingPathComponent("conversations.json")
            try Data(Self.chatGPT.utf8).write(to: good)
            for (name, bytes, message) in cases {
                let url = dir.appendingPathComponent(name)
                try bytes.write(to: url)
                let before = try await export(d)
                let r = try await d.run("import", url.path)
                #expect(r.status == 2, "\(name): \(r.stderr)")
                #expect(r.stderr.contains(url.path) && r.stderr.contains(message), "\(name): \(r.stderr)")
                #expect(r.stderr.contains("nothing was imported from this file"), "\(name): \(r.stderr)")
                #expect(try await export(d) == before, "\(name)")
            }
            // A bad file among good ones: the good ones are imported, the exit status is still 2.
            let r = try await d.run("import", dir.appendingPathComponent("crc.png").path, good.path)
            #expect(r.status == 2)
            #expect(r.stderr.contains("1 of 2 files was not imported") && r.stderr.contains("crc.png"), "\(r.stderr)")
            #expect(try await export(d).count == 2)
        }
    }

    @Test func dryRunWritesNothingAndSaysWhy() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let d = Device(data: dir.appendingPathComponent("d").path)
            try await d.ok("init")
            let chat = dir.appendingPathComponent("c.json")
            try Data(Self.chatGPT.replacingOccurrences(of: "\"parts\":[\"Yes.\"]", with: "\"parts\":[\"\"]").utf8).write(to: chat)
            let r = try await d.ok("import", chat.path, "--dry-run", "--persona", "ada")
            #expect(r.stdout.contains("would import 1 record (1 conversation): 1 new, 0 updated, 0 unchanged"), "\(r.stdout)")
            #expect(r.stdout.contains("skipped conversation 1, node b: empty message"), "\(r.stdout)")
            #expect(try await export(d).isEmpty)
            let wrong = try await d.run("import", chat.path, "--format", "claude")
            #expect(wrong.status == 2)
            #expect(wrong.stderr.contains("not a Claude conversation"), "\(wrong.stderr)")
        }
    }

    /// `POST /v1/import` on a running agent: the same importers, the body the file.
    @Test func importThroughTheLocalAPI() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let agent = try await AgentProcess(Device(data: dir.appendingPathComponent("a").path))
            let token = try String(contentsOfFile: agent.device.data + "/api.token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let file = dir.appendingPathComponent("sera.png")
            try Self.cardPNG(name: "Nyx").write(to: file)
            func post(_ query: String, _ path: String, claimLength: Int? = nil) async throws -> (Int, Value?) {
                // Python's http.client posts the raw bytes, as the dashboard would (optionally
                // claiming another Content-Length).
                let script = """
                    import sys, http.client, urllib.parse
                    u = urllib.parse.urlsplit(sys.argv[1])
                    body = open(sys.argv[2], 'rb').read()
                    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                    headers = {'Authorization': 'Bearer ' + sys.argv[3], 'Content-Length': sys.argv[4] or str(len(body))}
                    c.request('POST', u.path + '?' + u.query, body=body, headers=headers)
                    r = c.getresponse(); print(r.status); print(r.read().decode())
                    """
                let r = try await runProgram("/usr/bin/env", ["python3", "-c", script, "http://\(agent.agent.api)/v1/import?\(query)", path, token,
                                                              claimLength.map(String.init) ?? ""])
                let lines = r.stdout.split(separator: "\n", maxSplits: 1).map(String.init)
                return (Int(lines.first ?? "") ?? 0, lines.count > 1 ? try? JSON.parse(lines[1]) : nil)
            }
            let (dryStatus, dry) = try await post("name=sera.png&dry_run=1", file.path)
            #expect(dryStatus == 200)
            #expect(dry?.objectValue?["create"] == 2)
            let (status, answer) = try await post("name=sera.png&persona=nyx", file.path)
            #expect(status == 200, "\(String(describing: answer))")
            #expect(answer?.objectValue?["written"] == 2)
            #expect(await agent.record("personas", "nyx")?["fields"]?.objectValue?["name"] == "Nyx")
            let (again, second) = try await post("name=sera.png&persona=nyx", file.path)
            #expect(again == 200 && second?.objectValue?["written"] == 0)
            let bad = dir.appendingPathComponent("bad.bin")
            try Data([1, 2, 3]).write(to: bad)
            let (badStatus, badAnswer) = try await post("name=bad.bin", bad.path)
            #expect(badStatus == 400)
            #expect(badAnswer?.objectValue?["error"]?.stringValue?.contains("bad.bin") == true)
            #expect(badAnswer?.objectValue?["imported"] == 0)

            // HubSync's own JSON Lines: plain records and another device's export, as `hubsync import` takes them.
            let plain = dir.appendingPathComponent("plain.jsonl")
            try Data((#"{"collection":"memories","id":"p1","fields":{"text":"one"}}"# + "\n"
                + #"{"collection":"memories","id":"p2","fields":{"text":"two","tags":["x"]}}"# + "\n").utf8).write(to: plain)
            let (plainDry, plainPlan) = try await post("name=plain.jsonl&dry_run=1", plain.path)
            #expect(plainDry == 200 && plainPlan?.objectValue?["format"] == "hubsync" && plainPlan?.objectValue?["create"] == 2, "\(String(describing: plainPlan))")
            #expect(await agent.record("memories", "p1") == nil)
            let (plainStatus, plainAnswer) = try await post("name=plain.jsonl", plain.path)
            #expect(plainStatus == 200 && plainAnswer?.objectValue?["written"] == 2, "\(String(describing: plainAnswer))")
            #expect(await agent.record("memories", "p2")?["fields"]?.objectValue?["tags"] == ["x"])
            let (_, plainAgain) = try await post("name=plain.jsonl", plain.path)
            #expect(plainAgain?.objectValue?["written"] == 0 && plainAgain?.objectValue?["unchanged"] == 2)
            let other = Device(data: dir.appendingPathComponent("other").path)
            try await other.ok("init")
            try await other.ok("put", "memories", "far", "--json", #"{"text": "from another device"}"#)
            let export = dir.appendingPathComponent("other.jsonl")
            try await other.ok("export", export.path)
            let (mergeStatus, merged) = try await post("name=other.jsonl&format=hubsync", export.path)
            // The export holds the memory and the other device's signed name record (SPEC 4.10).
            #expect(mergeStatus == 200 && merged?.objectValue?["collections"]?.objectValue?["memories"] == 1
                    && merged?.objectValue?["merged"] == 2, "\(String(describing: merged))")
            #expect(await agent.record("memories", "far")?["fields"]?.objectValue?["text"] == "from another device")
            // The same errors as the CLI's, as JSON: the place, and nothing imported.
            let (personaStatus, personaAnswer) = try await post("name=plain.jsonl&persona=nyx", plain.path)
            #expect(personaStatus == 400 && personaAnswer?.objectValue?["error"]?.stringValue?.contains("carry their own IDs") == true)
            let broken = dir.appendingPathComponent("broken.jsonl")
            try Data((#"{"collection":"memories","id":"b1","fields":{"text":"fine"}}"# + "\n{oops\n").utf8).write(to: broken)
            let (brokenStatus, brokenAnswer) = try await post("name=broken.jsonl", broken.path)
            #expect(brokenStatus == 400, "\(String(describing: brokenAnswer))")
            #expect(brokenAnswer?.objectValue?["line"] == 2 && brokenAnswer?.objectValue?["file"] == "broken.jsonl")
            #expect(brokenAnswer?.objectValue?["error"]?.stringValue?.contains("broken.jsonl:2: invalid JSON") == true, "\(String(describing: brokenAnswer))")
            #expect(await agent.record("memories", "b1") == nil)
            let (flagStatus, _) = try await post("name=plain.jsonl&dry_run=maybe", plain.path)
            #expect(flagStatus == 400)
            // Over the documented limit (1 GiB), by its Content-Length: refused before the body is read.
            let (largeStatus, large) = try await post("name=big.json", plain.path, claimLength: (1 << 30) + 1)
            #expect(largeStatus == 413, "\(String(describing: large))")
            #expect(large?.objectValue?["error"]?.stringValue?.contains("1024 MiB") == true)
            await agent.stop()
        }
    }

    /// A card whose picture is larger than one record holds: the avatar is kept in parts
    /// (preferences records), comes back whole in the PNG `export-card` writes, and a JSON card
    /// of the same persona leaves it alone. A text larger than a record is refused in the check,
    /// dry run included, naming the file.
    @Test func largePicturesAreKeptInPartsAndLargeTextsRefusedFirst() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let d = Device(data: dir.appendingPathComponent("d").path)
            try await d.ok("init")
            // A card PNG of about 1 MB: a private ancillary chunk of random bytes before IEND.
            var png = [UInt8](Self.cardPNG(name: "Big"))
            var noise = [UInt8](repeating: 0, count: 1_000_000)
            var rng = SystemRandomNumberGenerator()
            for i in noise.indices { noise[i] = UInt8.random(in: 0...255, using: &rng) }
            let iend = png.count - 12
            png.insert(contentsOf: Self.chunk("zzRd", noise), at: iend)
            let big = dir.appendingPathComponent("big.png")
            try Data(png).write(to: big)
            let dry = try await d.ok("import", big.path, "--persona", "big", "--dry-run")
            #expect(dry.stdout.contains("6 new"), "\(dry.stdout)") // the persona, 4 avatar parts, the lorebook memory
            try await d.ok("import", big.path, "--persona", "big")
            let fields = try #require(try await d.ok("get", "personas", "big", "--json").json?.objectValue?["fields"]?.objectValue)
            #expect(fields["avatar_png"] == nil)
            #expect(fields["avatar_parts"]?.objectValue?["count"] == 4, "\(String(describing: fields["avatar_parts"]))")
            #expect(try await d.ok("get", "preferences", "big.avatar.3", "--json").json?.objectValue?["fields"]?.objectValue?["persona"] == "big")
            // The picture comes back whole: the written PNG is the original with its card chunks.
            let out = dir.appendingPathComponent("out.png")
            try await d.ok("export-card", "big", "--out", out.path)
            let written = [UInt8](try Data(contentsOf: out))
            #expect(written.count > 1_000_000 && written.starts(with: png.prefix(33)))
            #expect(try await d.ok("import", out.path, "--persona", "big", "--json").json?.objectValue?["written"] == 0)
            // A JSON card of the same persona leaves the picture alone.
            let json = dir.appendingPathComponent("big.json")
            try await d.ok("export-card", "big", "--out", json.path)
            #expect(try await d.ok("import", json.path, "--persona", "big", "--json").json?.objectValue?["written"] == 0)
            #expect(try await d.ok("get", "personas", "big", "--json").json?.objectValue?["fields"]?.objectValue?["avatar_parts"] == fields["avatar_parts"])
            // A paragraph over a record's limit: refused in the check (dry run too), the file named, nothing written.
            let huge = dir.appendingPathComponent("huge.md")
            try Data(("# Small\nfine\n# Huge\n" + String(repeating: "a", count: 900_000) + "\n").utf8).write(to: huge)
            for extra in [["--dry-run"], []] {
                let r = try await hubsync(["import", huge.path, "--data", d.data] + extra)
                #expect(r.status == 2 && r.stderr.contains(huge.path) && r.stderr.contains("over the 768 KiB"), "\(r.stderr)")
            }
            #expect(try await d.ok("list", "memories", "--json").json?.arrayValue?.contains { $0.objectValue?["id"]?.stringValue?.hasPrefix("markdown.") == true } == false)
        }
    }

    /// This release is 0.2.0: `hubsync version`, `--version` and the hello (HelloReleaseTests).
    @Test func versionIsThisRelease() async throws {
        let r = try await hubsync(["version", "--json"])
        #expect(r.status == 0 && r.json?.objectValue?["hubsync"] == "0.2.0", "\(r.stdout)")
        #expect(try await hubsync(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.2.0")
    }

    /// The real files of ../shared/migration-fixtures, when present (read in place, never
    /// copied): each imports (or, for the PNG without a card and the one under a non-standard
    /// key, is refused with the reason), importing it again changes nothing, and each card comes
    /// back through `export-card`.
    @Test func sharedFixturesImportReimportAndRoundTrip() async throws {
        let candidates = [ProcessInfo.processInfo.environment["HUBSYNC_MIGRATION_FIXTURES"],
                          URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/migration-fixtures").path,
                          "/work/shared/migration-fixtures"].compactMap { $0 }
        guard let folder = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/SOURCES.md") }) else {
            print("sharedFixturesImportReimportAndRoundTrip: skipped: no migration-fixtures folder (set HUBSYNC_MIGRATION_FIXTURES)")
            return
        }
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var checked = 0
            for sub in ["cards", "chats"] {
                for name in try FileManager.default.contentsOfDirectory(atPath: folder + "/" + sub).sorted() where name.contains(".") {
                    let path = folder + "/" + sub + "/" + name
                    let d = Device(data: dir.appendingPathComponent("d\(checked)").path)
                    checked += 1
                    try await d.ok("init")
                    if name.contains("no-card") || name.contains("nonstandard-key") {
                        let r = try await d.run("import", path)
                        #expect(r.status == 2 && r.stderr.contains("holds no character card"), "\(name): \(r.stderr)")
                        continue
                    }
                    try await d.ok("import", path)
                    let before = try await export(d)
                    #expect(!before.isEmpty, "\(name)")
                    try await d.ok("import", path)
                    #expect(try await export(d) == before, "\(name): a second import changed the store")
                    guard let persona = before.compactMap({ try? JSON.parse($0).objectValue })
                        .first(where: { $0["collection"] == "personas" })?["id"]?.stringValue else { continue }
                    let fields = try #require(try await d.ok("get", "personas", persona, "--json").json?.objectValue?["fields"]?.objectValue)
                    let memories = try await lorebook(d, persona)
                    for ext in ["json", "charx"] + (fields["avatar_png"] == nil ? [] : ["png"]) {
                        let spec = fields["card_spec"] == "chara_card_v3" || ext == "charx" ? "v3" : "v2"
                        let target = dir.appendingPathComponent("e\(checked)-\(ext)")
                        let back = try await throughExportCard(d, persona, spec: spec, ext: ext, in: target)
                        // Every field comes back as it was; only what the spec requires is added.
                        let changing: Set<String> = ["card_spec", "card_spec_version", "character_book", "assets", "avatar_png", "avatar_parts"]
                        for (k, v) in fields where !changing.contains(k) { #expect(back[k] == v, "\(name) as .\(ext): \(k)") }
                        let added = Set(back.keys).subtracting(fields.keys)
                        #expect(added.isSubset(of: Self.specMembers.union(["group_only_greetings", "assets", "card_spec_version"])), "\(name) as .\(ext): \(added)")
                        if ext != "json" {
                            #expect(back["avatar_png"] == fields["avatar_png"] && back["avatar_parts"] == fields["avatar_parts"], "\(name) as .\(ext): the avatar")
                        }
                        #expect(back["card_spec"] == .string(spec == "v3" ? "chara_card_v3" : "chara_card_v2"))
                        // The lorebook's memories: the same texts and tags on the device that imported the card.
                        let again = try await lorebook(Device(data: target.path), persona)
                        #expect(again.map { $0["text"] } == memories.map { $0["text"] } && again.map { $0["tags"] } == memories.map { $0["tags"] },
                                "\(name) as .\(ext): the lorebook")
                        // Importing the written card there again changes nothing.
                        let twice = try await Device(data: target.path).ok("import", target.path + "." + ext, "--json").json?.objectValue
                        #expect(twice?["written"] == 0, "\(name) as .\(ext): \(String(describing: twice))")
                    }
                }
            }
            #expect(checked >= 12)
        }
    }
}
