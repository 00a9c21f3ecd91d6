import Foundation

/// A condition a test waited for did not come true in time.
public struct TimedOut: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Polls `condition` until it holds, suspending (not blocking a thread) between polls; throws
/// ``TimedOut`` naming `what` and the caller's line after `timeout` seconds.
public func waitUntil(_ what: String = "a condition", timeout: Double, interval: Double = 0.01,
                      fileID: String = #fileID, line: Int = #line,
                      _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: .milliseconds(Int64(timeout * 1000)))
    while true {
        if try await condition() { return }
        guard clock.now < deadline else { break }
        try await Task.sleep(for: .milliseconds(Int64(max(interval, 0.001) * 1000)))
    }
    throw TimedOut(description: "timed out after \(timeout) s waiting for \(what) (\(fileID):\(line))")
}

/// Runs a blocking `body` (a socket read, a `waitpid`) on a thread of its own, so that it does
/// not hold one of the cooperative pool's few threads while it waits.
public func onDedicatedThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
