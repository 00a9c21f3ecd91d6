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

    @Test func wellFormedTextHasNoInvalidByte() {
        let text = Array("plain, é, 漢字, 👍🏽".utf8)
        #expect(text.withUnsafeBufferPointer { UTF8Check.firstInvalid(in: $0) } == nil)
        let overlong: [UInt8] = [0x61, 0xC0, 0xAF]
        #expect(overlong.withUnsafeBufferPointer { UTF8Check.firstInvalid(in: $0) } == 1)
    }
}
