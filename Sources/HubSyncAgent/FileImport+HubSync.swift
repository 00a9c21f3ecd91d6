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

    /// ``readOwn(_:)`` on the calling thread.
    func readOwnLines(_ body: (Int, RecordWrite) throws -> Void) throws {
        let reader: LineReader
        do { reader = try LineReader(path: path) } catch { throw MigrationError(file: displayName, error.message) }
        while let bytes = reader.next() {
            let n = reader.lineNumber
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
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

    /// One line: nil for the export header, else the write it holds.
    static func parseOwn(_ bytes: UnsafeRawBufferPointer, isFirst: Bool) throws(ValidationFailure) -> RecordWrite? {
        let value: Value
        do { value = try JSON.parse(bytes) } catch { throw ValidationFailure("\(error)") }
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
