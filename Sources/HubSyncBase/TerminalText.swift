/// Text that is safe to print to a terminal.
///
/// The characters that could move the cursor, retitle the terminal, fake a line or reorder what
/// follows them are C0 and C1 controls, DEL, bidirectional marks, overrides and isolates, and the
/// Unicode line separators. They are written as `\u` escapes, as JSON writes C0.
public enum TerminalText {
    /// Whether `text` holds such a character.
    public static func hasControls(_ text: String) -> Bool {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return false }
        return text.unicodeScalars.contains(where: isControl)
    }

    /// `text` with each such character written as `\uXXXX` (lowercase hex).
    public static func escaped(_ text: String) -> String {
        guard hasControls(text) else { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x200E || v == 0x200F || (0x202A...0x202E).contains(v)
            || (0x2066...0x2069).contains(v) || v == 0x2028 || v == 0x2029 || v == 0x061C
    }
}

/// "1 record", "2 records": a count with its noun, singular or plural.
public func plural(_ count: Int, _ noun: String, _ plural: String? = nil) -> String {
    "\(count) " + (count == 1 ? noun : plural ?? noun + "s")
}

/// The offset of the first byte that is not part of valid UTF-8 in `bytes`, or nil when they are.
public func invalidUTF8Offset(_ bytes: some Sequence<UInt8>) -> Int? {
    var offset = 0
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar): offset += UTF8.width(scalar)
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}
