import Foundation
import HubSyncCore
@testable import HubSyncMigration
import HubSyncTestSupport
import Testing

@Suite struct CardTests {
    /// The persona and memories a card file gives.
    func personaOf(_ c: Collected) throws -> ImportedRecord {
        try #require(c.records.first { $0.collection == "personas" })
    }

    @Test func v2JSONKeepsEveryKeyAndMapsTheLorebook() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("card.json")
            try Data(JSON.serialize(Fixtures.v2Card()).utf8).write(to: url)
            let c = try importFile(url)
            let p = try personaOf(c)
            #expect(p.fields["name"] == "Seraphina")
            #expect(p.fields["unknown_key"] == ["kept": true])
            #expect(p.fields["extensions"]?.objectValue?["world"] == "Eldoria")
            #expect(p.fields["card_data_other"] == ["nothing": nil])
            #expect(p.fields["card_root"]?.objectValue?["chat"] == "old")
            #expect(p.fields["card_spec"] == "chara_card_v2")
            let memories = c.records.filter { $0.collection == "memories" }
            #expect(memories.map(\.id).sorted() == ["\(p.id).book.7", "\(p.id).book.i1"])
            let m = try #require(memories.first { $0.id.hasSuffix(".7") })
            #expect(m.fields["text"] == "Eldoria is an old forest.")
            #expect(m.fields["persona"] == .string(p.id))
            #expect(m.fields["tags"] == ["lorebook", "eldoria", "forest"])
            #expect(m.fields["lorebook_entry"]?.objectValue?["extensions"] == ["position": 1, "depth": 4])
        }
    }

    @Test(arguments: ["v2", "v3"], ["json", "png", "charx"])
    func exportedCardImportsAsTheSamePersona(spec: String, container: String) throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            // The source: a PNG card, so the avatar is there for every container.
            let src = dir.appendingPathComponent("src.png")
            try Fixtures.write(Fixtures.png(extra: [Fixtures.textChunk("chara", json: Fixtures.v2Card())]), to: src)
            let imported = try importFile(src)
            let first = try personaOf(imported)
            let memories = imported.records.filter { $0.collection == "memories" }
            // Export as a card from the persona's fields and its lorebook memories, then import that.
            let card = try CardMapping.card(fromPersona: first.fields.filter { !$0.value.isNull }, lorebook: memories.map(\.fields))
            let target: CharacterCard.Spec = spec == "v3" ? .v3 : .v2
            let out = dir.appendingPathComponent("out.\(container)")
            guard container != "charx" || target == .v3 else {
                // A CHARX holds V3 only.
                #expect(throws: FormatProblem.self) { try CardFile.write(card, spec: target, container: .charx) }
                return
            }
            try Fixtures.write(try CardFile.write(card, spec: target, container: CardFile.Container(rawValue: container)!), to: out)
            let again = try importFile(out)
            #expect(try personaOf(again).id == first.id)
            var expected = first.fields
            // What the spec requires and the card lacked comes back empty: the book's extensions.
            expected["character_book"] = ["name": "World", "extensions": [:]]
            if target == .v3 {
                expected["card_spec"] = "chara_card_v3"
                expected["card_spec_version"] = "3.0"
                expected["group_only_greetings"] = []
            }
            // A JSON card carries no picture; PNG and CHARX give the same one back, byte for byte.
            if container == "json" { expected["avatar_png"] = nil; expected["avatar_parts"] = nil }
            if container == "charx" {
                expected["assets"] = [["type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"]]
            }
            #expect(try personaOf(again).fields == expected)
            // The lorebook memories: the same (V3 adds the member it requires of each entry).
            var expectedMemories = memories
            for i in expectedMemories.indices where target == .v3 {
                guard case .object(var entry)? = expectedMemories[i].fields["lorebook_entry"] else { continue }
                entry["use_regex"] = false
                expectedMemories[i].fields["lorebook_entry"] = .object(entry)
            }
            #expect(again.records.filter { $0.collection == "memories" } == expectedMemories)
        }
    }

    @Test func sameSpecRoundTripIsExact() throws {
        for cardJSON in [Fixtures.v2Card(), Fixtures.v3Card, Fixtures.v1Card] {
            let card = try CharacterCard(json: cardJSON, place: nil)
            let fields = CardMapping.personaFields(card)
            let memories = CardMapping.lorebookMemories(card, personaID: "p")
            let back = try CardMapping.card(fromPersona: fields.filter { !$0.value.isNull }, lorebook: memories.map(\.fields))
            #expect(back.data == card.data)
            #expect(back.root == card.root)
            if card.spec != .v1 { #expect(back.json(as: card.spec) == card.json(as: card.spec)) }
        }
        // A card with every member its spec requires is written back as it was.
        #expect(try CharacterCard(json: Fixtures.v3Card, place: nil).json(as: .v3) == Fixtures.v3Card)
    }

    /// The lorebook's entries are the memories: an edited text, tags added and removed, a
    /// deleted memory and the book's order show in the written card.
    @Test func theLorebookIsRebuiltFromItsMemories() throws {
        let card = try CharacterCard(json: Fixtures.v2Card(), place: nil)
        let persona = CardMapping.personaFields(card)
        #expect(persona["character_book"] == ["name": "World"])
        var memories = CardMapping.lorebookMemories(card, personaID: "sera").map(\.fields)
        #expect(memories.map { $0["source_id"] } == ["7", "i1"])
        #expect(memories.map { $0["position"] } == [0, 1])
        #expect(memories[0]["lorebook_entry"]?.objectValue?["content"] == nil)
        #expect(memories[0]["lorebook_entry"]?.objectValue?["keys"] == nil) // they are the tags
        memories[0]["text"] = "Eldoria burned."
        memories[0]["tags"] = ["lorebook", "forest", "ash", "cinder"] // "eldoria" removed, two added
        let written = try CardMapping.card(fromPersona: persona, lorebook: memories.reversed())
        let entries = try #require(written.data["character_book"]?.objectValue?["entries"]?.arrayValue)
        #expect(entries.count == 2)
        #expect(entries[0].objectValue?["content"] == "Eldoria burned.")
        #expect(entries[0].objectValue?["keys"] == ["ash", "cinder", "forest"])
        #expect(entries[0].objectValue?["id"] == 7)
        #expect(entries[1].objectValue?["content"] == "The moon is green.")
        // A deleted memory is an entry gone; no memories at all is an empty book.
        let one = try CardMapping.card(fromPersona: persona, lorebook: [memories[1]])
        #expect(one.data["character_book"]?.objectValue?["entries"]?.arrayValue?.count == 1)
        let none = try CardMapping.card(fromPersona: persona)
        #expect(none.data["character_book"] == ["name": "World", "entries": []])
        // A persona imported before entries became memories keeps the entries it holds.
        var old = persona
        old["character_book"] = Fixtures.book
        #expect(try CardMapping.card(fromPersona: old).data["character_book"] == Fixtures.book)
    }

    /// What the specs require of written cards: V2's members (filled when missing), V3's
    /// `group_only_greetings`, a V3 PNG's `chara` copy saying it is a backfill, a CHARX's icon.
    @Test func writtenCardsHaveWhatTheSpecsRequire() throws {
        let v1 = try CharacterCard(json: Fixtures.v1Card, place: nil)
        let data = try #require(v1.json(as: .v2).objectValue?["data"]?.objectValue)
        for (k, v) in CharacterCard.requiredData { #expect(data[k] != nil && (Fixtures.v1Card.objectValue?[k] ?? v) == data[k], "\(k)") }
        #expect(v1.json(as: .v2).objectValue?["spec_version"] == "2.0")
        #expect(v1.json(as: .v3).objectValue?["data"]?.objectValue?["group_only_greetings"] == [])

        var card = try CharacterCard(json: Fixtures.v2Card(), place: nil)
        card.avatar = Fixtures.png()
        let png = try PNGFile(reading: try CardFile.write(card, spec: .v3, container: .png))
        let texts = Dictionary(uniqueKeysWithValues: png.textChunks().map { ($0.keyword, $0.text) })
        func decode(_ b: [UInt8]?) throws -> [String: Value] {
            let text = try #require(b)
            let bytes = try #require(Data(base64Encoded: Data(text)))
            return try #require(try JSON.parse([UInt8](bytes)).objectValue?["data"]?.objectValue)
        }
        #expect(try decode(texts["chara"])["creator_notes"]?.stringValue?.hasPrefix("This character card is Character Card V3") == true)
        #expect(try decode(texts["ccv3"])["creator_notes"] == "")
        // A V2 PNG's chunk is the card as it is.
        let v2png = try PNGFile(reading: try CardFile.write(card, spec: .v2, container: .png))
        #expect(try decode(v2png.textChunks().first?.text)["creator_notes"] == "")

        // CHARX: an icon without a file (ccdefault:) is pointed at the avatar; a JPEG avatar is .jpeg.
        var jpeg = card
        jpeg.avatar = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]
        jpeg.data["assets"] = [["type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"], ["type": "background", "uri": "ccdefault:", "name": "main", "ext": "png"]]
        let entries = try Zip.read(try CardFile.write(jpeg, spec: .v3, container: .charx))
        #expect(entries.map(\.name) == ["card.json", "assets/icon/images/main.jpeg"])
        let assets = try JSON.parse(entries[0].data).objectValue?["data"]?.objectValue?["assets"]
        #expect(assets == [["type": "icon", "uri": "embeded://assets/icon/images/main.jpeg", "name": "main", "ext": "jpeg"],
                           ["type": "background", "uri": "ccdefault:", "name": "main", "ext": "png"]])
        #expect(throws: FormatProblem.self) { try CardFile.write(card, spec: .v2, container: .charx) }
        // Read back, the avatar is found through the asset.
        let back = try CardFile.read(try CardFile.write(jpeg, spec: .v3, container: .charx), container: .charx)
        #expect(back.avatar == jpeg.avatar)
        #expect(back.notes.isEmpty)
    }

    /// Asset paths that could leave the folder a zip is unpacked in are never read or written,
    /// an icon that is not an image is not taken as the avatar, and errors show control
    /// characters escaped.
    @Test func hostileCHARXPathsAndTextsAreHarmless() throws {
        for uri in ["embeded://../../x.png", "embeded:///etc/x.png", "embeded://a\\b.png", "embeded://c:/x.png", "embeded://a//b.png", "embeded://"] {
            #expect(CardFile.embeddedPath(uri) == nil, "\(uri)")
        }
        #expect(CardFile.embeddedPath("embeded://assets/icon/images/a.png") == "assets/icon/images/a.png")
        var card = try CharacterCard(json: Fixtures.v3Card, place: nil)
        card.avatar = Fixtures.png()
        card.data["assets"] = [["type": "icon", "uri": "embeded://../../../tmp/pwned.png", "name": "main", "ext": "png"]]
        let entries = try Zip.read(try CardFile.write(card, spec: .v3, container: .charx))
        #expect(entries.map(\.name) == ["card.json", "assets/icon/images/main.png"])
        // A zip under the icon's name is not a picture: not kept, and said.
        let read = try CardFile.read(Zip.write([
            Zip.Entry(name: "card.json", data: Array(JSON.serialize(Fixtures.v3Card).utf8)),
            Zip.Entry(name: "assets/icon/images/face.png", data: Zip.write([])),
        ]), container: .charx)
        #expect(read.avatar == nil)
        #expect(read.notes.map(\.place) == ["zip entry assets/icon/images/face.png"])
        let error = MigrationError(file: "e\u{1B}[31m.png", place: "tEXt \"\u{1B}]0;x\u{07}\"", "bad \u{9B}")
        #expect(!error.description.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        #expect(error.description.contains("\\u{1B}[31m.png"))
    }

    /// A CHARX's files other than the card and its avatar are not kept, and the import says so.
    @Test func charxFilesBesideTheAvatarAreSaid() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("card.charx")
            try Fixtures.write(Zip.write([
                Zip.Entry(name: "card.json", data: Array(JSON.serialize(Fixtures.v3Card).utf8)),
                Zip.Entry(name: "assets/icon/images/face.png", data: Fixtures.png()),
                Zip.Entry(name: "assets/background/images/sky.png", data: Fixtures.png()),
            ]), to: url)
            let c = try importFile(url)
            #expect(c.notes.map(\.place) == ["zip entry assets/background/images/sky.png"])
            #expect(c.notes.first?.reason.contains("not kept") == true)
        }
    }

    @Test func pngPrefersCCV3AndMatchesKeywordsInAnyCase() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("both.png")
            try Fixtures.write(Fixtures.png(extra: [Fixtures.textChunk("Chara", json: Fixtures.v2Card(name: "Old")),
                                                    Fixtures.textChunk("CCV3", json: Fixtures.v3Card)]), to: url)
            let p = try personaOf(try importFile(url))
            #expect(p.fields["name"] == "月纱")
            #expect(p.fields["description"] == "第一行\r\n第二行")
            // The avatar is the image without its card chunks.
            let avatar = try #require(p.fields["avatar_png"]?.stringValue.flatMap { Data(base64Encoded: $0) })
            #expect([UInt8](avatar) == Fixtures.png())
        }
    }

    @Test func v1CardInPNG() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("v1.png")
            try Fixtures.write(Fixtures.png(extra: [Fixtures.textChunk("chara", json: Fixtures.v1Card)]), to: url)
            let p = try personaOf(try importFile(url))
            #expect(p.fields["card_spec"] == "chara_card_v1")
            #expect(p.fields["personality"] == "cold")
            #expect(p.fields["card_root"]?.objectValue?["metadata"]?.objectValue?["tool"] == ["name": "Editor"])
        }
    }

    @Test func charxWithDeflatedEntriesAndItsIcon() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("card.charx")
            let icon = Fixtures.png()
            try Fixtures.write(Fixtures.deflatedZip([
                Zip.Entry(name: "card.json", data: Array(JSON.serialize(Fixtures.v3Card).utf8)),
                Zip.Entry(name: "assets/icon/images/face.png", data: icon),
            ]), to: url)
            let c = try importFile(url)
            let p = try personaOf(c)
            #expect(p.fields["nickname"] == "Yue")
            #expect(p.fields["avatar_png"] == .string(Data(icon).base64EncodedString()))
            // Written back as CHARX, the icon goes to the path the card names.
            let card = try CardMapping.card(fromPersona: p.fields.filter { !$0.value.isNull })
            let entries = try Zip.read(try CardFile.write(card, spec: .v3, container: .charx))
            #expect(entries.map(\.name) == ["card.json", "assets/icon/images/face.png"])
            #expect(entries[1].data == icon)
        }
    }

    @Test func personaOptionNamesThePersona() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("card.json")
            try Data(JSON.serialize(Fixtures.v2Card()).utf8).write(to: url)
            let c = try importFile(url, persona: "sera")
            #expect(try personaOf(c).id == "sera")
            #expect(c.records.filter { $0.collection == "memories" }.allSatisfy { $0.fields["persona"] == "sera" && $0.id.hasPrefix("sera.book.") })
        }
    }

    /// Each bad card: an error naming the file and the place; the message says what is wrong.
    @Test func badCardsAreRefusedWithTheirPlace() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let good = Fixtures.png(extra: [Fixtures.textChunk("chara", json: Fixtures.v2Card())])
            var badCRC = good
            badCRC[20] ^= 0xFF // inside the IHDR chunk's data
            let cases: [(String, [UInt8], String, String?)] = [
                ("nocard.png", Fixtures.png(), "holds no character card", nil),
                ("truncated.png", Array(good.prefix(good.count - 30)), "truncated", "chunk"),
                ("crc.png", badCRC, "CRC does not match", "chunk"),
                ("base64.png", Fixtures.png(extra: [PNGFile.textChunk(keyword: "chara", text: Array("!!!not base64***".utf8))]),
                 "not base64", "tEXt chunk \"chara\""),
                ("json.png", Fixtures.png(extra: [PNGFile.textChunk(keyword: "chara", text: Array(Data("{\"spec\":".utf8).base64EncodedString().utf8))]),
                 "JSON does not decode", "tEXt chunk \"chara\""),
                ("noname.json", Array(#"{"spec":"chara_card_v2","data":{"description":"x"}}"#.utf8), "data.name", nil),
                ("nodata.json", Array(#"{"spec":"chara_card_v3","spec_version":"3.0"}"#.utf8), "no \"data\" object", nil),
                ("badspec.json", Array(#"{"spec":"chara_card_v9","data":{"name":"x"}}"#.utf8), "unknown card spec", nil),
                ("itxt.png", Fixtures.png(extra: [PNGFile.Chunk(type: "iTXt", data: Array("RPGGO.Metadata".utf8) + [0, 0, 0, 0, 0] + Array("e30=".utf8))]),
                 "iTXt \"RPGGO.Metadata\"", nil),
                ("zip.charx", Zip.write([Zip.Entry(name: "other.json", data: [])]), "no card.json", nil),
            ]
            for (name, bytes, message, place) in cases {
                let url = dir.appendingPathComponent(name)
                try Fixtures.write(bytes, to: url)
                do {
                    _ = try importFile(url, format: .card)
                    Issue.record("\(name) was accepted")
                } catch let e as MigrationError {
                    #expect(e.file == name)
                    #expect(e.message.contains(message), "\(name): \(e.message)")
                    if let place { #expect(e.place?.contains(place) == true, "\(name): \(e.place ?? "no place")") }
                    #expect(e.description.contains("nothing was imported"))
                }
            }
        }
    }

    @Test func pngChunksRoundTripWithCRCs() throws {
        let bytes = Fixtures.png(extra: [PNGFile.textChunk(keyword: "k", text: [1, 2, 3])])
        let png = try PNGFile(reading: bytes)
        #expect(png.chunks.map(\.type) == ["IHDR", "IDAT", "tEXt", "IEND"])
        #expect(png.bytes() == bytes)
        // CRC-32 check value of "123456789".
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func zipStoredRoundTripAndDamage() throws {
        var rng = SeededRandom(seed: 13)
        let entries = (0..<5).map { Zip.Entry(name: "f\($0).bin", data: rng.bytes(count: Int(rng.next() % 5000))) }
        let zip = Zip.write(entries)
        #expect(try Zip.read(zip).map(\.data) == entries.map(\.data))
        #expect(try Zip.read(Fixtures.deflatedZip(entries)).map(\.data) == entries.map(\.data))
        var damaged = zip
        damaged[40] ^= 1
        #expect(throws: FormatProblem.self) { try Zip.read(damaged) }
        #expect(throws: FormatProblem.self) { try Zip.read(Array(zip.prefix(zip.count - 10))) }
        // A hostile entry that claims 2 GiB once inflated is refused before anything is allocated.
        var bomb = Zip.write([Zip.Entry(name: "card.json", data: Array("{}".utf8))])
        let directory = Int(bomb[bomb.count - 6]) | Int(bomb[bomb.count - 5]) << 8
        bomb.replaceSubrange(directory + 24 ..< directory + 28, with: [0xFF, 0xFF, 0xFF, 0x7F])
        #expect { try Zip.read(bomb) } throws: { ($0 as? FormatProblem)?.message.contains("larger than 64 MiB") == true }
    }
}
