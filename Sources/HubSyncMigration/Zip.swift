internal import CHubZlib

/// A small zip reader (stored and deflated entries, no zip64, no encryption) and a writer of
/// stored entries: what CHARX character cards need.
public enum Zip {
    /// The largest entry this reader inflates; a card's `card.json` and avatar are far smaller.
    static let maxEntrySize = 64 << 20

    public struct Entry: Sendable {
        public var name: String
        public var data: [UInt8]
        public init(name: String, data: [UInt8]) {
            self.name = name
            self.data = data
        }
    }

    /// Whether the bytes start like a zip file (a local file header).
    public static func looksLikeZip(_ bytes: [UInt8]) -> Bool { bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) }

    /// Reads every file entry through the central directory, checking each one's CRC.
    static func read(_ bytes: [UInt8]) throws(FormatProblem) -> [Entry] {
        func u16(_ p: Int) -> Int { Int(bytes[p]) | Int(bytes[p + 1]) << 8 }
        func u32(_ p: Int) -> Int { u16(p) | u16(p + 2) << 16 }
        // The end-of-central-directory record: 22 bytes and a comment of up to 65,535.
        guard bytes.count >= 22 else { throw FormatProblem("byte \(bytes.count)", "the zip is truncated (no end of central directory)") }
        var eocd = -1
        var p = bytes.count - 22
        while p >= max(0, bytes.count - 22 - 65_535) {
            if bytes[p] == 0x50, bytes[p + 1] == 0x4B, bytes[p + 2] == 0x05, bytes[p + 3] == 0x06 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw FormatProblem("byte \(bytes.count)", "the zip is truncated (no end of central directory)") }
        let count = u16(eocd + 10)
        let dirOffset = u32(eocd + 16)
        guard count != 0xFFFF, dirOffset != 0xFFFF_FFFF else {
            throw FormatProblem("byte \(eocd)", "zip64 archives are not supported; save the card without zip64")
        }
        var entries: [Entry] = []
        var q = dirOffset
        for i in 0..<count {
            guard q + 46 <= bytes.count, u32(q) == 0x0201_4B50 else {
                throw FormatProblem("byte \(q)", "the zip's central directory is damaged at entry \(i + 1)")
            }
            let flags = u16(q + 8), method = u16(q + 10), crc = UInt32(u32(q + 16))
            let compressed = u32(q + 20), size = u32(q + 24)
            let nameLength = u16(q + 28), extraLength = u16(q + 30), commentLength = u16(q + 32)
            let local = u32(q + 42)
            guard q + 46 + nameLength <= bytes.count else { throw FormatProblem("byte \(q)", "the zip's central directory is truncated") }
            let name = String(decoding: bytes[(q + 46) ..< (q + 46 + nameLength)], as: UTF8.self)
            q += 46 + nameLength + extraLength + commentLength
            if name.hasSuffix("/") { continue }
            let place = "zip entry \(name)"
            guard flags & 1 == 0 else { throw FormatProblem(place, "the entry is encrypted") }
            guard size <= maxEntrySize else { throw FormatProblem(place, "the entry is larger than \(maxEntrySize >> 20) MiB") }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4B50 else {
                throw FormatProblem(place, "the entry's local header is missing (the zip is damaged)")
            }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + compressed <= bytes.count else { throw FormatProblem(place, "the zip is truncated inside this entry") }
            let raw = Array(bytes[start ..< start + compressed])
            let data: [UInt8]
            switch method {
            case 0: data = raw
            case 8: data = try inflate(raw, size: size, place: place)
            default: throw FormatProblem(place, "compression method \(method) is not supported (only stored and deflate)")
            }
            guard data.count == size else { throw FormatProblem(place, "the entry has \(data.count) bytes, not the \(size) its header says") }
            guard CRC32.checksum(data) == crc else { throw FormatProblem(place, "the entry's CRC does not match (the zip is damaged)") }
            entries.append(Entry(name: name, data: data))
        }
        return entries
    }

    /// Raw deflate (RFC 1951) through zlib.
    static func inflate(_ input: [UInt8], size: Int, place: String) throws(FormatProblem) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(size, 1))
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatProblem(place, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = inp.baseAddress
                stream.avail_in = UInt32(inp.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                return CHubZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw FormatProblem(place, "the deflated data does not decode (the zip is damaged)") }
        return Array(out[0 ..< Int(stream.total_out)])
    }

    /// A zip of stored entries, in the given order, with a fixed time (1980-01-01) so equal
    /// entries give equal bytes.
    public static func write(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        var directory: [UInt8] = []
        func le16(_ v: Int, _ b: inout [UInt8]) { b += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: Int, _ b: inout [UInt8]) { le16(v & 0xFFFF, &b); le16(v >> 16 & 0xFFFF, &b) }
        let dosDate = (0 << 9) | (1 << 5) | 1 // 1980-01-01
        for e in entries {
            let name = Array(e.name.utf8)
            let crc = Int(CRC32.checksum(e.data))
            let offset = out.count
            le32(0x0403_4B50, &out); le16(20, &out); le16(0x0800, &out); le16(0, &out)
            le16(0, &out); le16(dosDate, &out); le32(crc, &out); le32(e.data.count, &out); le32(e.data.count, &out)
            le16(name.count, &out); le16(0, &out); out += name; out += e.data
            le32(0x0201_4B50, &directory); le16(20, &directory); le16(20, &directory); le16(0x0800, &directory)
            le16(0, &directory); le16(0, &directory); le16(dosDate, &directory); le32(crc, &directory)
            le32(e.data.count, &directory); le32(e.data.count, &directory); le16(name.count, &directory)
            le16(0, &directory); le16(0, &directory); le16(0, &directory); le16(0, &directory); le32(0, &directory)
            le32(offset, &directory); directory += name
        }
        let dirOffset = out.count
        out += directory
        le32(0x0605_4B50, &out); le16(0, &out); le16(0, &out); le16(entries.count, &out); le16(entries.count, &out)
        le32(directory.count, &out); le32(dirOffset, &out); le16(0, &out)
        return out
    }
}
