import HubSyncCore
import Foundation

/// Character cards in their three containers: a JSON file, a PNG with a `tEXt` chunk, a CHARX zip.
public enum CardFile {
    public enum Container: String, Sendable, CaseIterable {
        case json, png, charx
    }

    /// Where a CHARX export puts the avatar when the card names none.
    static let charxIconPath = "assets/icon/images/main.png"

    /// Reads a card from a file's bytes.
    static func read(_ bytes: [UInt8], container: Container) throws(FormatProblem) -> CharacterCard {
        switch container {
        case .json:
            return try CharacterCard(json: parseJSON(bytes, place: nil), place: nil)
        case .png:
            return try readPNG(bytes)
        case .charx:
            return try readCHARX(bytes)
        }
    }

    /// Parses JSON; an error's place is `place` and the byte, counted from `base` (where the
    /// bytes start in the file) when given, else within the bytes.
    static func parseJSON(_ bytes: [UInt8], place: String?, base: Int? = nil) throws(FormatProblem) -> Value {
        do { return try JSON.parse(bytes) } catch {
            let at = base.map { "byte \($0 + error.offset) of the file" } ?? "byte \(error.offset)"
            throw FormatProblem(place.map { "\($0), \(at)" } ?? at, "the JSON does not decode: \(error.message)")
        }
    }

    /// The card in a PNG's `ccv3` chunk (preferred) or `chara` chunk, keywords in any case; the
    /// avatar is the PNG without those chunks.
    static func readPNG(_ bytes: [UInt8]) throws(FormatProblem) -> CharacterCard {
        let png = try PNGFile(reading: bytes)
        let texts = png.textChunks()
        let cardChunks = texts.filter { ["chara", "ccv3"].contains($0.keyword.lowercased()) }
        guard let chosen = cardChunks.first(where: { $0.keyword.lowercased() == "ccv3" }) ?? cardChunks.first else {
            let others = png.chunks.filter { ["tEXt", "iTXt", "zTXt"].contains($0.type) }.compactMap { c -> String? in
                c.data.firstIndex(of: 0).map { "\(c.type) \"\(String(decoding: c.data[..<$0], as: UTF8.self))\"" }
            }
            throw FormatProblem(nil, "the PNG holds no character card: it has no tEXt chunk named \"chara\" or \"ccv3\""
                + (others.isEmpty ? "" : " (it has \(others.joined(separator: ", ")), which is not a card key)"))
        }
        let place = "tEXt chunk \"\(chosen.keyword)\" at byte \(chosen.chunk.offset)"
        let text = String(decoding: chosen.text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let decoded = Data(base64Encoded: text, options: .ignoreUnknownCharacters), !decoded.isEmpty else {
            throw FormatProblem(place, "the chunk's text is not base64")
        }
        var card = try CharacterCard(json: parseJSON([UInt8](decoded), place: place), place: place)
        var stripped = png
        stripped.chunks.removeAll { c in
            c.type == "tEXt" && cardChunks.contains { $0.chunk.offset == c.offset }
        }
        card.avatar = stripped.bytes()
        return card
    }

    /// The card in a CHARX's `card.json`; the avatar is the first `icon` asset stored in the zip.
    static func readCHARX(_ bytes: [UInt8]) throws(FormatProblem) -> CharacterCard {
        let entries = try Zip.read(bytes)
        guard let cardEntry = entries.first(where: { $0.name == "card.json" }) else {
            throw FormatProblem(nil, "the CHARX (zip) has no card.json at its root")
        }
        var card = try CharacterCard(json: parseJSON(cardEntry.data, place: "zip entry card.json"), place: "zip entry card.json")
        let icons = (card.data["assets"]?.arrayValue ?? []).compactMap(\.objectValue).filter { $0["type"]?.stringValue == "icon" }
        for icon in icons {
            guard let path = icon["uri"]?.stringValue.flatMap(embeddedPath) else { continue }
            if let entry = entries.first(where: { $0.name == path }), isImage(entry.data) { card.avatar = entry.data; break }
        }
        var avatarPath: String?
        if card.avatar != nil {
            avatarPath = icons.lazy.compactMap { $0["uri"]?.stringValue.flatMap(embeddedPath) }
                .first { p in entries.contains { $0.name == p && isImage($0.data) } }
        } else if let fallback = entries.first(where: { $0.name == charxIconPath }), isImage(fallback.data) {
            card.avatar = fallback.data
            avatarPath = charxIconPath
        }
        // Only the avatar is kept (the V3 spec asks that a person be told of what is not).
        for entry in entries where entry.name != "card.json" && entry.name != avatarPath {
            card.notes.append(ImportNote(place: "zip entry \(entry.name)", reason: "only the card and its avatar are kept; "
                + "this file of the CHARX (\(entry.data.count) bytes) is not kept, and an export will not carry it"))
        }
        return card
    }

    /// The card's file in `container` and `spec`.
    ///
    /// A PNG needs an avatar; V3 goes in a `ccv3` chunk with a V2 copy in `chara` for older
    /// readers (its `creator_notes` say so, as the V3 spec asks). A CHARX holds V3 only, and
    /// names its avatar in `data.assets` (an `icon` whose `uri` is `embeded://` and its path).
    public static func write(_ card: CharacterCard, spec: CharacterCard.Spec, container: Container) throws(FormatProblem) -> [UInt8] {
        switch container {
        case .json:
            return Array(JSON.serialize(card.json(as: spec)).utf8)
        case .png:
            guard let avatar = card.avatar else {
                throw FormatProblem(nil, "the persona has no avatar image to carry the card; export it as .json or .charx")
            }
            var png: PNGFile
            do { png = try PNGFile(reading: avatar) } catch {
                throw FormatProblem(nil, "the persona's avatar is not a PNG (\(error.message)); export it as .json or .charx")
            }
            func b64(_ v: Value) -> [UInt8] { Array(Data(JSON.serialize(v).utf8).base64EncodedString().utf8) }
            var chunks = [PNGFile.textChunk(keyword: "chara", text: b64(spec == .v3 ? card.backfillV2() : card.json(as: .v2)))]
            if spec == .v3 { chunks.append(PNGFile.textChunk(keyword: "ccv3", text: b64(card.json(as: .v3)))) }
            png.chunks.insert(contentsOf: chunks, at: png.chunks.count - 1)
            return png.bytes()
        case .charx:
            guard spec == .v3 else {
                throw FormatProblem(nil, "a CHARX holds a Character Card V3; write it with --spec v3, or a V2 card as .json or .png")
            }
            var card = card
            var entries: [Zip.Entry] = []
            if let avatar = card.avatar {
                let path = iconPath(&card.data, avatar: avatar)
                entries.append(Zip.Entry(name: path, data: avatar))
            }
            entries.insert(Zip.Entry(name: "card.json", data: Array(JSON.serialize(card.json(as: .v3)).utf8)), at: 0)
            return Zip.write(entries)
        }
    }

    /// Where a CHARX keeps the avatar, named in `data.assets` (changed when it is not): the
    /// path of the first `icon` asset whose `uri` is `embeded://PATH`; else a `ccdefault:` icon
    /// is pointed at `assets/icon/images/main.EXT`; else such an icon is added (named `main`
    /// unless another icon has that name). Without `assets` a V3 reader would show its default.
    static func iconPath(_ data: inout [String: Value], avatar: [UInt8]) -> String {
        var assets = data["assets"]?.arrayValue ?? []
        let icons = assets.indices.filter { assets[$0].objectValue?["type"]?.stringValue == "icon" }
        for i in icons {
            if let uri = assets[i].objectValue?["uri"]?.stringValue, let path = embeddedPath(uri) { return path }
        }
        let ext = imageExtension(avatar)
        let path = "assets/icon/images/main.\(ext)"
        if let i = icons.first(where: { assets[$0].objectValue?["uri"]?.stringValue?.hasPrefix("ccdefault:") == true }),
           case .object(var icon) = assets[i] {
            icon["uri"] = .string("embeded://" + path)
            icon["ext"] = .string(ext)
            assets[i] = .object(icon)
        } else {
            let named = icons.contains { assets[$0].objectValue?["name"]?.stringValue == "main" }
            assets.append(["type": "icon", "uri": .string("embeded://" + path), "name": named ? "avatar" : "main", "ext": .string(ext)])
        }
        data["assets"] = .array(assets)
        return path
    }

    /// The path an `embeded://` (or `embedded://`) URI names inside a CHARX, or nil; nil too for
    /// a path that could leave the folder a zip is unpacked in (`..`, a leading `/`, `\`, a
    /// drive letter, an empty part or a control character), which is never read or written.
    static func embeddedPath(_ uri: String) -> String? {
        for scheme in ["embeded://", "embedded://"] where uri.hasPrefix(scheme) {
            let path = String(uri.dropFirst(scheme.count))
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard !path.isEmpty, !path.contains("\\"), !path.contains(":"), !parts.contains(where: { $0.isEmpty || $0 == ".." || $0 == "." }),
                  !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
            return path
        }
        return nil
    }

    /// Whether the bytes start like an image a card's avatar may be: PNG, JPEG, WebP, GIF, AVIF.
    static func isImage(_ bytes: [UInt8]) -> Bool {
        PNGFile.looksLikePNG(bytes) || imageExtension(bytes) != "png"
    }

    /// The file extension of an image by its signature: png, jpeg, webp, gif, avif, else png.
    static func imageExtension(_ bytes: [UInt8]) -> String {
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "jpeg" }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return "webp" }
        if bytes.starts(with: Array("GIF8".utf8)) { return "gif" }
        if bytes.count >= 12, Array(bytes[4..<12]) == Array("ftypavif".utf8) { return "avif" }
        return "png"
    }
}
