/// A JSON value as HubSync stores it: the content of a field or a set element.
///
/// Numbers are normalised: an integral number that fits in 64 bits is an ``int``, every other
/// number a ``double``, so `1` and `1.0` are the same value everywhere (see protocol/SPEC.md).
///
/// Equality and hashing compare strings by their UTF-8 bytes, not by Unicode canonical
/// equivalence as Swift's `String` does: two spellings of "é" are different values, as they are
/// in the canonical encoding, so equal values always have equal bytes (protocol/SPEC.md 1.2).
public enum Value: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([Value])
    case object([String: Value])

    /// A number normalised to ``int`` when it is integral and fits, else ``double``.
    public static func number(_ d: Double) -> Value {
        if d.rounded(.towardZero) == d, d >= -9.223372036854775808e18, d < 9.223372036854775808e18 {
            return .int(Int64(d))
        }
        return .double(d)
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var arrayValue: [Value]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [String: Value]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, Value)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
    public init(floatLiteral value: Double) { self = .number(value) }
}

extension Value {
    public static func == (a: Value, b: Value) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x.bitPattern == y.bitPattern
        case (.string(let x), .string(let y)): return utf8Equal(x, y)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0 == $1 }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in x {
                guard let i = y.index(forKey: k), utf8Equal(y[i].key, k), y[i].value == v else {
                    return false
                }
            }
            return true
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .bool(let b): hasher.combine(b ? 2 as UInt8 : 1)
        case .int(let i): hasher.combine(3 as UInt8); hasher.combine(i)
        case .double(let d): hasher.combine(4 as UInt8); hasher.combine(d.bitPattern)
        case .string(let s): hasher.combine(5 as UInt8); Value.hashBytes(s, into: &hasher)
        case .array(let a):
            hasher.combine(6 as UInt8)
            hasher.combine(a.count)
            for v in a { v.hash(into: &hasher) }
        case .object(let o):
            hasher.combine(7 as UInt8)
            hasher.combine(o.count)
            // Order-independent: the sum of each entry's own hash.
            var sum = 0
            for (k, v) in o {
                var h = Hasher()
                Value.hashBytes(k, into: &h)
                v.hash(into: &h)
                sum &+= h.finalize()
            }
            hasher.combine(sum)
        }
    }

    static func hashBytes(_ s: String, into hasher: inout Hasher) {
        var s = s
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
