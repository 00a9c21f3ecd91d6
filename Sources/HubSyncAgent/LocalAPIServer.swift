import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The local API's HTTP server: Hummingbird's HTTP/1 server and router, run as our own service.
///
/// Hummingbird's `Application` also runs a cache that refreshes the `Date` header every second,
/// which would wake an idle agent 60 times a minute; here each answer formats its date instead
/// (the API answers a few requests a minute).
struct LocalAPIServer: Service {
    /// The routes, built once into a responder (a router is not Sendable; its responder is).
    let responder: RouterResponder<BasicRequestContext>
    let host: String
    let port: Int
    let logger: Logger
    let onRunning: @Sendable (any Channel) async -> Void

    func run() async throws {
        let responder = self.responder, logger = self.logger
        let server = try HTTPServerBuilder.http1().buildServer(
            configuration: ServerConfiguration(address: .hostname(host, port: port), serverName: "hubsync"),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger
        ) { (request, responseWriter: consuming ResponseWriter, channel) in
            let context = BasicRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch {
                logger.debug("unhandled error in the local API", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
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
        }
    }

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
