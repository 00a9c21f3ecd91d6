/// A file HubSync cannot import: which file, where in it, what is wrong. Nothing of it was imported.
public struct MigrationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file as the person named it.
    public var file: String
    /// Where in the file: "byte 1234", "line 7", "chunk tEXt at byte 33", "conversation 4".
    public var place: String?
    public var message: String
    /// The line, in a file of JSON Lines: then the text says `FILE:LINE:`, as compilers do.
    public var line: Int?

    public init(file: String, place: String? = nil, line: Int? = nil, _ message: String) {
        self.file = file
        self.place = place
        self.line = line
        self.message = message
    }

    /// The error as a sentence; control characters taken from the file or its name (C0, DEL,
    /// C1) are shown escaped (`\u{1B}`), never sent raw to a terminal.
    public var description: String {
        Self.escapingControls("\(file)" + (line.map { ":\($0)" } ?? "") + (place.map { ": \($0)" } ?? "") + ": \(message)")
            + "; nothing was imported from this file"
    }

    /// `text` with each C0 and C1 control character and DEL written as `\u{XX}`.
    public static func escapingControls(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// A problem found while reading one part of a file; the caller adds the file's name.
public struct FormatProblem: Error, CustomStringConvertible, Sendable {
    public var place: String?
    public var message: String
    public var description: String { (place.map { "\($0): " } ?? "") + message }
    public init(_ place: String?, _ message: String) {
        self.place = place
        self.message = message
    }
}
