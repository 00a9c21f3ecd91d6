@preconcurrency internal import CHubSodium

/// An invite code as people read and type it: `ABCD-1234-5678`.
///
/// The four letters are the invite's public **name** (they say which invite, and are sent in
/// the clear); the digits are the **secret**, at least 8 of them, used only as the CPace
/// password and never sent. Letters exclude I and O, which read like digits.
public struct InviteCode: Sendable {
    /// Letters an invite name is made of.
    public static let nameAlphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")
    /// Letters in a generated name.
    public static let nameLength = 4
    /// Fewest secret digits a code may have.
    public static let minimumSecretDigits = 8
    /// Most secret digits a code may have.
    public static let maximumSecretDigits = 32

    /// The public name, upper case.
    public let name: String
    /// The secret digits as ASCII, in secure memory.
    public let secret: SecureBytes

    /// The code as shown to people: name, then the digits in groups of four, joined by dashes.
    public var text: String {
        let digits = secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        var groups: [String] = [name]
        var rest = Substring(digits)
        while !rest.isEmpty {
            groups.append(String(rest.prefix(4)))
            rest = rest.dropFirst(4)
        }
        return groups.joined(separator: "-")
    }

    /// A fresh code: a random name and `digits` uniformly random secret digits.
    public static func generate(digits: Int = minimumSecretDigits) -> InviteCode {
        precondition((minimumSecretDigits...maximumSecretDigits).contains(digits), "an invite code has 8 to 32 digits")
        Sodium.ensureInitialized()
        let name = String((0..<nameLength).map { _ in nameAlphabet[Int(randombytes_uniform(UInt32(nameAlphabet.count)))] })
        let secret = SecureBytes(uninitializedCount: digits) { out in
            for i in 0..<digits { out[i] = UInt8(ascii: "0") + UInt8(randombytes_uniform(10)) }
        }
        return InviteCode(name: name, secret: secret)
    }

    /// Makes a code from its parts, for tests and vectors.
    public init(name: String, secret: SecureBytes) {
        self.name = name
        self.secret = secret
    }

    /// Reads a code as a person typed it: letters, then digits; dashes and spaces anywhere are
    /// ignored and the letters may be lower case.
    ///
    /// - Throws: `.invalidCode` with a message saying what is wrong and what a code looks like.
    public init(parsing text: String) throws(PairingError) {
        let example = "a code looks like ABCD-1234-5678: four letters, then at least 8 digits"
        let kept = text.unicodeScalars.filter { $0 != "-" && $0 != " " && $0 != "\t" }
        guard !kept.isEmpty else {
            throw PairingError(code: .invalidCode, message: "the invite code is empty; \(example)")
        }
        var letters: [Character] = []
        var digits: [UInt8] = []
        for scalar in kept {
            if scalar.isASCII, let ascii = UInt8(exactly: scalar.value), (0x30...0x39).contains(ascii) {
                digits.append(ascii)
                continue
            }
            let upper = Character(String(scalar).uppercased())
            guard digits.isEmpty, Self.nameAlphabet.contains(upper) else {
                if !digits.isEmpty, Self.nameAlphabet.contains(upper) || upper == "I" || upper == "O" {
                    throw PairingError(code: .invalidCode, message:
                        "the invite code has a letter (\(scalar)) among its digits; \(example)")
                }
                throw PairingError(code: .invalidCode, message: "the invite code contains \"\(scalar)\", "
                    + "which is not a letter of an invite name (no I or O) nor a digit; \(example)")
            }
            letters.append(upper)
        }
        guard letters.count == Self.nameLength else {
            throw PairingError(code: .invalidCode, message:
                "the invite code starts with \(letters.count) letters; it needs exactly \(Self.nameLength); \(example)")
        }
        guard digits.count >= Self.minimumSecretDigits else {
            throw PairingError(code: .invalidCode, message: "the invite code has \(digits.count) digits; it needs at "
                + "least \(Self.minimumSecretDigits) (check that none was left out); \(example)")
        }
        guard digits.count <= Self.maximumSecretDigits else {
            throw PairingError(code: .invalidCode, message:
                "the invite code has \(digits.count) digits; at most \(Self.maximumSecretDigits); \(example)")
        }
        self.init(name: String(letters), secret: SecureBytes(copying: digits))
        for i in digits.indices { digits[i] = 0 }
    }
}

extension InviteCode: CustomStringConvertible {
    /// The name only: the secret never appears in logs.
    public var description: String { "InviteCode(\(name)-…)" }
}
