import HubSyncCore
import Testing

/// The write path's quick answers agree with the rules they stand for.
@Suite struct SchemaRuleTests {
    /// An ID of printable ASCII passes without being read scalar by scalar; every control
    /// character (C0, DEL, C1) is refused wherever it stands, and other text is taken.
    @Test func recordIDsWithControlCharactersAreRefusedWhereverTheyStand() {
        for good in ["m1", "mem-000123", "a b~{}", "é", "名前", "x\u{A0}y", String(repeating: "z", count: 256)] {
            #expect(throws: Never.self, "\(good.debugDescription)") { try HubCollection.validate(id: good) }
        }
        for control in ["\u{0}", "\t", "\n", "\u{1F}", "\u{7F}", "\u{80}", "\u{85}", "\u{9F}"] {
            for id in [control, "a" + control, control + "a", "abc" + control + "def"] {
                #expect(throws: ValidationFailure.self, "\(id.debugDescription)") { try HubCollection.validate(id: id) }
            }
        }
        #expect(throws: ValidationFailure.self) { try HubCollection.validate(id: "") }
        #expect(throws: ValidationFailure.self) { try HubCollection.validate(id: String(repeating: "z", count: 257)) }
    }

    /// `isSetField` answers as `setFields` does, for every collection.
    @Test func isSetFieldAgreesWithSetFields() {
        for c in HubCollection.allCases {
            for name in ["traits", "tags", "name", "text", "value", "Tags", "tags ", ""] {
                #expect(c.isSetField(name) == c.setFields.contains(name), "\(c).\(name)")
            }
            for name in c.setFields { #expect(c.isSetField(name)) }
        }
    }
}
