@_exported import HubSyncTestSupport
import Foundation

// `withTemporaryDirectory` and the seeded generator (`HandshakeTestRandom`) come from
// HubSyncTestSupport, re-exported above to every file of this target.

/// Decodes hex test vectors.
func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)! }
}

/// Encodes bytes as lowercase hex, for comparing against vectors.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
