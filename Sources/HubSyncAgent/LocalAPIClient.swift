import AsyncHTTPClient
import Foundation
public import HubSyncBase
import NIOCore
import NIOHTTP1
import NIOPosix
public import HubSyncCore

/// The local API could not be reached, or the request could not be made.
///
/// `.closed` when the agent does not answer (the ``cause`` is the HTTP client's error),
/// `.invalidInput` when the request is not one HTTP can carry.
public struct APIClientError: CodedError {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

/// Talks to the agent running on a data directory, through its local API (HTTP/1.1 on loopback).
///
/// The CLI sends its writes through it when an agent runs, so that they are pushed to peers at
/// once; tests use it too.
public struct LocalAPIClient: Sendable {
    public let host: String
    public let port: UInt16
    public let token: String

    /// The running agent of a data directory, or nil when none runs: the process holding the
    /// directory's writer lock as an agent, once it has written its bound addresses.
    public static func running(inDataDirectory path: String) -> LocalAPIClient? {
        let directory = DataDirectory(path: path)
        guard let holder = WriterLock.holder(in: directory) else { return nil }
        return running(in: directory, pid: holder.pid)
    }

    /// The API of the agent with process ID `pid` on `directory`, from its `agent.json`; nil
    /// until that agent has written it (a file left by an earlier agent names another PID).
    /// The token is only ever sent to a loopback address on a port that process `pid` listens
    /// on: an `agent.json` edited to name another port or host gets nil, not the token.
    public static func running(in directory: DataDirectory, pid: Int32) -> LocalAPIClient? {
        guard let bytes = directory.contents(of: DataDirectory.agentStateFile),
              let state = (try? JSON.parse(bytes))?.objectValue,
              case .int(let statePID) = state["pid"] ?? .null, statePID == Int64(pid),
              let api = state["api"]?.stringValue, let colon = api.lastIndex(of: ":"),
              let port = UInt16(api[api.index(after: colon)...]),
              let token = directory.contents(of: DataDirectory.tokenFile) else { return nil }
        var host = String(api[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard isLoopback(host), ListeningSocket.isListening(onPort: port, process: pid) else { return nil }
        return LocalAPIClient(host: host, port: port,
                              token: String(decoding: token, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Whether `host` names this machine's loopback interface.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
    }

    /// The base URL of the API: `http://HOST:PORT`, with an IPv6 host in brackets.
    public var baseURL: String {
        let address = host == "localhost" ? "127.0.0.1" : host
        return "http://" + (address.contains(":") ? "[\(address)]" : address) + ":\(port)"
    }

    /// Sends a request; returns the status code and the parsed JSON body (null when the body is
    /// not JSON). `path` is sent as given, so its segments must be percent-encoded already.
    public func request(_ method: String, _ path: String, body: Value? = nil,
                        timeout: Duration = .seconds(120)) async throws(APIClientError) -> (status: Int, body: Value) {
        let response = try start(method, path, body: body, timeout: timeout)
        do { return Self.answer(try await response.get()) } catch { throw failure(error, method: method, timeout: timeout) }
    }

    /// A GET whose answer is text, such as `/metrics`: the status and the body as UTF-8.
    public func text(_ path: String, timeout: Duration = .seconds(60)) async throws(APIClientError) -> (status: Int, body: String) {
        let response = try start("GET", path, body: nil, timeout: timeout)
        do {
            let answer = try await response.get()
            return (Int(answer.status.code), String(decoding: answer.body.map { Array($0.readableBytesView) } ?? [], as: UTF8.self))
        } catch {
            throw failure(error, method: "GET", timeout: timeout)
        }
    }

    /// ``request(_:_:body:timeout:)`` for callers that are not async (the CLI's commands). It
    /// blocks the calling thread until an event loop of the shared HTTP client has the answer.
    /// `whileWaiting` runs once if no answer has come after `notice` (the CLI says what it waits for).
    public func request(_ method: String, _ path: String, body: Value? = nil, timeout: Duration = .seconds(120),
                        notice: Duration = .seconds(5),
                        whileWaiting: (@Sendable () -> Void)? = nil) throws(APIClientError) -> (status: Int, body: Value) {
        try send(method, path, payload: body.map { (Array(JSON.serialize($0).utf8), "application/json") }, timeout: timeout,
                 notice: notice, whileWaiting: whileWaiting)
    }

    /// `POST path` with `bytes` as the body, as they are (a file for `POST /v1/import`);
    /// otherwise as ``request(_:_:body:timeout:notice:whileWaiting:)``.
    public func upload(_ path: String, bytes: [UInt8], timeout: Duration = .seconds(120), notice: Duration = .seconds(5),
                       whileWaiting: (@Sendable () -> Void)? = nil) throws(APIClientError) -> (status: Int, body: Value) {
        try send("POST", path, payload: (bytes, "application/octet-stream"), timeout: timeout, notice: notice, whileWaiting: whileWaiting)
    }

    private func send(_ method: String, _ path: String, payload: (bytes: [UInt8], type: String)?, timeout: Duration,
                      notice: Duration, whileWaiting: (@Sendable () -> Void)?) throws(APIClientError) -> (status: Int, body: Value) {
        let response = try start(method, path, payload: payload, timeout: timeout)
        let reminder = whileWaiting.map { call in
            response.eventLoop.scheduleTask(in: .nanoseconds(notice.components.seconds * 1_000_000_000)) { call() }
        }
        defer { reminder?.cancel() }
        do { return Self.answer(try response.wait()) } catch { throw failure(error, method: method, timeout: timeout) }
    }

    private func start(_ method: String, _ path: String, body: Value?,
                       timeout: Duration) throws(APIClientError) -> EventLoopFuture<HTTPClient.Response> {
        try start(method, path, payload: body.map { (Array(JSON.serialize($0).utf8), "application/json") }, timeout: timeout)
    }

    private func start(_ method: String, _ path: String, payload: (bytes: [UInt8], type: String)?,
                       timeout: Duration) throws(APIClientError) -> EventLoopFuture<HTTPClient.Response> {
        var headers = HTTPHeaders([("Authorization", "Bearer \(token)")])
        if let payload { headers.add(name: "Content-Type", value: payload.type) }
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: baseURL + path, method: HTTPMethod(rawValue: method), headers: headers,
                                             body: payload.map { .bytes($0.bytes) })
        } catch {
            throw APIClientError(.invalidInput, "\(baseURL + path) is not a request the API can take: \(error)", cause: error)
        }
        let deadline = NIODeadline.now() + .nanoseconds(min(timeout, Self.readTimeout).components.seconds * 1_000_000_000)
        return Self.http.execute(request: request, deadline: deadline)
    }

    /// How long the client waits for an answer that has stopped coming: 60 s, or the whole
    /// seconds (1–3600) `HUBSYNC_AGENT_TIMEOUT` gives.
    static let readTimeout: Duration = {
        if let text = ProcessInfo.processInfo.environment[timeoutVariable], let n = timeoutSeconds(parsing: text) {
            return .seconds(n)
        }
        return .seconds(60)
    }()

    /// The environment variable that sets ``readTimeout``.
    public static let timeoutVariable = "HUBSYNC_AGENT_TIMEOUT"

    /// The seconds `text` gives for ``timeoutVariable``: whole seconds from 1 to 3600, else nil.
    public static func timeoutSeconds(parsing text: String) -> Int64? {
        guard let n = Int64(text), (1...3600).contains(n) else { return nil }
        return n
    }

    /// Why the environment's ``timeoutVariable`` cannot be used, or nil when it is unset, empty
    /// or valid: a value that says nothing usable is refused, never silently replaced by 60 s.
    public static func timeoutProblem(in environment: [String: String]) -> String? {
        guard let text = environment[timeoutVariable], !text.isEmpty, timeoutSeconds(parsing: text) == nil else { return nil }
        return "\(timeoutVariable) is \"\(text)\"; it takes whole seconds from 1 to 3600 (how long a command waits for "
            + "the agent to answer; unset it for the default, 60), e.g. \(timeoutVariable)=120"
    }

    /// How long the client keeps an idle connection to the agent for the next request.
    static let poolIdleSeconds: Int64 = 5

    /// The process's HTTP client: a dead or wrong address fails in seconds, and an agent that
    /// stops answering mid-request (stopped, hung) within a minute, instead of holding the caller.
    /// It drops a connection idle for 5 s, well before the agent closes one idle for
    /// ``LocalAPIServer/idleSeconds`` (15): a request is never sent on a connection the agent is
    /// closing (the answer would be a reset, "the connection failed").
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5), read: .seconds(readTimeout.components.seconds))
        configuration.connectionPool = HTTPClient.Configuration.ConnectionPool(idleTimeout: .seconds(poolIdleSeconds))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private static func answer(_ response: HTTPClient.Response) -> (status: Int, body: Value) {
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        return (Int(response.status.code), (try? JSON.parse(bytes)) ?? .null)
    }

    /// The failure as a sentence: an agent that took the request and then went silent (hung,
    /// stopped, overloaded) may still apply a write, so that case says the outcome is unknown.
    private func failure(_ error: any Error, method: String, timeout: Duration) -> APIClientError {
        let seconds = min(timeout, Self.readTimeout).components.seconds
        if let e = error as? HTTPClientError, e == .readTimeout || e == .deadlineExceeded {
            let write = method != "GET" && method != "HEAD"
            return APIClientError(.timeout, "the agent (its API at \(baseURL)) did not answer within \(seconds) s"
                + (write ? "; the change may still be applied — check with `hubsync get` before sending it again" : ""),
                cause: error)
        }
        if let e = error as? HTTPClientError, e == .connectTimeout {
            return APIClientError(.closed, "the agent's API at \(baseURL) did not accept a connection within 5 s; "
                + "is `hubsync run` still running?", cause: error)
        }
        let reason = (error as? NIOConnectionError).map { _ in "nothing listens there" }
            ?? (error is HTTPClientError ? "the connection ended before the answer" : "the connection failed")
        return APIClientError(.closed, "the agent's API at \(baseURL) does not answer (\(reason)); is `hubsync run` still running?",
                              cause: error)
    }
}
