import Foundation
import HubSyncBase
import HubSyncCrypto
public import HubSyncCore
import HubSyncMigration
public import HubSyncStore

/// The export file format: JSON Lines, a header line, then one line per record.
public enum ExportFormat {
    public static let name = "hubsync-export"
    public static let version: Int64 = 1

    /// Writes the export of `store` as `hubsync export` makes it: the header line (`created`
    /// Unix ms), then every record's full state, deleted ones too; `flush` takes the lines in
    /// pieces of about 64 KiB. Answers the number of records. Blocking (it reads every record).
    public static func write(_ store: Store, device: String, created: UInt64,
                             flush: ([UInt8]) throws -> Void) throws -> Int {
        var buffer: [UInt8] = []
        let header: Value = ["format": .string(name), "version": .int(version), "device": .string(device),
                             "created": .string(isoTime(Timestamp(millis: created, counter: 0)))]
        JSON.write(header, to: &buffer)
        buffer.append(10)
        var count = 0
        try store.forEachRecord { state in
            let line: Value = ["collection": .string(state.key.collection), "id": .string(state.key.id),
                               "state": StateJSON.object(state), "digest": .string(Hex.encode(CanonicalEncoding.digest(state)))]
            JSON.write(line, to: &buffer)
            buffer.append(10)
            count += 1
            if buffer.count > 1 << 16 {
                try flush(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try flush(buffer)
        return count
    }
}

extension FileImport {
    /// Reads HubSync's own JSON Lines (`hubsync export` files and plain records, protocol/SPEC.md
    /// 1.10), handing each write to `body` with its line number; the header is checked.
    /// An error names the file and the line.
    /// The file is read and parsed on a second thread, at most about 1,500 lines ahead of
    /// `body` (``ReadAhead``).
    func readOwn(_ body: (Int, RecordWrite) throws -> Void) throws {
        try ReadAhead.run(produce: { emit in try readOwnLines { line, write in try emit((line, write)) } },
                          consume: { (item: (Int, RecordWrite)) in try body(item.0, item.1) })
    }

    /// ``readOwn(_:)`` with the parsing on two threads, for the check, whose pace parsing sets:
    /// the file is read in blocks of whole lines (about 1 MiB each), two blocks are parsed at
    /// once, and their writes are handed to `body` in the file's order. An error is raised after
    /// every write before it was handed on, as ``readOwn(_:)`` raises it; at most a few blocks'
    /// writes are held.
    func readOwnInParallel(_ body: (Int, RecordWrite) throws -> Void) throws {
        try ReadAhead.run(chunk: 512, depth: 4, produce: { emit in
            let reader: LineReader
            do throws(ValidationFailure) { reader = try LineReader(path: path) } catch { throw MigrationError(file: displayName, error.message) }
            while true {
                var read: [LineReader.Block] = []
                while read.count < 2, let block = reader.nextBlock(bytes: 1 << 20) { read.append(block) }
                guard !read.isEmpty else { return }
                let blocks = read
                let parsed = ParsedBlocks(count: blocks.count)
                DispatchQueue.concurrentPerform(iterations: blocks.count) { i in parsed.blocks[i] = Self.parseOwn(blocks[i]) }
                for block in parsed.blocks {
                    for item in block.writes { try emit(item) }
                    if let (line, message) = block.failure { throw MigrationError(file: displayName, line: line, message) }
                }
            }
        }, consume: { (item: (Int, RecordWrite)) in try body(item.0, item.1) })
    }

    /// The writes of one block's lines with their line numbers, up to the first line refused.
    struct ParsedBlock: Sendable {
        var writes: [(Int, RecordWrite)] = []
        var failure: (line: Int, message: String)?
    }

    /// Where the parsing threads of ``readOwnInParallel(_:)`` put their blocks, each its own.
    final class ParsedBlocks: @unchecked Sendable {
        var blocks: [ParsedBlock]
        init(count: Int) { blocks = Array(repeating: ParsedBlock(), count: count) }
    }

    /// Parses each line of `block` as ``readOwnLines(_:)`` does.
    static func parseOwn(_ block: LineReader.Block) -> ParsedBlock {
        var out = ParsedBlock()
        block.bytes.withUnsafeBytes { all in
            var line = block.firstLine
            var start = 0
            while start < all.count {
                let end = memchr(all.baseAddress! + start, 0x0A, all.count - start).map { all.baseAddress!.distance(to: $0) } ?? all.count
                var len = end - start
                while len > 0, all[start + len - 1] == 0x0A || all[start + len - 1] == 0x0D { len -= 1 }
                do throws(ValidationFailure) {
                    if let write = try parseOwn(UnsafeRawBufferPointer(rebasing: all[start..<start + len]), isFirst: line == 1) {
                        out.writes.append((line, write))
                    }
                } catch {
                    out.failure = (line, error.message)
                    return
                }
                line += 1
                start = end + 1
            }
        }
        return out
    }

    /// ``readOwn(_:)`` on the calling thread.
    func readOwnLines(_ body: (Int, RecordWrite) throws -> Void) throws {
        let reader: LineReader
        do { reader = try LineReader(path: path) } catch { throw MigrationError(file: displayName, error.message) }
        while let bytes = reader.next() {
            let n = reader.lineNumber
            let write: RecordWrite?
            do {
                write = try Self.parseOwn(bytes, isFirst: n == 1)
            } catch {
                throw MigrationError(file: displayName, line: n, error.message)
            }
            guard let write else { continue }
            try body(n, write)
        }
    }

    /// One line: nil for a blank line (spaces and tabs only) or the export header, else the
    /// write it holds.
    static func parseOwn(_ bytes: UnsafeRawBufferPointer, isFirst: Bool) throws(ValidationFailure) -> RecordWrite? {
        // A file saved by an editor that starts it with UTF-8's byte-order mark reads as without it.
        if isFirst, bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            return try parseOwn(UnsafeRawBufferPointer(rebasing: bytes[3...]), isFirst: true)
        }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        let value: Value
        do { value = try JSON.parse(bytes) } catch {
            // Old Mac line endings: the whole file, or the rest of it, reads as one line.
            guard bytes.contains(0x0D) else { throw ValidationFailure("\(error)") }
            throw ValidationFailure("\(error); the line holds a carriage return (CR) that no line feed follows, as in a file "
                + "with old Mac line endings: end each line with a line feed, e.g. `tr '\\r' '\\n' < FILE > FIXED`, and import that")
        }
        guard let o = value.objectValue else { throw ValidationFailure("expected a JSON object, got \(value.typeName == "array" ? "an" : "a") \(value.typeName)") }
        if isFirst, let format = o["format"] {
            guard format.stringValue == ExportFormat.name else {
                throw ValidationFailure("unknown format \(JSON.serialize(format)); expected \"\(ExportFormat.name)\"")
            }
            guard case .int(let v) = o["version"] ?? .null, v >= 1, v <= ExportFormat.version else {
                throw ValidationFailure("export version \(JSON.serialize(o["version"] ?? .null)) is newer than this "
                    + "hubsync understands (\(ExportFormat.version)); update hubsync on this device")
            }
            return nil
        }
        // Plain records and export lines are writes in RecordWrite's form; other operations are
        // for the API's batches, not for files.
        if let op = o["op"] {
            throw ValidationFailure("a line holds a record (\"collection\", \"id\", \"fields\" or an exported \"state\"), not an "
                + "operation; \"op\": \(JSON.serialize(op)) is for the local API's POST /v1/batch")
        }
        return try RecordWrite(parsing: o)
    }
}

/// Reads a file line by line with getline(3), without holding the file in memory.
final class LineReader {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>?
    private var capacity = 0
    private(set) var lineNumber = 0

    init(path: String) throws(ValidationFailure) {
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
            throw ValidationFailure("is a folder; give a file (or - for standard input)")
        }
        guard let f = fopen(path, "r") else {
            let code = errno
            throw ValidationFailure(FailureText.systemCall(code, path: path) ?? "cannot open it: \(Errno.message(code))")
        }
        file = f
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    /// Whole lines of the file and the number of the first.
    struct Block: Sendable {
        var firstLine: Int
        /// The lines, each ending in a line feed but the file's last when it has none.
        var bytes: [UInt8]
    }

    private var carry: [UInt8] = []

    /// The next lines, about `size` bytes of them (more when one line is longer), or nil at the
    /// end of the file. Not to be mixed with ``next()``.
    func nextBlock(bytes size: Int) -> Block? {
        var block = carry
        carry = []
        var piece = [UInt8](repeating: 0, count: size)
        while true {
            let n = piece.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, file) }
            guard n > 0 else { break }
            let cut = piece[..<n].lastIndex(of: 0x0A)
            if let cut {
                block.append(contentsOf: piece[...cut])
                carry = Array(piece[(cut + 1)..<n])
                break
            }
            block.append(contentsOf: piece[..<n])
        }
        guard !block.isEmpty else { return nil }
        let first = lineNumber + 1
        // Counted with memchr: a loop over each byte was most of the reading thread's time.
        let breaks = block.withUnsafeBytes { all -> Int in
            var count = 0, at = 0
            while at < all.count, let found = memchr(all.baseAddress! + at, 0x0A, all.count - at) {
                count += 1
                at = all.baseAddress!.distance(to: found) + 1
            }
            return count
        }
        lineNumber += breaks + (block.last == 0x0A ? 0 : 1)
        return Block(firstLine: first, bytes: block)
    }

    /// The next line's bytes without its line break, or nil at the end of the file.
    func next() -> UnsafeRawBufferPointer? {
        let n = getline(&buffer, &capacity, file)
        guard n >= 0, let buffer else { return nil }
        lineNumber += 1
        var len = n
        while len > 0, buffer[len - 1] == 0x0A || buffer[len - 1] == 0x0D { len -= 1 }
        return UnsafeRawBufferPointer(start: buffer, count: len)
    }
}
