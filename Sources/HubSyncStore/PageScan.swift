import Foundation
import HubSyncCore
import HubSyncCrypto

/// Reads record rows straight from the pages of a damaged store file, without SQLite: every
/// table leaf page (SQLite's file format, https://www.sqlite.org/fileformat2.html, 1.6 and 2.1),
/// its cells decoded as records, their overflow chains followed. A row counts when it has the
/// shape of the records table (collection and ID as text, the state and a 32-byte digest as
/// blobs) and its state matches its BLAKE2b digest, so a page of another table, of an index or
/// of garbage gives nothing. This finds the rows that SQLite cannot reach when the schema page,
/// an interior page of the table's B-tree or the file's first part is lost.
///
/// Pages SQLite had freed may hold an older state of a record; states of one record are merged
/// (the CRDT join), so an older one adds nothing to a newer one. The WAL beside the file is read
/// too, its frames up to the last commit whose checksums hold (1.4 and 4.3 of the format): a
/// record changed after the last checkpoint comes back as it was last committed, and frames of a
/// transaction rolled back, or of an earlier WAL, are not read.
enum PageScan {
    struct Found {
        /// The records read, one state per key, by the rowid they were read under (the newest
        /// cell's, when a record turned up in more than one).
        var states: [RecordKey: (rowid: Int64, state: RecordState)] = [:]
        /// The greatest clock reading of the `meta` table's `hlc` rows found.
        var clock: Timestamp?
        /// The rowids of cells with the records table's shape whose state did not match its
        /// digest or did not decode, or whose overflow pages could not be read.
        var rejected = Set<Int64>()
        /// The rowids that gave a record.
        var taken = Set<Int64>()
        /// The devices the `meta` rows found name as the store's owner (hex).
        var owners = Set<String>()
    }

    /// Scans the file at `path`; at most `maxPages` pages (a bound for files of any size).
    static func scan(path: String, maxPages: Int = 50_000_000) -> Found {
        var found = Found()
        guard let file = PageFile(path: path) else { return found }
        let pages = min(file.pageCount, maxPages)
        let frames = committedFrames(of: path + "-wal", pageSize: file.pageSize, maxFrames: maxPages)
        // Overflow chains are followed through the pages as last committed.
        for (number, page) in frames { file.overlay[number] = page }
        if pages > 0 {
            for number in 1...pages {
                guard let page = file.page(number, asInFile: true) else { continue }
                scanLeaf(page, number: number, file: file, into: &found)
            }
        }
        for (number, page) in frames { scanLeaf(page, number: number, file: file, into: &found) }
        found.rejected.subtract(found.taken)
        return found
    }

    /// The cells of `page` (page `number`), when it is a table leaf page.
    static func scanLeaf(_ page: [UInt8], number: Int, file: PageFile, into found: inout Found) {
        let header = number == 1 ? 100 : 0
        guard page.count > header + 8, page[header] == 0x0D else { return }
        let cells = Int(page[header + 3]) << 8 | Int(page[header + 4])
        for i in 0..<cells {
            let at = header + 8 + 2 * i
            guard at + 1 < page.count else { break }
            let offset = Int(page[at]) << 8 | Int(page[at + 1])
            switch file.cell(in: page, at: offset) {
            case .whole(let rowid, let payload): take(payload, rowid: rowid, into: &found)
            case .cut(let rowid, let local):
                // Its overflow pages are lost: counted when what the page holds starts as a row
                // of the records table does.
                if Record.hasRecordsShape(local) { found.rejected.insert(rowid) }
            case nil: continue
            }
        }
    }

    /// The pages of the WAL's frames up to its last commit, in order (page number, bytes):
    /// frames whose salts match the WAL header's and whose running checksum holds.
    static func committedFrames(of path: String, pageSize: Int, maxFrames: Int) -> [(Int, [UInt8])] {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 32 else { return [] }
        let bytes = [UInt8](data)
        func word(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
        }
        let magic = word(0)
        guard magic == 0x377F_0682 || magic == 0x377F_0683, Int(word(8)) == pageSize else { return [] }
        let bigEndian = magic & 1 == 1
        func checksum(_ range: Range<Int>, _ s: inout (UInt32, UInt32)) {
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                var x0 = word(i), x1 = word(i + 4)
                if !bigEndian { x0 = x0.byteSwapped; x1 = x1.byteSwapped }
                s.0 = s.0 &+ x0 &+ s.1
                s.1 = s.1 &+ x1 &+ s.0
                i += 8
            }
        }
        var sum: (UInt32, UInt32) = (0, 0)
        checksum(0..<24, &sum)
        guard sum.0 == word(24), sum.1 == word(28) else { return [] }
        let salts = (word(16), word(20))
        var frames: [(Int, [UInt8])] = []
        var committed = 0
        var at = 32
        while at + 24 + pageSize <= bytes.count, frames.count < maxFrames {
            guard word(at + 8) == salts.0, word(at + 12) == salts.1 else { break }
            checksum(at..<(at + 8), &sum)
            checksum((at + 24)..<(at + 24 + pageSize), &sum)
            guard sum.0 == word(at + 16), sum.1 == word(at + 20) else { break }
            frames.append((Int(word(at)), Array(bytes[(at + 24)..<(at + 24 + pageSize)])))
            if word(at + 4) != 0 { committed = frames.count }
            at += 24 + pageSize
        }
        return Array(frames.prefix(committed))
    }

    /// A cell's record, if it is a row of the records table or the `hlc` row of `meta`.
    static func take(_ payload: [UInt8], rowid: Int64, into found: inout Found) {
        guard let columns = Record.columns(payload) else { return }
        if columns.count == 2, case .text(let key) = columns[0] {
            if key == Array("hlc".utf8), case .integer(let value) = columns[1], value > 0 {
                let reading = Timestamp(rawValue: UInt64(bitPattern: value))
                found.clock = max(found.clock ?? reading, reading)
            } else if key == Array("device".utf8), case .text(let owner) = columns[1] {
                found.owners.insert(String(decoding: owner, as: UTF8.self))
            }
            return
        }
        guard columns.count >= 4, case .text = columns[0], case .text = columns[1],
              case .blob(let state) = columns[2], case .blob(let digest) = columns[3], digest.count == 32 else { return }
        guard CanonicalEncoding.digest(of: state) == digest, let decoded = try? CanonicalEncoding.decode(state),
              ForwardCompatibility.isWellFormed(collection: decoded.key.collection) else {
            found.rejected.insert(rowid)
            return
        }
        found.taken.insert(rowid)
        if let earlier = found.states[decoded.key] {
            found.states[decoded.key] = (max(earlier.rowid, rowid), RecordState.merge(earlier.state, decoded))
        } else {
            found.states[decoded.key] = (rowid, decoded)
        }
    }

    /// One column's value in a record.
    enum Column {
        case null, integer(Int64), real, text([UInt8]), blob([UInt8])
    }

    /// SQLite's record format: a header of serial types, then the values.
    enum Record {
        /// Whether the record's header (in the first bytes of its payload) gives the records
        /// table's first columns: two texts, a blob and a 32-byte blob.
        static func hasRecordsShape(_ bytes: [UInt8]) -> Bool {
            guard let (_, n) = varint(bytes, 0) else { return false }
            var at = n
            var types: [UInt64] = []
            while types.count < 4, let (type, m) = varint(bytes, at) {
                types.append(type)
                at += m
            }
            guard types.count == 4 else { return false }
            return types[0] >= 13 && types[0] % 2 == 1 && types[1] >= 13 && types[1] % 2 == 1
                && types[2] >= 12 && types[2] % 2 == 0 && types[3] == 12 + 2 * 32
        }

        static func columns(_ bytes: [UInt8]) -> [Column]? {
            var at = 0
            guard let (headerSize, n) = varint(bytes, at), headerSize <= UInt64(bytes.count), headerSize >= UInt64(n) else { return nil }
            at = n
            var types: [UInt64] = []
            while at < Int(headerSize) {
                guard let (type, n) = varint(bytes, at), types.count < 64 else { return nil }
                types.append(type)
                at += n
            }
            guard at == Int(headerSize) else { return nil }
            var columns: [Column] = []
            for type in types {
                let size: Int
                switch type {
                case 0, 8, 9: size = 0
                case 1...4: size = Int(type)
                case 5: size = 6
                case 6, 7: size = 8
                case 10, 11: return nil
                default:
                    guard type < UInt64(Int32.max) else { return nil }
                    size = Int(type - 12) / 2
                }
                guard at + size <= bytes.count else { return nil }
                switch type {
                case 0: columns.append(.null)
                case 8: columns.append(.integer(0))
                case 9: columns.append(.integer(1))
                case 1...6:
                    var v = Int64(Int8(bitPattern: bytes[at]))
                    for b in bytes[(at + 1)..<(at + size)] { v = v << 8 | Int64(b) }
                    columns.append(.integer(v))
                case 7: columns.append(.real)
                default:
                    let value = Array(bytes[at..<(at + size)])
                    columns.append(type % 2 == 0 ? .blob(value) : .text(value))
                }
                at += size
            }
            return columns
        }
    }

    /// An SQLite varint at `at`: its value and its length, nil past the end.
    static func varint(_ bytes: [UInt8], _ at: Int) -> (UInt64, Int)? {
        var value: UInt64 = 0
        for i in 0..<9 {
            guard at + i < bytes.count else { return nil }
            let b = bytes[at + i]
            if i == 8 { return (value << 8 | UInt64(b), 9) }
            value = value << 7 | UInt64(b & 0x7F)
            if b & 0x80 == 0 { return (value, i + 1) }
        }
        return nil
    }

    /// The store file, read a page at a time.
    final class PageFile {
        let fd: Int32
        let pageSize: Int
        /// Bytes of each page that hold content (the page size less the reserved bytes at its end).
        let usable: Int
        let pageCount: Int

        init?(path: String) {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            var status = stat()
            guard fstat(fd, &status) == 0 else { close(fd); return nil }
            var header = [UInt8](repeating: 0, count: 100)
            let read = pread(fd, &header, 100, 0)
            // The page size and reserved bytes from the header, when it is SQLite's; else
            // HubSync's 4 KiB pages.
            var size = 4096, reserved = 0
            if read == 100, header.starts(with: Array("SQLite format 3\0".utf8)) {
                let raw = Int(header[16]) << 8 | Int(header[17])
                let candidate = raw == 1 ? 65536 : raw
                if candidate >= 512, candidate <= 65536, candidate & (candidate - 1) == 0 {
                    size = candidate
                    reserved = Int(header[20])
                }
            }
            pageSize = size
            usable = size - reserved
            pageCount = Int(status.st_size) / size
            guard usable >= 480 else { close(fd); return nil }
        }

        deinit { close(fd) }

        /// Pages as the WAL's committed frames last give them.
        var overlay: [Int: [UInt8]] = [:]

        /// Page `number` (from 1) as last committed (from the WAL, when it has the page), or as the
        /// file holds it; nil past the end of both.
        func page(_ number: Int, asInFile: Bool = false) -> [UInt8]? {
            if !asInFile, let page = overlay[number] { return page }
            guard number >= 1, number <= pageCount else { return nil }
            var bytes = [UInt8](repeating: 0, count: pageSize)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, pageSize, off_t(number - 1) * off_t(pageSize)) }
            return n == pageSize ? bytes : nil
        }

        /// A table leaf cell as read.
        enum Cell {
            /// Its rowid and whole payload.
            case whole(Int64, [UInt8])
            /// Its rowid and the part of its payload on the page: its overflow chain broke.
            case cut(Int64, [UInt8])
        }

        /// The table leaf cell at `offset` of `page`, its overflow pages followed; nil when the
        /// cell itself does not hold together.
        func cell(in page: [UInt8], at offset: Int) -> Cell? {
            guard offset >= 8, offset < usable, let (size, n1) = varint(page, offset),
                  let (rowid, n2) = varint(page, offset + n1), size <= 64 << 20 else { return nil }
            let payloadSize = Int(size)
            let start = offset + n1 + n2
            // How much of the payload the page itself holds (the file format's 1.6).
            let maxLocal = usable - 35
            var local = payloadSize
            if payloadSize > maxLocal {
                let minLocal = (usable - 12) * 32 / 255 - 23
                let k = minLocal + (payloadSize - minLocal) % (usable - 4)
                local = k <= maxLocal ? k : minLocal
            }
            guard start + local <= usable else { return nil }
            var payload = Array(page[start..<(start + local)])
            let id = Int64(bitPattern: rowid)
            guard payloadSize > local else { return .whole(id, payload) }
            guard start + local + 4 <= usable else { return nil }
            let onPage = payload
            var next = Int(page[start + local]) << 24 | Int(page[start + local + 1]) << 16
                | Int(page[start + local + 2]) << 8 | Int(page[start + local + 3])
            var hops = 0
            while payload.count < payloadSize {
                hops += 1
                guard next >= 2, hops <= pageCount + overlay.count, let overflow = self.page(next) else { return .cut(id, onPage) }
                let take = min(payloadSize - payload.count, usable - 4)
                payload.append(contentsOf: overflow[4..<(4 + take)])
                next = Int(overflow[0]) << 24 | Int(overflow[1]) << 16 | Int(overflow[2]) << 8 | Int(overflow[3])
            }
            return .whole(id, payload)
        }
    }
}
