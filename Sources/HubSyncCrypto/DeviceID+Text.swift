/// The text form people read, type and compare: base32 with check characters, in groups.
///
/// The 32 bytes are RFC 4648 base32 without padding (52 characters, the last one carrying only
/// one bit, so always `A` or `Q`), cut into 4 blocks of 13; each block gets a Luhn mod 32 check
/// character, giving 56 characters shown as 8 groups of 7: `XXXXXXX-XXXXXXX-…`. The check
/// character of block k is the last character of group 2k+2.
extension DeviceID: CustomStringConvertible {
    /// The 56 characters as 8 groups of 7 joined by "-".
    public var description: String {
        var text = [UInt8]()
        text.reserveCapacity(DeviceIDText.characterCount + DeviceIDText.groupCount - 1)
        for (index, codePoint) in DeviceIDText.checkedCodePoints(of: bytes).enumerated() {
            if index > 0, index % DeviceIDText.groupLength == 0 { text.append(UInt8(ascii: "-")) }
            text.append(DeviceIDText.alphabet[codePoint])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The first group of 7 characters, enough to tell devices apart in logs.
    public var short: String { String(description.prefix(DeviceIDText.groupLength)) }

    /// Parses the text form, as typed or pasted by a person.
    ///
    /// Accepts either case, ignores "-" and white space, and reads the look-alikes 0, 1 and 8 as
    /// O, I and B. Every check character must match.
    public init(parsing text: String) throws(DeviceIDError) {
        let codePoints = try DeviceIDText.normalizedCodePoints(of: text)
        guard codePoints.count == DeviceIDText.characterCount else {
            throw DeviceIDError(
                code: .wrongLength,
                message: "device ID has \(codePoints.count) characters; expected \(DeviceIDText.characterCount) "
                    + "(8 groups of 7) — copy it again from `hubsync id` on that device")
        }
        var data = [Int]()
        data.reserveCapacity(DeviceIDText.dataCharacterCount)
        for block in 0..<DeviceIDText.blockCount {
            let start = block * (DeviceIDText.blockLength + 1)
            let blockData = codePoints[start..<start + DeviceIDText.blockLength]
            guard DeviceIDText.checkCodePoint(for: blockData) == codePoints[start + DeviceIDText.blockLength] else {
                let group = 2 * block + 2
                throw DeviceIDError(
                    code: .checkMismatch,
                    message: "device ID check character in group \(group) does not match: a character in "
                        + "groups \(group - 1)–\(group) is mistyped or two are swapped; "
                        + "compare it with `hubsync id` on that device")
            }
            data.append(contentsOf: blockData)
        }
        guard let bytes = DeviceIDText.base32Decode(data) else {
            throw DeviceIDError(
                code: .malformed,
                message: "device ID is not one hubsync prints (the 6th character of group 8 must be A or Q); "
                    + "copy it again from `hubsync id` on that device")
        }
        self.init(exactBytes: bytes)
    }
}

/// Base32 and Luhn mod 32 for ``DeviceID``'s text form.
enum DeviceIDText {
    /// RFC 4648 base32 alphabet; a character's index is its code point.
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    static let dataCharacterCount = 52
    static let blockCount = 4
    static let blockLength = 13
    static let characterCount = 56
    static let groupCount = 8
    static let groupLength = 7

    /// The 56 code points: the base32 of `bytes` in 4 blocks, each followed by its check.
    static func checkedCodePoints(of bytes: [UInt8]) -> [Int] {
        let data = base32Encode(bytes)
        var result = [Int]()
        result.reserveCapacity(characterCount)
        for block in 0..<blockCount {
            let blockData = data[block * blockLength..<(block + 1) * blockLength]
            result.append(contentsOf: blockData)
            result.append(checkCodePoint(for: blockData))
        }
        return result
    }

    /// The code points of `text` after dropping separators and mapping case and look-alikes.
    static func normalizedCodePoints(of text: String) throws(DeviceIDError) -> [Int] {
        var result = [Int]()
        result.reserveCapacity(characterCount)
        for character in text.unicodeScalars {
            switch character {
            case "-", " ", "\t", "\n", "\r": continue
            case "0": result.append(codePoint(of: "O"))
            case "1": result.append(codePoint(of: "I"))
            case "8": result.append(codePoint(of: "B"))
            case "A"..."Z", "2"..."7": result.append(codePoint(of: character))
            case "a"..."z": result.append(codePoint(of: Unicode.Scalar(character.value - 32)!))
            default:
                throw DeviceIDError(
                    code: .invalidCharacter,
                    message: "device ID contains \"\(character)\", which is not used in device IDs "
                        + "(letters A–Z and digits 2–7, in groups joined by \"-\"); "
                        + "copy it again from `hubsync id` on that device")
            }
        }
        return result
    }

    /// The code point of an upper-case letter A–Z or digit 2–7.
    private static func codePoint(of character: Unicode.Scalar) -> Int {
        switch character {
        case "A"..."Z": Int(character.value - Unicode.Scalar("A").value)
        default: Int(character.value - Unicode.Scalar("2").value) + 26
        }
    }

    /// The Luhn mod N check code point (N = 32) for `codePoints`.
    ///
    /// From the rightmost character leftwards, code points are weighted 2, 1, 2, …; a weighted
    /// value is reduced to the sum of its two base-32 digits; the check makes the total a multiple
    /// of 32. It catches every single substitution and every adjacent swap except of `A` and `7`
    /// (code points 0 and 31), the known blind spot of Luhn mod N, like 09/90 in Luhn mod 10.
    static func checkCodePoint(for codePoints: some BidirectionalCollection<Int>) -> Int {
        let n = alphabet.count
        var factor = 2
        var sum = 0
        for codePoint in codePoints.reversed() {
            let addend = factor * codePoint
            sum += addend / n + addend % n
            factor = factor == 2 ? 1 : 2
        }
        return (n - sum % n) % n
    }

    /// RFC 4648 base32 code points of `bytes`, without padding.
    static func base32Encode(_ bytes: [UInt8]) -> [Int] {
        var result = [Int]()
        result.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer = 0
        var bitCount = 0
        for byte in bytes {
            buffer = buffer << 8 | Int(byte)
            bitCount += 8
            while bitCount >= 5 {
                bitCount -= 5
                result.append(buffer >> bitCount & 31)
            }
        }
        if bitCount > 0 { result.append(buffer << (5 - bitCount) & 31) }
        return result
    }

    /// Decodes unpadded base32 code points, or nil if the unused trailing bits are not zero.
    static func base32Decode(_ codePoints: [Int]) -> [UInt8]? {
        var result = [UInt8]()
        result.reserveCapacity(codePoints.count * 5 / 8)
        var buffer = 0
        var bitCount = 0
        for codePoint in codePoints {
            buffer = (buffer << 5 | codePoint) & 0xFFF
            bitCount += 5
            if bitCount >= 8 {
                bitCount -= 8
                result.append(UInt8(truncatingIfNeeded: buffer >> bitCount))
            }
        }
        return buffer & ((1 << bitCount) - 1) == 0 ? result : nil
    }
}
