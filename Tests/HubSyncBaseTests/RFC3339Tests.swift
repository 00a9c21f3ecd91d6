import Foundation
import HubSyncBase
import Testing

@Suite struct RFC3339Tests {
    /// `rfc3339` writes the date by hand: it agrees with Foundation's ISO 8601 formatter over the
    /// years 1970 to 9999 (leap days and century years included), and writes the milliseconds
    /// as they are.
    @Test func agreesWithFoundation() {
        let foundation = ISO8601DateFormatter()
        foundation.formatOptions = [.withInternetDateTime]
        var rng = SystemRandomNumberGenerator()
        let last: UInt64 = 253_402_300_799  // 9999-12-31T23:59:59Z
        let fixed: [UInt64] = [0, 1, 59, 86_399, 86_400, 68_169_600, 951_782_400, 951_868_800, 4_107_542_400,
                               4_107_456_000, 1_764_633_667, 13_569_465_600, last]
        for s in fixed + (0..<5_000).map({ _ in UInt64.random(in: 0...last, using: &rng) }) {
            let whole = foundation.string(from: Date(timeIntervalSince1970: Double(s)))
            #expect(rfc3339(millis: s * 1000, fractional: false) == whole, "\(s) s")
            #expect(rfc3339(millis: s * 1000 + 42) == String(whole.dropLast()) + ".042Z", "\(s) s")
        }
        #expect(rfc3339(millis: 1_796_078_467_123) == "2026-11-30T22:41:07.123Z")
        #expect(rfc3339(millis: 951_782_400_005) == "2000-02-29T00:00:00.005Z")
        #expect(rfc3339(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(rfc3339(millis: 4_107_542_399_999) == "2100-02-28T23:59:59.999Z")
        #expect(rfc3339(millis: 4_107_542_399_999, fractional: false) == "2100-02-28T23:59:59Z")
        #expect(rfc3339(millis: (1 << 48) - 1) == "10889-08-02T05:31:50.655Z", "the latest HLC reading")
    }
}
