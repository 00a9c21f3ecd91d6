import HubSyncCore
import Testing

/// Text that is not UTF-8 is refused at the offset of its first bad byte, whatever the path
/// through the parser (a plain string, one with escapes, a field name).
@Suite struct JSONOffsetTests {
    static func offset(_ bytes: [UInt8]) -> Int? {
        do { _ = try JSON.parse(bytes); return nil } catch { return error.offset }
    }

    /// Inputs with a bad byte and its offset.
    static func bytes(_ before: String, _ bad: [UInt8], _ after: String) -> [UInt8] {
        var out: [UInt8] = Array(before.utf8)
        out.append(contentsOf: bad)
        out.append(contentsOf: Array(after.utf8))
        return out
    }

    static let cases: [([UInt8], Int)] = [
        (bytes(#"{"text":"ab"#, [0xFF], #"cd"}"#), 11),
        (bytes(#"{"text":"a\n"#, [0xC3, 0x28], #""}"#), 12),             // after an escape
        (bytes(#"{"ab"#, [0xED, 0xA0, 0x80], #"":1}"#), 4),              // a surrogate, in a name
        (bytes(#"["é", "x"#, [0xF4, 0x90, 0x80, 0x80], #""]"#), 9),      // above U+10FFFF
    ]

    @Test func theOffsetIsTheBadByte() {
        for (input, expected) in Self.cases { #expect(Self.offset(input) == expected, "\(input)") }
    }

    /// Where a value should start, a byte that is not UTF-8 is named by its value as such, a
    /// character that is one quoted, a control byte by its value (a helper saw "unexpected
    /// character 'ÿ'" for a line starting with 0xFF).
    @Test func aBadStartOfAValueIsNamedForWhatItIs() {
        func message(_ bytes: [UInt8]) -> String {
            do { _ = try JSON.parse(bytes); return "" } catch { return error.message }
        }
        #expect(message([0xFF, 0x7B, 0x7D]).contains("byte 0xFF, which is not valid UTF-8"))
        #expect(message(Array("é".utf8)).contains("character 'é'"))
        #expect(message([0x01]).contains("control byte 0x1"))
        #expect(message(Array("x".utf8)).contains("character 'x'"))
    }

    /// Strings are scanned eight bytes at a time: a quote, a backslash, a control byte, a
    /// non-ASCII character or a bad byte at any place within or across those words is found
    /// where it is, as a byte at a time would (one string of every length to 40, each such byte
    /// at every offset).
    @Test func everySpecialByteIsFoundAtEveryOffset() throws {
        for length in 0...40 {
            let plain = Array(String(repeating: "abcdefghij", count: 4).utf8.prefix(length))
            #expect(try JSON.parse([0x22] + plain + [0x22]) == .string(String(decoding: plain, as: UTF8.self)))
            for at in 0..<max(length, 1) where length > 0 {
                func with(_ bytes: [UInt8]) -> [UInt8] { [0x22] + plain[..<at] + bytes + plain[at...] + [0x22] }
                let before = String(decoding: plain[..<at], as: UTF8.self), after = String(decoding: plain[at...], as: UTF8.self)
                #expect(try JSON.parse(with(Array(#"\""#.utf8))) == .string(before + "\"" + after))
                #expect(try JSON.parse(with(Array(#"\n"#.utf8))) == .string(before + "\n" + after))
                #expect(try JSON.parse(with(Array("é".utf8))) == .string(before + "é" + after))
                #expect(try JSON.parse(with(Array("👍".utf8))) == .string(before + "👍" + after))
                // A quote ends the string there: the rest is not JSON.
                #expect(Self.offset(with([0x22])) == at + 2, "length \(length) at \(at)")
                for bad: UInt8 in [0x00, 0x0A, 0x1F] {
                    let message: String
                    do { _ = try JSON.parse(with([bad])); message = "" } catch { message = error.message }
                    #expect(message.contains("control character"), "byte \(bad) at \(at) of \(length): \(message)")
                }
                #expect(Self.offset(with([0xFF])) == at + 1, "0xFF at \(at) of \(length)")
                #expect(Self.offset(with([0xC3])) == at + 1, "a cut character at \(at) of \(length)")
            }
        }
        // Non-ASCII bytes in the words scanned whole, and a bad one after them.
        #expect(Self.offset(Self.bytes(#""ééééééééé"#, [0xFF], #"""#)) == 19)
    }

    @Test func wellFormedTextHasNoInvalidByte() {
        let text = Array("plain, é, 漢字, 👍🏽".utf8)
        #expect(text.withUnsafeBufferPointer { UTF8Check.firstInvalid(in: $0) } == nil)
        let overlong: [UInt8] = [0x61, 0xC0, 0xAF]
        #expect(overlong.withUnsafeBufferPointer { UTF8Check.firstInvalid(in: $0) } == 1)
    }
}
