/// Lowercase hexadecimal encoding and decoding, for public values and the identity file.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Encodes bytes as lowercase hex.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = [UInt8]()
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Decodes hex text (either case), or returns nil if it has an odd length or a non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { text in
            guard text.count % 2 == 0 else { return nil }
            var bytes = [UInt8](repeating: 0, count: text.count / 2)
            let decoded = bytes.withUnsafeMutableBytes { decode(UnsafeRawBufferPointer(text), into: $0) }
            return decoded ? bytes : nil
        }
    }

    /// The value of one hex digit (either case), or nil for any other character.
    static func value(ofDigit character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Decodes hex text (either case) into `output`, which must hold exactly half as many bytes.
    ///
    /// Returns false, leaving `output` partly written, if the text has the wrong length or a
    /// character that is not a hex digit.
    public static func decode(_ text: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard text.count == output.count * 2 else { return false }
        for index in 0..<output.count {
            guard let high = value(ofDigit: text[2 * index]),
                  let low = value(ofDigit: text[2 * index + 1]) else { return false }
            output[index] = high << 4 | low
        }
        return true
    }
}
