import Foundation
import HubSyncBase
import HubSyncCrypto
import Hummingbird
import Synchronization

/// The dashboard's sign-in: one-time codes that `hubsync dashboard` asks the agent for, and the
/// browser sessions they are exchanged for (protocol/SPEC.md 9).
///
/// A code is good once, for ``codeLifetime``; a session is a random cookie value with a CSRF
/// token of its own, good for ``sessionLifetime``. Both live in this agent's memory only: a
/// restart signs every browser out. The agent's bound port is kept here too, for the `Host` check.
public final class DashboardSessions: Sendable {
    static let codeLifetime: UInt64 = 120_000
    static let sessionLifetime: UInt64 = 12 * 3600 * 1000
    /// Outstanding codes and sessions are bounded; past these the oldest go.
    static let maxCodes = 16, maxSessions = 32

    struct Session: Sendable {
        var csrf: String
        var expiresAt: UInt64
    }

    private struct State {
        var codes: [String: UInt64] = [:]
        /// Codes redeemed or expired, kept until their time is up, to say which it was.
        var used: [String: UInt64] = [:]
        /// Codes dropped before their use (expired, or pushed out by newer ones), kept for a
        /// code's lifetime after, to say why.
        var dropped: [String: (until: UInt64, why: Refusal)] = [:]
        var sessions: [String: Session] = [:]
    }

    private let state = Mutex(State())
    /// The local API's bound port (0 until it listens).
    let port = Atomic<Int>(0)

    public init() {}

    /// Why a code was refused.
    enum Refusal: Error, Equatable {
        case used, expired, replaced, unknown

        var message: String {
            switch self {
            case .used: "this sign-in link was used already; each link signs in once. Run `hubsync dashboard` for a new one"
            case .expired: "this sign-in link has expired (a link is good for 2 minutes). Run `hubsync dashboard` for a new one"
            case .replaced: "this sign-in link was replaced: \(DashboardSessions.maxCodes) newer links were made after it, and only "
                + "the newest \(DashboardSessions.maxCodes) are good. Use the newest, or run `hubsync dashboard` for a new one"
            case .unknown: "this sign-in code is not one this agent gave (the agent may have restarted). Run `hubsync dashboard` for a new link"
            }
        }
    }

    static func now() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    static func randomText(bytes: Int) -> String {
        Hex.encode(SymmetricKey.random(byteCount: bytes).withUnsafeBytes { Array($0) })
    }

    /// A new one-time code and when it expires (Unix ms).
    func mintCode(now: UInt64 = now()) -> (code: String, expiresAt: UInt64) {
        let code = Self.randomText(bytes: 16), expiry = now + Self.codeLifetime
        state.withLock { s in
            s.dropped = s.dropped.filter { $0.value.until > now }
            for (old, expiry) in s.codes where expiry <= now { s.dropped[old] = (expiry + Self.codeLifetime, .expired) }
            s.codes = s.codes.filter { $0.value > now }
            while s.codes.count >= Self.maxCodes, let oldest = s.codes.min(by: { $0.value < $1.value }) {
                s.codes[oldest.key] = nil
                s.dropped[oldest.key] = (oldest.value + Self.codeLifetime, .replaced)
            }
            s.codes[code] = expiry
            while s.dropped.count > 4 * Self.maxCodes, let oldest = s.dropped.min(by: { $0.value.until < $1.value.until }) {
                s.dropped[oldest.key] = nil
            }
        }
        return (code, expiry)
    }

    /// Exchanges a code for a new session: its cookie value and CSRF token. A code works once.
    func redeem(_ code: String, now: UInt64 = now()) throws(Refusal) -> (id: String, session: Session) {
        let result: Result<(String, Session), Refusal> = state.withLock { s in
            s.used = s.used.filter { $0.value > now }
            guard let expiry = s.codes.removeValue(forKey: code) else {
                return .failure(s.used[code] != nil ? .used : s.dropped[code]?.why ?? .unknown)
            }
            // Remembered until its expiry either way, so a second use says "used".
            s.used[code] = max(expiry, now + Self.codeLifetime)
            guard expiry > now else { return .failure(.expired) }
            s.sessions = s.sessions.filter { $0.value.expiresAt > now }
            while s.sessions.count >= Self.maxSessions, let oldest = s.sessions.min(by: { $0.value.expiresAt < $1.value.expiresAt }) {
                s.sessions[oldest.key] = nil
            }
            let id = Self.randomText(bytes: 32)
            let session = Session(csrf: Self.randomText(bytes: 32), expiresAt: now + Self.sessionLifetime)
            s.sessions[id] = session
            return .success((id, session))
        }
        return try result.get()
    }

    /// The live session a cookie value names.
    func session(_ id: String, now: UInt64 = now()) -> Session? {
        state.withLock { s in
            guard let session = s.sessions[id] else { return nil }
            guard session.expiresAt > now else {
                s.sessions[id] = nil
                return nil
            }
            return session
        }
    }

    /// Ends a session (sign out).
    func end(_ id: String) {
        state.withLock { _ = $0.sessions.removeValue(forKey: id) }
    }

    /// The session cookie's name: one per port, as browsers share a host's cookies across ports.
    var cookieName: String { "hubsync_session_\(port.load(ordering: .relaxed))" }

    /// The session cookie of a request, if it sent one.
    func cookie(of request: Request) -> String? {
        let name = cookieName
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    /// Whether `host` (a `Host` header) names this agent on a loopback address: `127.x.y.z`,
    /// `localhost` or `[::1]`, with the agent's port (a browser always sends the port).
    func allows(host: String?) -> Bool {
        guard let host, !host.isEmpty else { return false }
        var name = host.lowercased(), portText: Substring?
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let rest = name[name.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return false }
                portText = rest.dropFirst()
            }
            name = String(name[name.index(after: name.startIndex)..<close])
        } else if let colon = name.lastIndex(of: ":") {
            portText = name[name.index(after: colon)...]
            name = String(name[..<colon])
        }
        guard Self.isLoopback(name) else { return false }
        guard let portText else { return false }
        return Int(portText) == port.load(ordering: .relaxed)
    }

    /// `localhost`, `::1` or a dotted quad in 127.0.0.0/8.
    static func isLoopback(_ name: String) -> Bool {
        if name == "localhost" || name == "::1" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127"
            && parts.allSatisfy { p in p.count <= 3 && !p.isEmpty && p.allSatisfy(\.isASCII) && UInt8(p) != nil }
    }
}

/// Who may use the local API: a program with the bearer token, or a dashboard session (cookie,
/// with the CSRF token on every request that changes something). Every request without the token
/// must name the agent by a loopback `Host` with its port, so a page of another site that
/// resolves its name to 127.0.0.1 (DNS rebinding) is refused; the page and its assets, and the
/// exchange of a sign-in code, are the only routes open without token or session
/// (protocol/SPEC.md 9).
struct AccessMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let token: String
    /// `metrics.token`: good for `GET /metrics` alone.
    var metricsToken: String?
    let sessions: DashboardSessions

    static let csrfHeader = HTTPFields.Element.Name("X-CSRF-Token")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        // Programs with a token: a page of another site cannot have it, so its Host is theirs to send.
        if let bearer = request.headers[.authorization] {
            if BearerToken.matches(bearer, token: token) { return try await next(request, context) }
            if let metricsToken, BearerToken.matches(bearer, token: metricsToken) {
                guard request.method == .get, path == "/metrics" else {
                    throw APIError(.unauthorized, "the metrics token reads GET /metrics only; other routes take the api.token file's token")
                }
                return try await next(request, context)
            }
            throw APIError(.unauthorized, "wrong bearer token; read it from \(BearerToken.file(for: path)) in the data directory")
        }
        guard sessions.allows(host: request.head.authority) else {
            let port = sessions.port.load(ordering: .relaxed)
            let message = "refused: this request named the agent as \"\(request.head.authority ?? "")\", not by a loopback address "
                + "with its port; open the dashboard at http://127.0.0.1:\(port)/ (the link `hubsync dashboard` prints)"
            if Self.isPage(path) { throw DashboardPage.refusal(.misdirectedRequest, message) }
            throw APIError(.misdirectedRequest, message)
        }
        if Self.isOpen(request.method, path) { return try await next(request, context) }
        guard let id = sessions.cookie(of: request), let session = sessions.session(id) else {
            throw APIError(.unauthorized, "missing bearer token, and no dashboard session; programs read the token "
                + "from \(BearerToken.file(for: path)) in the data directory, people sign in with the link `hubsync dashboard` prints")
        }
        // The journal is appended by commands beside the agent (with the token), never by a page.
        if request.method == .post, path == "/v1/audit" {
            throw APIError(.forbidden, "the audit journal records what commands beside the agent did; a dashboard session cannot add to it")
        }
        if ![.get, .head].contains(request.method) {
            let given = request.headers[Self.csrfHeader] ?? ""
            guard BearerToken.constantTimeEqual(given, session.csrf) else {
                throw APIError(.forbidden, "missing or wrong CSRF token (header X-CSRF-Token); reload the dashboard")
            }
            if let origin = request.headers[.origin], origin != "http://" + (request.head.authority ?? "") {
                throw APIError(.forbidden, "refused: a request from another origin (\(origin))")
            }
        }
        return try await next(request, context)
    }

    /// The page and its assets: answered in HTML when refused.
    static func isPage(_ path: String) -> Bool { path == "/" || path.hasPrefix("/dashboard/") }

    /// Routes open without the token or a session: the page, its assets, and the sign-in.
    static func isOpen(_ method: HTTPRequest.Method, _ path: String) -> Bool {
        (method == .get || method == .head) && isPage(path) || (method == .post && path == "/v1/dashboard/session")
    }
}
