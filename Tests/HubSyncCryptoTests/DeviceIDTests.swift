import Testing
@testable import HubSyncCrypto

@Suite struct DeviceIDTests {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

    private func randomID() -> DeviceID {
        DeviceID(publicKey: SigningKey.generate().publicKey)
    }

    /// The 56 characters without the "-" separators.
    private func characters(of id: DeviceID) -> [Character] {
        id.description.filter { $0 != "-" }.map { $0 }
    }

    @Test func isTheBlake2b256OfThePublicKey() {
        let key = SigningKey.generate().publicKey
        #expect(DeviceID(publicKey: key).bytes == Blake2b.hash(key.rawRepresentation, outputLength: 32))
    }

    @Test func textRoundTripForRandomKeys() throws {
        for _ in 0..<200 {
            let id = randomID()
            let text = id.description
            #expect(text.count == 63)
            #expect(text.split(separator: "-").map(\.count) == Array(repeating: 7, count: 8))
            #expect(try DeviceID(parsing: text) == id)
            #expect(id.short == String(text.prefix(7)))
        }
    }

    @Test func bytesHexAndWordsRoundTrip() throws {
        for _ in 0..<50 {
            let id = randomID()
            #expect(id.bytes.count == 32)
            #expect(try DeviceID(bytes: id.bytes) == id)
            #expect(id.hex == hex(id.bytes))
            #expect(try DeviceID(hex: id.hex) == id)
            #expect(try DeviceID(hex: id.hex.uppercased()) == id)
            #expect(DeviceID(words: id.words) == id)
            var buffer: [UInt8] = [9]
            id.append(to: &buffer)
            #expect(buffer == [9] + id.bytes)
        }
        let id = try DeviceID(bytes: Array(1...32))
        #expect(id.words.0 == 0x0102_0304_0506_0708)
        #expect(id.words.3 == 0x191A_1B1C_1D1E_1F20)
    }

    @Test func orderAndEqualityFollowTheBytes() {
        let ids = (0..<100).map { _ in randomID() }
        for (a, b) in zip(ids, ids.shuffled()) {
            #expect((a < b) == a.bytes.lexicographicallyPrecedes(b.bytes))
            #expect((a == b) == (a.bytes == b.bytes))
        }
        #expect(Set(ids + ids).count == 100)
    }

    @Test func everySingleSubstitutionIsCaught() {
        let id = randomID()
        let original = characters(of: id)
        for position in original.indices {
            for replacement in Self.alphabet where replacement != original[position] {
                var text = original
                text[position] = replacement
                #expect(throws: DeviceIDError.self, "position \(position) → \(replacement)") {
                    try DeviceID(parsing: String(text))
                }
            }
        }
    }

    /// Every swap of two adjacent different characters is caught, except `A`/`7` inside one
    /// block: the known blind spot of Luhn mod 32 (see `blindSpotOfLuhnMod32`).
    @Test func adjacentTranspositionsAreCaught() {
        for _ in 0..<50 {
            let original = characters(of: randomID())
            for position in 0..<original.count - 1 where original[position] != original[position + 1] {
                let pair = Set([original[position], original[position + 1]])
                if pair == ["A", "7"], position / 14 == (position + 1) / 14 { continue }
                var text = original
                text.swapAt(position, position + 1)
                #expect(throws: DeviceIDError.self, "swap at \(position)") { try DeviceID(parsing: String(text)) }
            }
        }
    }

    /// Documents the one undetected adjacent swap, so a change of check algorithm notices it.
    @Test func blindSpotOfLuhnMod32() throws {
        let block = Array("A7CDEFGHIJKLM")
        let swapped = Array("7ACDEFGHIJKLM")
        let codePoints = { (text: [Character]) in text.map { Self.alphabet.firstIndex(of: $0)! } }
        #expect(DeviceIDText.checkCodePoint(for: codePoints(block)) == DeviceIDText.checkCodePoint(for: codePoints(swapped)))
    }

    @Test func acceptsLowerCaseSeparatorsAndLookAlikes() throws {
        var id = randomID()
        while !(id.description.contains("O") && id.description.contains("I") && id.description.contains("B")) {
            id = randomID()
        }
        let typed = id.description
            .replacingOccurrences(of: "O", with: "0")
            .replacingOccurrences(of: "I", with: "1")
            .replacingOccurrences(of: "B", with: "8")
            .replacingOccurrences(of: "-", with: " ")
            .lowercased()
        #expect(try DeviceID(parsing: " " + typed + "\n") == id)
        #expect(try DeviceID(parsing: id.description.filter { $0 != "-" }) == id)
    }

    @Test func wrongLengthSaysWhatToDo() {
        let text = String(randomID().description.dropLast())
        let error = #expect(throws: DeviceIDError.self) { try DeviceID(parsing: text) }
        #expect(error?.code == .wrongLength)
        #expect(error?.description ==
            "device ID has 55 characters; expected 56 (8 groups of 7) — copy it again from `hubsync id` on that device")
    }

    @Test func checkMismatchNamesTheGroup() {
        var text = characters(of: randomID())
        text[20] = text[20] == "C" ? "D" : "C"  // group 3, checked in group 4
        let error = #expect(throws: DeviceIDError.self) { try DeviceID(parsing: String(text)) }
        #expect(error?.code == .checkMismatch)
        #expect(error?.description.hasPrefix("device ID check character in group 4 does not match") == true)
    }

    @Test func invalidCharacterIsNamed() {
        var text = characters(of: randomID())
        text[3] = "9"
        let error = #expect(throws: DeviceIDError.self) { try DeviceID(parsing: String(text)) }
        #expect(error?.code == .invalidCharacter)
        #expect(error?.description.contains("\"9\"") == true)
    }

    @Test func wrongByteAndHexLengthsAreRejected() {
        #expect(throws: DeviceIDError.self) { try DeviceID(bytes: [UInt8](repeating: 0, count: 31)) }
        #expect(throws: DeviceIDError.self) { try DeviceID(hex: String(repeating: "a", count: 63)) }
        #expect(throws: DeviceIDError.self) { try DeviceID(hex: String(repeating: "g", count: 64)) }
    }
}
