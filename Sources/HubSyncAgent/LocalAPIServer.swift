import Foundation
import Hummingbird
import HummingbirdCore
import HubSyncCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The local API's HTTP server: Hummingbird's HTTP/1 server and router, run as our own service.
///
/// Hummingbird's `Application` also runs a cache that refreshes the `Date` header every second,
/// which would wake an idle agent 60 times a minute; here each answer formats its date instead
/// (the API answers a few requests a minute).
///
/// The API keeps answering while the peer listener is flooded (issue 10: 2,000 connections
/// before any handshake): its sockets are on an event loop of their own, not the one peer
/// connections share, and the server's tasks (each request's handler, and the agent's own code
/// it awaits, which runs on the executor of the task that awaits it) prefer that loop's thread
/// over the cooperative pool, where every peer connection's task queues. Handlers do no blocking
/// work there: files go through ``BlockingIO``, SQLite through the store's own queues.
struct LocalAPIServer: Service {
    /// The API's event loop: one thread, shared by the agents of one process.
    static let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Runs the API's tasks on that thread.
    static let executor = EventLoopTaskExecutor(eventLoopGroup.next())

    /// The routes, built once into a responder (a router is not Sendable; its responder is).
    let responder: RouterResponder<BasicRequestContext>
    let host: String
    let port: Int
    let logger: Logger
    let onRunning: @Sendable (any Channel) async -> Void
    /// Told the status of every answer (the error metrics).
    var answered: @Sendable (HTTPResponse.Status) -> Void = { _ in }

    func run() async throws {
        try await withTaskExecutorPreference(Self.executor) { try await serve() }
    }

    /// Binds and serves until shut down.
    private func serve() async throws {
        let responder = self.responder, logger = self.logger, answered = self.answered
        // The server's own lines ("Waiting on child channel: CancellationError()" when a bind
        // fails) are a library's text: the agent says what happened itself (ListenFailure).
        var serverLogger = logger
        serverLogger.logLevel = .critical
        // A connection that has not sent a whole request head within `idleSeconds`, or sat idle
        // that long between requests, is closed (a streaming answer such as the change feed is
        // not idle); at most `maxConnections` are open at once, so a local process holding
        // connections cannot take the descriptors the sync listener needs (at the limit the
        // oldest silent one makes room: ``OpenConnections``).
        let open = OpenConnections(limit: Self.maxConnections)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionLimit(open: open)],
            idleTimeout: .seconds(Int64(Self.idleSeconds)),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 32 * 1024, maxHeaderFieldCount: 100))
        let server = try HTTPServerBuilder.http1(configuration: http1).buildServer(
            configuration: ServerConfiguration(address: .hostname(host, port: port), serverName: "hubsync"),
            eventLoopGroup: Self.eventLoopGroup,
            logger: serverLogger
        ) { (request, responseWriter: consuming ResponseWriter, channel) in
            let context = BasicRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
            var response: Response
            do {
                // A handler whose answer streams until the client goes (the live events) keeps
                // the connection to watch.
                response = try await Self.$connection.withValue(channel) {
                    try await responder.respond(to: request, context: context)
                }
            } catch {
                logger.error("unhandled error in the local API", metadata: ["error": "\(String(reflecting: error))"])
                // Every answer has a JSON body, this one too.
                response = json(["error": .string(FailureText.unknown(error) + "; the agent's log has the detail")],
                                status: .internalServerError)
            }
            answered(response.status)
            response.headers[.date] = Self.httpDate(Date())
            response.headers[.server] = "hubsync"
            try await responseWriter.write(response: response.head, body: response.body)
        } onServerRunning: { channel in
            await onRunning(channel)
        }
        do {
            try await server.run()
        } catch is CancellationError {
            // A shutdown that outran its grace period cancels the services: a stop, not a failure.
            return
        } catch {
            throw ListenFailure(role: "the local API", address: "\(host):\(port)", cause: error)
        }
    }

    /// The connection of the request being answered, for an answer that streams until the
    /// client goes (``whenClientGone(_:)``).
    @TaskLocal static var connection: (any Channel)?

    /// Runs `action` once the client of the request being answered has closed its side of the
    /// connection: a streaming answer then ends, instead of when a write to it fails.
    static func whenClientGone(_ action: @escaping @Sendable () -> Void) {
        guard let connection else { return }
        connection.pipeline.handler(type: ConnectionLimit.self).whenComplete { found in
            switch found {
            case .success(let handler): handler.whenClientGone(action)
            case .failure: connection.closeFuture.whenComplete { _ in action() }
            }
        }
    }

    /// Seconds a connection may take to send a request head, or stay idle between requests.
    static let idleSeconds = 15
    /// Connections the API keeps open at once (``OpenConnections`` says which one makes room for a new one).
    static let maxConnections = 256

    /// An IMF-fixdate (RFC 9110), such as `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

/// A task executor that runs its jobs on one NIO event loop: tasks that prefer it
/// (`withTaskExecutorPreference`) run on that loop's thread instead of the cooperative pool.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}

/// The API's open connections, shared by the handlers of all of them.
///
/// At the limit a new connection is not refused: the oldest one that has not sent a byte of a
/// request yet is closed in its place (when every open one has, the new one is closed). A local
/// process that holds connections open without requests therefore cannot lock out a client with
/// the token, which sends its request as soon as it connects.
final class OpenConnections: Sendable {
    let limit: Int
    private struct Entry { var channel: any Channel; var opened: UInt64; var requested: Bool }
    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])
    private let counter = Mutex<UInt64>(0)

    init(limit: Int) { self.limit = limit }

    /// Takes `channel` in; the channel to close for it (the oldest silent one, or `channel` itself), if any.
    func admit(_ id: ObjectIdentifier, _ channel: any Channel) -> (any Channel)? {
        let order = counter.withLock { (n: inout UInt64) -> UInt64 in n += 1; return n }
        return entries.withLock { (all: inout [ObjectIdentifier: Entry]) -> (any Channel)? in
            var evicted: (any Channel)?
            if all.count >= limit {
                guard let oldest = all.filter({ !$0.value.requested }).min(by: { $0.value.opened < $1.value.opened }) else {
                    return channel
                }
                all[oldest.key] = nil
                evicted = oldest.value.channel
            }
            all[id] = Entry(channel: channel, opened: order, requested: false)
            return evicted
        }
    }

    /// The connection sent (part of) a request: it is no longer closed to make room.
    func requested(_ id: ObjectIdentifier) {
        entries.withLock { (all: inout [ObjectIdentifier: Entry]) in all[id]?.requested = true }
    }

    func release(_ id: ObjectIdentifier) {
        entries.withLock { (all: inout [ObjectIdentifier: Entry]) in all[id] = nil }
    }
}

/// Keeps the API within ``LocalAPIServer/maxConnections`` (``OpenConnections``).
final class ConnectionLimit: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    // Every request part passes through untouched; the first one marks the connection as used.
    typealias InboundIn = NIOAny

    let open: OpenConnections
    private let seen = Mutex(false)
    /// Whether the client has closed its side, and what to do once it has.
    private let gone = Mutex<(done: Bool, actions: [@Sendable () -> Void])>((false, []))

    init(open: OpenConnections) { self.open = open }

    /// Runs `action` once the client has closed its side of the connection (or it reset or
    /// closed): at once if it has already. The server keeps a half-closed connection open while
    /// it writes an answer, so a streaming answer (the change feed, the dashboard's live events)
    /// learns here that nobody reads it any more.
    func whenClientGone(_ action: @escaping @Sendable () -> Void) {
        let now = gone.withLock { g -> Bool in
            if !g.done { g.actions.append(action) }
            return g.done
        }
        if now { action() }
    }

    private func clientGone() {
        let actions = gone.withLock { g -> [@Sendable () -> Void] in
            defer { g = (true, []) }
            return g.done ? [] : g.actions
        }
        for action in actions { action() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { clientGone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone()
        context.fireChannelInactive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if let victim = open.admit(ObjectIdentifier(self), context.channel) {
            victim.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !seen.withLock({ (was: inout Bool) -> Bool in defer { was = true }; return was }) {
            open.requested(ObjectIdentifier(self))
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        open.release(ObjectIdentifier(self))
    }
}
