import Foundation

/// Decodes hex test vectors.
func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)! }
}

/// Encodes bytes as lowercase hex, for comparing against vectors.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// Runs `body` with a fresh, not yet existing directory path, removing it afterwards.
func withTemporaryDirectory<R>(_ body: (URL) throws -> R) rethrows -> R {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("hubsync-crypto-tests-\(UUID().uuidString)", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}
