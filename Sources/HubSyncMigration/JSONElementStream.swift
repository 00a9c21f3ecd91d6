import Foundation

/// Reads a JSON file in fixed-size blocks and hands over the raw bytes of each element of its
/// top-level array (or the one top-level object) one at a time, so a file of any size is read
/// in the memory of its largest element.
///
/// It only finds where elements start and end (strings, escapes and nesting); each element is
/// then parsed, and so checked, on its own with ``HubSyncCore/JSON``.
final class JSONElementStream {
    enum Shape { case array, object }

    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var position = 0          // index in buffer
    private var consumed = 0          // file bytes dropped before buffer[0]
    private var eof = false
    private let blockSize: Int
    private(set) var shape: Shape?
    private var finished = false
    /// How far into the file reading has got, for progress.
    var bytesRead: Int { consumed + position }
    /// The byte offset in the file where the last element returned started.
    private(set) var elementOffset = 0
    /// The largest element allowed (a guard against a file that is one unending value).
    static let maxElementSize = 512 << 20

    private let allowsSemicolon: Bool
    /// Whether the white space last skipped held a carriage return not followed by a line feed.
    private var skippedLoneCR = false

    /// Opens the file; `prefix` bytes are skipped (a JavaScript module's `export const x =`),
    /// and then one `;` is allowed after the value.
    init(path: String, skipping prefix: Int = 0, blockSize: Int = 1 << 20) throws {
        allowsSemicolon = prefix > 0
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw FormatProblem(nil, "cannot open the file: \(String(cString: strerror(errno)))")
        }
        handle = h
        self.blockSize = blockSize
        if prefix > 0 { try h.seek(toOffset: UInt64(prefix)); consumed = prefix }
    }

    deinit { try? handle.close() }

    private func fill() throws -> Bool {
        guard !eof else { return false }
        if position > 0, position >= buffer.count / 2 {
            buffer.removeFirst(position)
            consumed += position
            position = 0
        }
        let data = try handle.read(upToCount: blockSize) ?? Data()
        if data.isEmpty { eof = true; return false }
        buffer.append(contentsOf: data)
        return true
    }

    private func problem(_ message: String) -> FormatProblem { FormatProblem("byte \(bytesRead)", message) }

    /// The next byte that is not white space, without taking it; nil at the end of the file.
    private func peekNonSpace() throws -> UInt8? {
        skippedLoneCR = false
        var afterCR = false
        while true {
            while position < buffer.count {
                let b = buffer[position]
                if afterCR, b != 0x0A { skippedLoneCR = true }
                afterCR = b == 0x0D
                if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { position += 1 } else { return b }
            }
            if try !fill() {
                if afterCR { skippedLoneCR = true }
                return nil
            }
        }
    }

    /// The next element's bytes, or nil after the last one.
    func next() throws -> [UInt8]? {
        if finished { return nil }
        if shape == nil {
            switch try peekNonSpace() {
            case UInt8(ascii: "[")?:
                shape = .array
                position += 1
                if try peekNonSpace() == UInt8(ascii: "]") {
                    position += 1
                    finished = true
                    try expectEnd()
                    return nil
                }
            case UInt8(ascii: "{")?:
                shape = .object
                let element = try readValue()
                finished = true
                try expectEnd()
                return element
            case nil: throw problem("the file is empty")
            default: throw problem("expected a JSON array or object")
            }
        } else {
            switch try peekNonSpace() {
            case UInt8(ascii: ",")?: position += 1
            case UInt8(ascii: "]")?:
                position += 1
                finished = true
                try expectEnd()
                return nil
            case nil: throw problem("the file ends inside the top-level array (it is truncated)")
            default: throw problem("expected \",\" or \"]\" after an element")
            }
        }
        return try readValue()
    }

    private func expectEnd() throws {
        // A JavaScript module's `export const x = [...];` ends with a semicolon.
        if allowsSemicolon, try peekNonSpace() == UInt8(ascii: ";") { position += 1 }
        guard try peekNonSpace() != nil else { return }
        if skippedLoneCR {
            // Old Mac line endings: a JSON Lines file read as one line, its first record then more.
            throw problem("unexpected bytes after the JSON value: the lines end in a carriage return alone (CR, "
                + "old Mac line endings), so the file reads as one line; end each line with a line feed, e.g. "
                + "`tr '\\r' '\\n' < FILE > FIXED`, and import that")
        }
        throw problem("unexpected bytes after the JSON value")
    }

    /// Reads one complete value (object, array, string or scalar) starting at the next non-space byte.
    private func readValue() throws -> [UInt8] {
        guard let first = try peekNonSpace() else { throw problem("the file ends where a value should start (it is truncated)") }
        var start = position
        elementOffset = consumed + position
        var depth = 0
        var inString = false
        var escaped = false
        var i = position
        let scalar = first != UInt8(ascii: "{") && first != UInt8(ascii: "[") && first != UInt8(ascii: "\"")
        func take(_ end: Int) -> [UInt8] {
            let out = Array(buffer[start..<end])
            position = end
            return out
        }
        while true {
            while i < buffer.count {
                let b = buffer[i]
                if inString {
                    if escaped { escaped = false }
                    else if b == UInt8(ascii: "\\") { escaped = true }
                    else if b == UInt8(ascii: "\"") {
                        inString = false
                        if depth == 0 { return take(i + 1) }
                    }
                } else if scalar {
                    if b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}") || b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 {
                        return take(i)
                    }
                } else {
                    switch b {
                    case UInt8(ascii: "\""): inString = true
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { return take(i + 1) }
                    default: break
                    }
                }
                i += 1
            }
            guard i - start <= Self.maxElementSize else { throw problem("one element is larger than 512 MiB") }
            let scanned = i - start
            position = start  // fill keeps the bytes from `position` on, and may move them to the front
            let moved = try fill()
            start = position
            if !moved {
                if scalar { return take(buffer.count) }
                throw problem("the file ends inside a value that starts at byte \(elementOffset) (it is truncated)")
            }
            i = start + scanned
        }
    }
}
