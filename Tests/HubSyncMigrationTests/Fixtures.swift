import CHubZlib
import Foundation
import HubSyncCore
@testable import HubSyncMigration

/// Fixtures the tests build themselves: small PNGs, cards, zips and exports.
enum Fixtures {
    /// A valid 1×1 grey PNG (IHDR, IDAT, IEND) with `extra` chunks before IEND.
    static func png(extra: [PNGFile.Chunk] = []) -> [UInt8] {
        let ihdr: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0] // 1×1, 8-bit greyscale
        let idat = zlibStored([0, 0x80]) // filter byte, one pixel
        return PNGFile(chunks: [PNGFile.Chunk(type: "IHDR", data: ihdr), PNGFile.Chunk(type: "IDAT", data: idat)] + extra
            + [PNGFile.Chunk(type: "IEND", data: [])]).bytes()
    }

    /// A zlib stream of one stored block.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        let adler = b << 16 | a
        let n = UInt16(data.count)
        return [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + data
            + [UInt8(adler >> 24), UInt8(adler >> 16 & 0xFF), UInt8(adler >> 8 & 0xFF), UInt8(adler & 0xFF)]
    }

    static func textChunk(_ keyword: String, json: Value) -> PNGFile.Chunk {
        PNGFile.textChunk(keyword: keyword, text: Array(Data(JSON.serialize(json).utf8).base64EncodedString().utf8))
    }

    static let book: Value = [
        "name": "World", "entries": [
            ["id": 7, "keys": ["eldoria", "forest"], "content": "Eldoria is an old forest.", "enabled": true,
             "extensions": ["position": 1, "depth": 4]],
            ["keys": [], "content": "The moon is green.", "constant": true],
        ],
    ]

    static func v2Card(name: String = "Seraphina") -> Value {
        [
            "spec": "chara_card_v2", "spec_version": "2.0",
            "name": .string(name), "first_mes": "Hello — welcome.", "chat": "old", "fav": false,
            "data": [
                "name": .string(name), "description": "A guardian of the forest.", "personality": "kind",
                "scenario": "", "first_mes": "Hello — welcome.", "mes_example": "", "creator_notes": "",
                "system_prompt": "", "post_history_instructions": "", "alternate_greetings": ["Hi", "Hey"],
                "tags": ["fantasy"], "creator": "someone", "character_version": "1.0.0",
                "extensions": ["talkativeness": "0.5", "world": "Eldoria", "depth_prompt": ["depth": 4, "prompt": "x"]],
                "character_book": book, "unknown_key": ["kept": true], "nothing": nil,
            ],
        ]
    }

    static let v3Card: Value = [
        "spec": "chara_card_v3", "spec_version": "3.0",
        "data": [
            "name": "月纱", "description": "第一行\r\n第二行", "personality": "", "scenario": "", "first_mes": "你好",
            "mes_example": "", "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
            "alternate_greetings": [], "group_only_greetings": [], "tags": ["中文"], "creator": "c",
            "character_version": "1", "extensions": [:], "nickname": "Yue",
            "assets": [["type": "icon", "uri": "embeded://assets/icon/images/face.png", "name": "main", "ext": "png"]],
        ],
    ]

    static let v1Card: Value = [
        "name": "Skynet", "description": "A network.", "personality": "cold", "scenario": "future", "first_mes": "Hello.",
        "mes_example": "", "metadata": ["version": 1, "created": 1_700_000_000_000, "tool": ["name": "Editor"]],
    ]

    /// Raw deflate of `data` (zlib's deflate with window bits -15).
    static func deflate(_ data: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        deflateInit2_(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        var out = [UInt8](repeating: 0, count: data.count + 1024)
        var input = data
        input.withUnsafeMutableBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = i.baseAddress
                stream.avail_in = UInt32(i.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                _ = CHubZlib.deflate(&stream, Z_FINISH)
            }
        }
        let n = Int(stream.total_out)
        deflateEnd(&stream)
        return Array(out[0..<n])
    }

    /// A zip whose entries are deflated (method 8), as card editors write CHARX files.
    static func deflatedZip(_ entries: [Zip.Entry]) -> [UInt8] {
        var out: [UInt8] = [], dir: [UInt8] = []
        func le16(_ v: Int, _ b: inout [UInt8]) { b += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: Int, _ b: inout [UInt8]) { le16(v & 0xFFFF, &b); le16(v >> 16 & 0xFFFF, &b) }
        for e in entries {
            let name = Array(e.name.utf8), packed = deflate(e.data), crc = Int(CRC32.checksum(e.data)), offset = out.count
            le32(0x0403_4B50, &out); le16(20, &out); le16(0, &out); le16(8, &out); le16(0, &out); le16(0, &out)
            le32(crc, &out); le32(packed.count, &out); le32(e.data.count, &out); le16(name.count, &out); le16(0, &out)
            out += name + packed
            le32(0x0201_4B50, &dir); le16(20, &dir); le16(20, &dir); le16(0, &dir); le16(8, &dir); le16(0, &dir); le16(0, &dir)
            le32(crc, &dir); le32(packed.count, &dir); le32(e.data.count, &dir); le16(name.count, &dir)
            le16(0, &dir); le16(0, &dir); le16(0, &dir); le16(0, &dir); le32(0, &dir); le32(offset, &dir); dir += name
        }
        let dirOffset = out.count
        out += dir
        le32(0x0605_4B50, &out); le16(0, &out); le16(0, &out); le16(entries.count, &out); le16(entries.count, &out)
        le32(dir.count, &out); le32(dirOffset, &out); le16(0, &out)
        return out
    }

    static func write(_ bytes: [UInt8], to url: URL) throws {
        try Data(bytes).write(to: url)
    }
}

/// Collects what an importer reads.
struct Collected: ImportSink {
    var records: [ImportedRecord] = []
    var notes: [ImportNote] = []
    mutating func record(_ r: ImportedRecord) throws { records.append(r) }
    mutating func skipped(_ note: ImportNote) { notes.append(note) }
}

/// Reads a file the way `hubsync import` does (format detected unless given).
func importFile(_ url: URL, format: Migration.Format? = nil, persona: String? = nil) throws -> Collected {
    var sink = Collected()
    let f = try format ?? Migration.detect(path: url.path, displayName: url.lastPathComponent)
    try Migration.read(path: url.path, displayName: url.lastPathComponent, format: f, persona: persona, into: &sink)
    return sink
}
