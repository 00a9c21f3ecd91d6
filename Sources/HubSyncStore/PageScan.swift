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
/// (the CRDT join), so an older one adds nothing to a newer one. Only the store file is read:
/// WAL frames past its last commit may belong to a transaction that was rolled back.
enum PageScan {
    struct Found {
        /// The records read, one state per key, by the rowid they were read under (the newest
        /// cell's, when a record turned up in more than one).
        var states: [RecordKey: (rowid: Int64, state: RecordState)] = [:]
        /// The greatest clock reading of the `meta` table's `hlc` rows found.
        var clock: Timestamp?
        /// Cells with the records table's shape whose state did not match its digest or did not decode.
        var rejected = 0
    }

    /// Scans the file at `path`; at most `maxPages` pages (a bound for files of any size).
    static func scan(path: String, maxPages: Int = 50_000_000) -> Found {
        var found = Found()
        guard let file = PageFile(path: path) else { return found }
        let pages = min(file.pageCount, maxPages)
        guard pages > 0 else { return found }
        for number in 1...pages {
            guard let page = file.page(number) else { continue }
            let header = number == 1 ? 100 : 0
            guard page.count > header + 8, page[header] == 0x0D else { continue }
            let cells = Int(page[header + 3]) << 8 | Int(page[header + 4])
            for i in 0..<cells {
                let at = header + 8 + 2 * i
                guard at + 1 < page.count else { break }
                let offset = Int(page[at]) << 8 | Int(page[at + 1])
                guard let (rowid, payload) = file.cell(in: page, at: offset) else { continue }
                take(payload, rowid: rowid, into: &found)
            }
        }
        return found
    }

    /// A cell's record, if it is a row of the records table or the `hlc` row of `meta`.
    static func take(_ payload: [UInt8], rowid: Int64, into found: inout Found) {
        guard let columns = Record.columns(payload) else { return }
        if columns.count == 2, case .text(let key) = columns[0], key == Array("hlc".utf8), case .integer(let value) = columns[1], value > 0 {
            let reading = Timestamp(rawValue: UInt64(bitPattern: value))
            found.clock = max(found.clock ?? reading, reading)
            return
        }
        guard columns.count >= 4, case .text = columns[0], case .text = columns[1],
              case .blob(let state) = columns[2], case .blob(let digest) = columns[3], digest.count == 32 else { return }
        guard CanonicalEncoding.digest(of: state) == digest, let decoded = try? CanonicalEncoding.decode(state),
              ForwardCompatibility.isWellFormed(collection: decoded.key.collection) else {
            found.rejected += 1
            return
        }
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

        /// Page `number` (from 1), or nil past the end of the file.
        func page(_ number: Int) -> [UInt8]? {
            guard number >= 1, number <= pageCount else { return nil }
            var bytes = [UInt8](repeating: 0, count: pageSize)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, pageSize, off_t(number - 1) * off_t(pageSize)) }
            return n == pageSize ? bytes : nil
        }

        /// The rowid and whole payload of the table leaf cell at `offset` of `page`, following
        /// its overflow pages; nil when the cell or its chain does not hold together.
        func cell(in page: [UInt8], at offset: Int) -> (Int64, [UInt8])? {
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
            guard payloadSize > local else { return (Int64(bitPattern: rowid), payload) }
            guard start + local + 4 <= usable else { return nil }
            var next = Int(page[start + local]) << 24 | Int(page[start + local + 1]) << 16
                | Int(page[start + local + 2]) << 8 | Int(page[start + local + 3])
            var hops = 0
            while payload.count < payloadSize {
                hops += 1
                guard next >= 2, hops <= pageCount, let overflow = self.page(next) else { return nil }
                let take = min(payloadSize - payload.count, usable - 4)
                payload.append(contentsOf: overflow[4..<(4 + take)])
                next = Int(overflow[0]) << 24 | Int(overflow[1]) << 16 | Int(overflow[2]) << 8 | Int(overflow[3])
            }
            return (Int64(bitPattern: rowid), payload)
        }
    }
}
