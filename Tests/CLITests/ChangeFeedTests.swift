import Foundation
import Glibc
import HubSyncCore
import Testing

/// The local API's change feed loses nothing: a client that reads slowly while a bulk write
/// outruns every buffer still receives every change, once, in sequence order.
@Suite(.timeLimit(.minutes(10))) struct ChangeFeedTests {
    let dir = TemporaryDirectory()

    @Test func aSlowReaderGetsEveryChangeOnceInOrder() async throws {
        let agent = try await AgentProcess(Device(data: dir.path + "/a"))
        let feed = try SSEReader(port: agent.client.port, token: agent.client.token, path: "/v1/changes")
        defer { feed.close() }
        // The feed is live (caught up with the log) before the first write.
        try await onDedicatedThread { try feed.read(until: { $0.contains(": live\n") }) }
        // About 30 MB of events: far more than socket buffers and any in-memory queue hold.
        let total = 25_000, batch = 1_000, padding = String(repeating: "x", count: 1000)
        var first: Int64?, last: Int64 = 0
        for b in 0..<(total / batch) {
            let ops: [Value] = (0..<batch).map { i in
                ["op": "put", "collection": "memories", "id": .string("m\(b * batch + i)"), "fields": ["text": .string("memory \(b) \(i) \(padding)")]]
            }
            let answer = try await agent.api("POST", "/v1/batch", ["operations": .array(ops)]).objectValue ?? [:]
            guard case .int(let seq) = answer["last_sequence"] ?? .null else { Issue.record("no last_sequence: \(answer)"); return }
            first = first ?? seq - Int64(batch) + 1
            last = seq
            // The reader takes a little between batches: it falls ever further behind.
            try await onDedicatedThread { try feed.readSome(bytes: 4096) }
        }
        let expected = Array(try #require(first)...last)
        #expect(expected.count == total)
        // The body is chunked, one chunk per page of whole events: the last id ends the test.
        let lastID = last
        try await onDedicatedThread { try feed.read(until: { text in text.suffix(20_000).contains("id: \(lastID)\n") }) }
        // Lines end in "\n"; the chunked framing adds "\r\n" (one Character in Swift).
        let ids = feed.text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .compactMap { line in line.hasPrefix("id: ") ? Int64(line.dropFirst(4)) : nil }
        #expect(ids.count == expected.count)
        let missing = Set(expected).subtracting(ids).sorted()
        #expect(missing.isEmpty, "missing \(missing.count) sequences, first \(missing.prefix(10))")
        #expect(ids == expected, "not every sequence exactly once in order")
        await agent.stop()
    }

    /// A feed whose client closes the connection ends at once, with nothing written to it: its
    /// subscription does not wait for the next change (on an idle store, that could be never).
    @Test func aClosedFeedEndsWithoutAChange() async throws {
        let agent = try await AgentProcess(Device(data: dir.path + "/a"))
        let series = "hubsync_change_subscriptions"
        let before = try #require(try await metric(agent, series))
        var feeds: [SSEReader] = []
        for _ in 0..<3 {
            let feed = try SSEReader(port: agent.client.port, token: agent.client.token, path: "/v1/changes")
            try await onDedicatedThread { try feed.read(until: { $0.contains(": live\n") }) }
            feeds.append(feed)
        }
        #expect(try await metric(agent, series) == before + 3)
        for feed in feeds { feed.close() }
        try await waitUntil("the closed feeds' subscriptions to end", timeout: 10) {
            try await metric(agent, series) == before
        }
        await agent.stop()
    }
}

/// Reads a server-sent event stream from the local API over a plain socket (blocking reads: call
/// them on a dedicated thread).
final class SSEReader: @unchecked Sendable { // used by one test at a time, one call at a time
    let fd: Int32
    private(set) var text = ""

    init(port: UInt16, token: String, path: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw TimedOut(description: "cannot connect to the API") }
        // A small receive buffer (not tiny: a window of a few KiB makes TCP itself crawl), so
        // the agent's writes back up.
        var size: Int32 = 65536
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let request = "GET \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n"
        _ = request.withCString { write(fd, $0, strlen($0)) }
    }

    /// Reads at most `bytes` (one read; fewer when less is there).
    func readSome(bytes: Int) throws {
        var buf = [UInt8](repeating: 0, count: bytes)
        let n = Glibc.read(fd, &buf, buf.count)
        guard n > 0 else {
            throw TimedOut(description: "the change feed ended or stalled (read \(n), errno \(errno), \(text.utf8.count) bytes so far, "
                + "last: \(text.suffix(300)))")
        }
        text += String(decoding: buf[0..<n], as: UTF8.self)
    }

    /// Reads until `done` holds for everything read so far.
    func read(until done: (String) -> Bool) throws {
        while !done(text) { try readSome(bytes: 1 << 16) }
    }

    func close() { Foundation.close(fd) }
}
