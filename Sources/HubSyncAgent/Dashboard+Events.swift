import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncStore
import Hummingbird
import NIOCore
import ServiceLifecycle
import Synchronization

/// `GET /v1/events`: the dashboard's live stream (server-sent events, protocol/SPEC.md 9.5). It
/// pushes `status` when status changes, `change` for each change committed (`audit` for an
/// audit entry), and `progress` while a backup or verify runs; `: heartbeat` comments keep it
/// open. Bounded: ``maxStreams`` at once (more get 429), and a client that has not taken a write
/// within ``writeTimeout`` is dropped; nothing is queued for it, as every event is read fresh
/// from the change log and the agent's state when it is written.
final class DashboardEvents: Sendable {
    static let maxStreams = 8
    static let heartbeat: Duration = .seconds(15)
    static let writeTimeout: Duration = .seconds(10)
    /// A stream ends after this long and the page's EventSource opens the next one (with
    /// Last-Event-ID, so nothing is missed): a client that stops reading, whose writes the
    /// socket buffers still take, holds a place for no longer than this.
    static let lifetime: Duration = .seconds(300)
    /// How often status and progress are looked at: peers come and go without a change.
    static let statusInterval: Duration = .seconds(2), progressInterval: Duration = .milliseconds(500)

    let open = Atomic<Int>(0)

    /// Takes a stream's place; false when ``maxStreams`` are open.
    func enter() -> Bool {
        while true {
            let n = open.load(ordering: .relaxed)
            guard n < Self.maxStreams else { return false }
            if open.compareExchange(expected: n, desired: n + 1, ordering: .relaxed).exchanged { return true }
        }
    }

    func leave() { open.subtract(1, ordering: .relaxed) }
}

/// The writer of one stream and when its write in progress began, for the slow-client check.
/// `@unchecked Sendable`: the writer is used by the stream's one writing task only; the time is in a Mutex.
private final class StreamWriter: @unchecked Sendable {
    var writer: any ResponseBodyWriter
    let writeStarted = Mutex<ContinuousClock.Instant?>(nil)
    init(_ writer: any ResponseBodyWriter) { self.writer = writer }

    func write(_ text: String) async throws {
        writeStarted.withLock { $0 = .now }
        try await writer.write(ByteBuffer(string: text))
        writeStarted.withLock { $0 = nil }
    }
}

/// A client that did not take a write in time.
private struct SlowClient: Error {}

extension Agent {
    func addEventRoutes(to router: Router<BasicRequestContext>) {
        router.get("v1/events") { [self] request, _ in
            var since: Int64?
            if let text = request.uri.queryParameters.get("since") ?? request.headers[LocalAPI.lastEventID] {
                guard let n = Int64(text), n >= 0 else {
                    throw APIError(.badRequest, "since must be a sequence number, 0 or more; got \"\(text)\"")
                }
                since = n
            }
            guard events.enter() else {
                throw APIError(.tooManyRequests, "\(DashboardEvents.maxStreams) live streams are open already (one per dashboard tab); "
                    + "close a dashboard tab, or wait: the page reads status every 30 s meanwhile")
            }
            let subscription = store.changeSignal()
            let start: Int64
            do {
                if let since { start = since } else { start = try await store.read(.lastSequence) }
            } catch {
                events.leave()
                throw error
            }
            // A client that closes its connection ends the stream (and frees its place) then,
            // not when a heartbeat's write fails up to 30 s later.
            LocalAPIServer.whenClientGone { subscription.cancel() }
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
                defer { events.leave() }
                let stream = StreamWriter(writer)
                do {
                    try await withGracefulShutdownHandler {
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask { try await self.streamEvents(to: stream, after: start, subscription) }
                            // The watchdog: a write the client has not taken in time ends the stream.
                            group.addTask {
                                while true {
                                    try await Task.sleep(for: .seconds(1))
                                    if let began = stream.writeStarted.withLock({ $0 }), ContinuousClock.now - began > DashboardEvents.writeTimeout {
                                        throw SlowClient()
                                    }
                                }
                            }
                            try await group.next()
                            group.cancelAll()
                        }
                    } onGracefulShutdown: {
                        subscription.cancel()
                    }
                } catch is SlowClient {
                    logger.info("a dashboard's live stream was dropped: it took no data for 10 s")
                    subscription.cancel()
                    throw SlowClient()
                }
                subscription.cancel()
                try await stream.writer.finish(nil)
            })
        }
    }

    /// Writes the stream until the subscription ends: changes from the log after `start`,
    /// status when it changed, backup progress while it runs, and heartbeats.
    private func streamEvents(to stream: StreamWriter, after start: Int64, _ subscription: ChangeSubscription) async throws {
        var cursor = start, lastStatus: [UInt8] = [], lastProgress = "", lastWrite = ContinuousClock.now
        var nextStatus = ContinuousClock.now, running = false
        let end = ContinuousClock.now + DashboardEvents.lifetime
        try await stream.write("retry: 2000\n: live\n\n")
        while !Task.isCancelled, ContinuousClock.now < end {
            var text = ""
            // Changes first, a page at a time: a client behind reads the log, not a queue.
            let changes = try await store.read(.changes(after: cursor, limit: 200))
            for e in changes {
                text += LocalAPI.sse(e)
                if e.state.key.collection == AuditEntry.collection {
                    text += "event: audit\ndata: \(JSON.serialize(recordJSON(e.state)))\n\n"
                }
            }
            if let last = changes.last { cursor = last.sequence }
            let progressValue = backupProgress.json
            running = progressValue.objectValue?["running"] == .bool(true)
            let progress = JSON.serialize(progressValue)
            if progress != lastProgress {
                text += "event: progress\ndata: \(progress)\n\n"
                lastProgress = progress
            }
            if !changes.isEmpty || ContinuousClock.now >= nextStatus {
                var current = await status()
                // Seconds that tick by themselves are not a change.
                current.uptimeSeconds = 0
                current.backup?.ageSeconds = nil
                let bytes = current.encoded()
                if bytes != lastStatus {
                    lastStatus = bytes
                    text += "event: status\ndata: \(String(decoding: bytes, as: UTF8.self))\n\n"
                }
                nextStatus = .now + DashboardEvents.statusInterval
            }
            if text.isEmpty, ContinuousClock.now - lastWrite >= DashboardEvents.heartbeat { text = ": heartbeat\n\n" }
            if !text.isEmpty {
                try await stream.write(text)
                lastWrite = .now
            }
            if changes.count == 200 { continue }
            let wake = min(nextStatus, lastWrite + DashboardEvents.heartbeat, end,
                           running ? .now + DashboardEvents.progressInterval : nextStatus)
            if await subscription.wait(until: wake) == .ended { return }
        }
    }
}
