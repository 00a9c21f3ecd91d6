import Glibc

/// A JSON text could not be read: what was wrong, and where.
public struct JSONError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var offset: Int
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// Reads and writes JSON text for ``Value``; strict RFC 8259, no comments, no trailing commas.
public enum JSON {
    /// Parses one JSON text; white space may surround it, nothing else may follow.
    public static func parse(_ text: String) throws(JSONError) -> Value {
        var text = text
        return try text.withUTF8 { buf in
            Result { () throws(JSONError) in try parse(UnsafeRawBufferPointer(buf)) }
        }.get()
    }

    /// Parses one JSON text from UTF-8 bytes.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> Value {
        var p = Parser(bytes: bytes.bindMemory(to: UInt8.self))
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        if p.pos != p.bytes.count { throw p.error("unexpected text after the value") }
        return v
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> Value {
        try bytes.withUnsafeBytes { raw in Result { () throws(JSONError) in try parse(raw) } }.get()
    }

    /// Writes compact JSON with object keys sorted by their UTF-8 bytes (canonical text form).
    public static func serialize(_ value: Value) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        write(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends compact canonical JSON for `value` to `out`.
    public static func write(_ value: Value, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): out.append(contentsOf: formatDouble(d).utf8)
        case .string(let s): writeString(s, to: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(v, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, key) in o.keys.sorted(by: utf8Less).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(o[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func formatDouble(_ d: Double) -> String {
        // Swift prints the shortest text that reads back to the same Double; "1e+20" is valid JSON.
        var s = "\(d)"
        if s.hasSuffix(".0") { s.removeLast(2) }
        return s
    }

    /// Appends a JSON string literal, escaping what RFC 8259 requires.
    public static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path: nothing to escape, copy the bytes at once.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: s.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Orders strings by their UTF-8 bytes, the order every canonical form in HubSync uses.
/// Compared with memcmp: iterating the two UTF-8 views was a visible part of an import's
/// sorting and key comparisons.
public func utf8Less(_ a: String, _ b: String) -> Bool {
    utf8Compare(a, b) < 0
}

/// ``utf8Less(_:_:)`` of two byte strings: unsigned bytes, a prefix first.
public func utf8Less(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    utf8Compare(x, y) < 0
}

/// Whether two strings have the same UTF-8 bytes (Swift's `==` also takes two spellings of one
/// character, precomposed and with a combining mark, as equal; HubSync's keys and names do not).
public func utf8Equal(_ a: String, _ b: String) -> Bool {
    utf8Compare(a, b) == 0
}

/// Below zero when `a` sorts before `b` by their UTF-8 bytes, zero when the bytes are equal,
/// above zero after: one pass for a comparison that needs both answers (``RecordKey``'s order).
public func utf8Compare(_ a: String, _ b: String) -> Int {
    var a = a, b = b
    return a.withUTF8 { x in b.withUTF8 { y in utf8Compare(x, y) } }
}

/// ``utf8Compare(_:_:)`` of two byte strings.
public func utf8Compare(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Int {
    let n = min(x.count, y.count)
    let c = n == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, n)
    return c != 0 ? Int(c) : x.count - y.count
}

struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    var pos = 0
    static let maxDepth = 128

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func error(_ message: String) -> JSONError { JSONError(message: message, offset: pos) }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONError) -> Value {
        guard depth < Parser.maxDepth else { throw error("nested more than \(Parser.maxDepth) levels deep") }
        guard pos < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            throw error("unexpected \(describeAt(pos)), expected a value")
        }
    }

    /// The character at `pos` where JSON's syntax wants another, for an error: quoted when it is
    /// printable text, else by its byte (a control byte, or bytes that are not valid UTF-8).
    func describeAt(_ pos: Int) -> String {
        let byte = bytes[pos]
        if byte < 0x20 || byte == 0x7F { return "control byte 0x\(String(byte, radix: 16, uppercase: true))" }
        if byte < 0x80 { return "character '\(Character(Unicode.Scalar(byte)))'" }
        var decoder = UTF8()
        var iterator = bytes[pos..<min(pos + 4, bytes.count)].makeIterator()
        if case .scalarValue(let scalar) = decoder.decode(&iterator) { return "character '\(Character(scalar))'" }
        return "byte 0x\(String(byte, radix: 16, uppercase: true)), which is not valid UTF-8"
    }

    mutating func expectWord(_ word: StaticString) throws(JSONError) {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard pos + w.count <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<w.count where bytes[pos + i] != w[i] {
            throw error("unknown word, expected '\(word)'")
        }
        pos += w.count
    }

    mutating func parseObject(depth: Int) throws(JSONError) -> Value {
        pos += 1
        var dict: [String: Value] = [:]
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(dict) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':' after key") }
            pos += 1
            skipWhitespace()
            let v = try parseValue(depth: depth + 1)
            if dict.updateValue(v, forKey: key) != nil { throw error("duplicate key \"\(key)\"") }
            skipWhitespace()
            guard pos < bytes.count else { throw error("unexpected end of input in an object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(dict) }
            throw error("expected ',' or '}' in an object")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONError) -> Value {
        pos += 1
        var arr: [Value] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(arr) }
        while true {
            skipWhitespace()
            arr.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard pos < bytes.count else { throw error("unexpected end of input in an array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(arr) }
            throw error("expected ',' or ']' in an array")
        }
    }

    mutating func parseString() throws(JSONError) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes. ASCII text needs no UTF-8 check (`String(validating:)` is
        // generic over the encoding; its metadata lookups showed in a profile of an import).
        var high: UInt8 = 0
        // Eight bytes at a time while none of them is a quote, a backslash or a control byte
        // (the "has a byte equal to / less than" tests of bit-twiddling lore: exact for whether
        // any byte is, not for which): a record's text is mostly such runs.
        if let base = bytes.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101, tops: UInt64 = 0x8080_8080_8080_8080
            var seen: UInt64 = 0
            while pos &+ 8 <= bytes.count {
                let w = UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self)
                let quote = w ^ (ones &* 0x22), slash = w ^ (ones &* 0x5C)
                let stop = ((quote &- ones) & ~quote) | ((slash &- ones) & ~slash) | ((w &- ones &* 0x20) & ~w)
                if stop & tops != 0 { break }
                seen |= w
                pos &+= 8
            }
            if seen & tops != 0 { high = 0x80 }
        }
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<pos])
                let s = high < 0x80 ? String(decoding: raw, as: UTF8.self) : try validated(raw, at: start)
                pos += 1
                return s
            }
            high |= b
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in a string; escape it") }
            pos += 1
        }
        var out = Array(bytes[start..<pos])
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                return try out.withUnsafeBufferPointer { buf throws(JSONError) in try validated(buf, at: start) }
            }
            if b < 0x20 { throw error("control character in a string; escape it") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(34)
            case UInt8(ascii: "\\"): out.append(92)
            case UInt8(ascii: "/"): out.append(47)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard pos + 1 < bytes.count, bytes[pos] == 92, bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw error("lone high surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("invalid low surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("lone low surrogate in \\u escape")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
            default: throw error("unknown escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        throw error("unterminated string")
    }

    mutating func hex4() throws(JSONError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    /// The string's bytes as text; when they are not UTF-8, the error points at the first bad
    /// byte of the input (escapes are ASCII, so the input's own bytes from `offset` show it).
    func validated(_ buf: UnsafeBufferPointer<UInt8>, at offset: Int) throws(JSONError) -> String {
        guard let s = UTF8Check.string(buf) else {
            let bad = UTF8Check.firstInvalid(in: UnsafeBufferPointer(rebasing: bytes[offset..<min(pos + 1, bytes.count)])) ?? 0
            throw JSONError(message: "string is not valid UTF-8", offset: offset + bad)
        }
        return s
    }

    mutating func parseNumber() throws(JSONError) -> Value {
        let start = pos
        var isInteger = true
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < bytes.count, (48...57).contains(bytes[pos]) else { throw error("expected a digit") }
        if bytes[pos] == 48 {
            pos += 1
            if pos < bytes.count, (48...57).contains(bytes[pos]) { throw error("leading zero in a number") }
        } else {
            while pos < bytes.count, (48...57).contains(bytes[pos]) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard pos < bytes.count, (48...57).contains(bytes[pos]) else { throw error("expected a digit after '.'") }
            while pos < bytes.count, (48...57).contains(bytes[pos]) { pos += 1 }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard pos < bytes.count, (48...57).contains(bytes[pos]) else { throw error("expected a digit in the exponent") }
            while pos < bytes.count, (48...57).contains(bytes[pos]) { pos += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        guard let d = Double(text), d.isFinite else {
            throw JSONError(message: "number out of range", offset: start)
        }
        return .number(d)
    }
}

/// Finds where bytes stop being UTF-8.
public enum UTF8Check {
    /// The bytes as a string, or nil when they are not UTF-8. Decoding repairs what is not UTF-8
    /// (with U+FFFD, itself valid), so the bytes are UTF-8 exactly when the result has the same
    /// bytes. Unlike `String(validating:as:)`, generic over the encoding, whose metadata lookups
    /// showed in profiles of a restore and an import, this is specialised.
    public static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var s = String(decoding: bytes, as: UTF8.self)
        let same = s.withUTF8 { out in
            out.count == bytes.count && (out.isEmpty || memcmp(out.baseAddress!, bytes.baseAddress!, out.count) == 0)
        }
        return same ? s : nil
    }

    /// The offset of the first byte that does not start (or continue) a well-formed UTF-8
    /// sequence (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF); nil when all are.
    public static func firstInvalid(in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let length: Int, second: ClosedRange<UInt8>
            switch b {
            case 0xC2...0xDF: (length, second) = (2, 0x80...0xBF)
            case 0xE0: (length, second) = (3, 0xA0...0xBF)
            case 0xED: (length, second) = (3, 0x80...0x9F)
            case 0xE1...0xEF: (length, second) = (3, 0x80...0xBF)
            case 0xF0: (length, second) = (4, 0x90...0xBF)
            case 0xF1...0xF3: (length, second) = (4, 0x80...0xBF)
            case 0xF4: (length, second) = (4, 0x80...0x8F)
            default: return i
            }
            guard i + 1 < bytes.count, second.contains(bytes[i + 1]) else { return i }
            for k in 2..<length where i + k >= bytes.count || !(0x80...0xBF).contains(bytes[i + k]) { return i }
            i += length
        }
        return nil
    }
}
