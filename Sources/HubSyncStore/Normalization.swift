import Foundation
public import HubSyncCore

/// Names in local writes must be in Unicode NFC.
///
/// Field names and object keys are compared as Swift strings, which treat two spellings of one
/// character as equal (protocol/SPEC.md 1.13); refusing other spellings at the door means this
/// device never writes two names that differ only in normalisation. Values are compared by bytes
/// and any spelling is kept as written.
enum Normalization {
    static func check(_ patch: [String: Value]) throws(ValidationFailure) {
        for (name, value) in patch {
            try checkName(name, what: "field name")
            try checkKeys(value)
        }
    }

    static func checkKeys(_ value: Value) throws(ValidationFailure) {
        switch value {
        case .object(let o):
            for (k, v) in o {
                try checkName(k, what: "object key")
                try checkKeys(v)
            }
        case .array(let a):
            for v in a { try checkKeys(v) }
        default: break
        }
    }

    static func checkName(_ name: String, what: String) throws(ValidationFailure) {
        if name.utf8.allSatisfy({ $0 < 0x80 }) { return } // ASCII is always NFC
        if !name.precomposedStringWithCanonicalMapping.utf8.elementsEqual(name.utf8) {
            throw ValidationFailure("\(what) \"\(name)\" is not in Unicode NFC; write it precomposed "
                + "(the same text as \"\(name.precomposedStringWithCanonicalMapping)\")")
        }
    }
}
