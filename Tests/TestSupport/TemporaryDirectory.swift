import Foundation

/// A fresh directory under the system's temporary directory, removed with everything in it
/// when the value is released (at the end of the test that holds it, whether it passed or not).
public final class TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Creates `PREFIX-UUID` under the temporary directory.
    public init(prefix: String = "hubsync-test") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            fatalError("cannot create the test directory \(path): \(error)")
        }
    }

    /// Removed when released, unless HUBSYNC_KEEP_TEST_DIRS is set (to read an agent's log after a failure).
    deinit {
        guard ProcessInfo.processInfo.environment["HUBSYNC_KEEP_TEST_DIRS"] == nil else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The directory as a file URL.
    public var url: URL { URL(fileURLWithPath: path, isDirectory: true) }
}

/// Runs `body` with a fresh, not yet existing directory path, removing it afterwards (also when
/// `body` throws).
public func withTemporaryDirectory<R>(_ body: (URL) throws -> R) rethrows -> R {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("hubsync-test-\(UUID().uuidString)", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// Runs `body` with a fresh, not yet existing directory path, removing it afterwards (also when
/// `body` throws).
public func withTemporaryDirectory<R>(_ body: (URL) async throws -> R) async rethrows -> R {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("hubsync-test-\(UUID().uuidString)", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}
