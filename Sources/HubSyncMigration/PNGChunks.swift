/// The chunks of a PNG file (ISO/IEC 15948): read with their CRCs checked, written with new ones.
public struct PNGFile: Sendable {
    public struct Chunk: Sendable, Equatable {
        /// The four-letter type, as ASCII: `IHDR`, `tEXt`, `IEND`.
        public var type: String
        public var data: [UInt8]
        /// Where the chunk starts in the file it was read from (0 for a new chunk).
        public var offset: Int
        public init(type: String, data: [UInt8], offset: Int = 0) {
            self.type = type
            self.data = data
            self.offset = offset
        }
    }

    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public var chunks: [Chunk]

    public init(chunks: [Chunk]) { self.chunks = chunks }

    /// Whether the bytes start with the PNG signature.
    public static func looksLikePNG(_ bytes: [UInt8]) -> Bool { bytes.starts(with: signature) }

    /// Reads every chunk up to `IEND`, checking each one's length and CRC.
    init(reading bytes: [UInt8]) throws(FormatProblem) {
        guard Self.looksLikePNG(bytes) else { throw FormatProblem("byte 0", "not a PNG file (no PNG signature)") }
        var chunks: [Chunk] = []
        var pos = 8
        while true {
            guard pos + 12 <= bytes.count else {
                throw FormatProblem("byte \(pos)", "the PNG is truncated: it ends before its IEND chunk")
            }
            let length = Int(bytes[pos]) << 24 | Int(bytes[pos + 1]) << 16 | Int(bytes[pos + 2]) << 8 | Int(bytes[pos + 3])
            let typeBytes = Array(bytes[pos + 4 ..< pos + 8])
            guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw FormatProblem("byte \(pos + 4)", "the PNG is damaged: a chunk type is not four letters")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard length <= 0x7FFF_FFFF, pos + 12 + length <= bytes.count else {
                throw FormatProblem("chunk \(type) at byte \(pos)",
                    "the PNG is truncated: the chunk says \(length) bytes but the file ends first")
            }
            let data = Array(bytes[pos + 8 ..< pos + 8 + length])
            let end = pos + 8 + length
            let stored = UInt32(bytes[end]) << 24 | UInt32(bytes[end + 1]) << 16 | UInt32(bytes[end + 2]) << 8 | UInt32(bytes[end + 3])
            let computed = CRC32.checksum(data, continuing: CRC32.checksum(typeBytes))
            guard stored == computed else {
                throw FormatProblem("chunk \(type) at byte \(pos)", "the chunk's CRC does not match its bytes (the file is damaged)")
            }
            chunks.append(Chunk(type: type, data: data, offset: pos))
            pos = end + 4
            if type == "IEND" { break }
        }
        guard chunks.first?.type == "IHDR" else { throw FormatProblem("byte 8", "the PNG does not start with an IHDR chunk") }
        self.chunks = chunks
    }

    /// The file's bytes: the signature, then each chunk with its length and CRC.
    public func bytes() -> [UInt8] {
        var out = Self.signature
        for c in chunks {
            let n = UInt32(c.data.count)
            out += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            let typeBytes = Array(c.type.utf8)
            out += typeBytes
            out += c.data
            let crc = CRC32.checksum(c.data, continuing: CRC32.checksum(typeBytes))
            out += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        }
        return out
    }

    /// The `tEXt` chunks as (keyword, text bytes), in file order.
    func textChunks() -> [(keyword: String, text: [UInt8], chunk: Chunk)] {
        chunks.compactMap { c in
            guard c.type == "tEXt", let zero = c.data.firstIndex(of: 0) else { return nil }
            // Keywords are Latin-1; card keywords are ASCII.
            let keyword = String(decoding: c.data[..<zero], as: UTF8.self)
            return (keyword, Array(c.data[(zero + 1)...]), c)
        }
    }

    /// A `tEXt` chunk with this keyword and text.
    static func textChunk(keyword: String, text: [UInt8]) -> Chunk {
        Chunk(type: "tEXt", data: Array(keyword.utf8) + [0] + text)
    }
}
