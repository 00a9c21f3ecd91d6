import AsyncHTTPClient
import Crypto
import Foundation
public import HubSyncBase
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small S3 client: the object calls a backup repository needs, signed with SigV4, over one
/// async-http-client client for the process (its connection pool keeps connections open between
/// requests). Failures the server may get over (5xx, throttling, timeouts, a dropped
/// connection) are tried again with exponential backoff; everything else becomes an
/// ``S3Error`` whose message says what to do.
public final class S3Client: Sendable {
    public let endpoint: S3Endpoint
    public let settings: S3Settings
    let signer: SigV4
    /// Where the credentials came from, for messages ("AWS_ACCESS_KEY_ID", "~/.aws/credentials [default]").
    let credentialSource: String
    let http: HTTPClient

    public init(endpoint: S3Endpoint, credentials: S3Credentials, source: String = "the credentials given",
                settings: S3Settings) {
        self.endpoint = endpoint
        self.settings = settings
        signer = SigV4(credentials: credentials, region: settings.region)
        credentialSource = source
        http = s3HTTPClient
    }

    /// An answer: status, headers and the whole body.
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    /// "the S3 service at 127.0.0.1:8333", for messages.
    var serviceText: String { "the S3 service at \(endpoint.hostHeader)" }

    // MARK: Objects

    /// Stores an object, with its SHA-256 signed and its MD5 (`Content-MD5`) and SHA-256
    /// (`x-amz-checksum-sha256`) for the server to check before it keeps anything.
    public func put(key: String, data: [UInt8]) async throws(S3Error) {
        let sha = Array(SHA256.hash(data: data))
        let md5 = Data(Insecure.MD5.hash(data: data)).base64EncodedString()
        let headers = [("content-md5", md5), ("x-amz-checksum-sha256", Data(sha).base64EncodedString()),
                       ("content-type", "application/octet-stream")]
        let r = try await send(.PUT, key: key, body: data, payloadHash: SigV4.hex(sha), headers: headers, what: "store \(key)")
        guard r.status == 200 else { throw failure(r, "store \(key)") }
    }

    /// An object's bytes, or only `range` of them; nil when there is no such object.
    public func get(key: String, range: Range<Int>? = nil) async throws(S3Error) -> [UInt8]? {
        var headers: [(String, String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        let r = try await send(.GET, key: key, headers: headers, what: "read \(key)")
        if r.status == 404, serverCode(r) != "NoSuchBucket" { return nil }
        guard r.status == 200 || r.status == 206 else { throw failure(r, "read \(key)") }
        if let range, r.status == 200 {
            // A server that ignored the range sent the whole object.
            guard r.body.count >= range.upperBound else { return Array(r.body[min(range.lowerBound, r.body.count)...]) }
            return Array(r.body[range])
        }
        return r.body
    }

    /// An object's size, or nil when there is no such object. A one-byte ranged GET rather than a
    /// HEAD: a refusal then comes with its reason (a HEAD's answer has no body to name it).
    public func size(key: String) async throws(S3Error) -> Int? {
        let r = try await send(.GET, key: key, headers: [("range", "bytes=0-0")], what: "look up \(key)")
        if r.status == 404, serverCode(r) != "NoSuchBucket" { return nil }
        if r.status == 416 { return 0 } // exists, empty
        guard r.status == 200 || r.status == 206 else { throw failure(r, "look up \(key)") }
        // Content-Range: bytes 0-0/SIZE
        if let total = r.headers.first(name: "content-range")?.split(separator: "/").last, let n = Int(total) { return n }
        return r.body.count
    }

    /// Removes an object; a missing one is not an error.
    public func delete(key: String) async throws(S3Error) {
        let r = try await send(.DELETE, key: key, what: "delete \(key)")
        guard r.status == 204 || r.status == 200 || (r.status == 404 && serverCode(r) != "NoSuchBucket") else {
            throw failure(r, "delete \(key)")
        }
    }

    /// Every object whose key starts with `prefix`, with its size, page by page (ListObjectsV2).
    public func list(prefix: String) async throws(S3Error) -> [(key: String, size: Int)] {
        var out: [(String, Int)] = []
        var token: String?
        for _ in 0..<100_000 {
            var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")]
            if let token { query.append(("continuation-token", token)) }
            let r = try await send(.GET, key: nil, query: query, what: "list \(prefix)")
            guard r.status == 200 else { throw failure(r, "list \(prefix)") }
            let xml = String(decoding: r.body, as: UTF8.self)
            for entry in XMLText.elements("Contents", in: xml) {
                guard let key = XMLText.value("Key", in: entry) else { continue }
                out.append((key, XMLText.value("Size", in: entry).flatMap { Int($0) } ?? 0))
            }
            guard XMLText.value("IsTruncated", in: xml) == "true",
                  let next = XMLText.value("NextContinuationToken", in: xml), !next.isEmpty else { break }
            token = next
        }
        return out
    }

    // MARK: The bucket

    /// Whether the bucket exists (and these credentials may list it).
    public func bucketExists() async throws(S3Error) -> Bool {
        let r = try await send(.GET, key: nil, query: [("list-type", "2"), ("max-keys", "1")],
                               what: "look up bucket \(endpoint.bucket)")
        if r.status == 404 { return false }
        guard r.status == 200 else { throw failure(r, "look up bucket \(endpoint.bucket)") }
        return true
    }

    /// Creates the bucket (in the configured region); one that exists and is ours is fine.
    public func createBucket() async throws(S3Error) {
        var body: [UInt8] = []
        if settings.region != "us-east-1" {
            body = Array(("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<LocationConstraint>\(settings.region)</LocationConstraint></CreateBucketConfiguration>").utf8)
        }
        let r = try await send(.PUT, key: nil, body: body, payloadHash: SigV4.hex(Array(SHA256.hash(data: body))),
                               what: "create bucket \(endpoint.bucket)")
        if r.status == 200 || serverCode(r) == "BucketAlreadyOwnedByYou" { return }
        throw failure(r, "create bucket \(endpoint.bucket)")
    }

    // MARK: Requests

    /// Signs and sends one request, trying again with backoff when the server fails, throttles,
    /// times out or drops the connection.
    func send(_ method: HTTPMethod, key: String?, query: [(String, String)] = [], body: [UInt8] = [],
              payloadHash: String = SigV4.emptyHash, headers extra: [(String, String)] = [],
              what: String) async throws(S3Error) -> Response {
        let path = endpoint.path(key: key)
        let attempts = max(1, settings.attempts)
        var last: S3Error?
        for attempt in 0..<attempts {
            if attempt > 0 {
                // 0.2 s, 0.4 s, 0.8 s … up to 5 s, with jitter so parallel uploads spread out.
                let base = min(5.0, 0.2 * Double(1 << min(attempt - 1, 5)))
                try? await Task.sleep(for: .milliseconds(Int64(base * Double.random(in: 0.75...1.25) * 1000)))
            }
            let stamp = SigV4.timestamp(Date().addingTimeInterval(settings.clockOffset))
            var headers: [(String, String)] = [("host", endpoint.hostHeader), ("x-amz-date", stamp),
                                               ("x-amz-content-sha256", payloadHash)] + extra
            if let token = signer.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
            let auth = signer.authorization(method: method.rawValue, path: path, query: query, headers: headers,
                                            payloadHash: payloadHash, stamp: stamp)
            var request = HTTPClientRequest(url: endpoint.url(path: path, query: query))
            request.method = method
            for (n, v) in headers { request.headers.add(name: n, value: v) }
            request.headers.add(name: "authorization", value: auth)
            if !body.isEmpty || method == .PUT {
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            // Big bodies get more time: the timeout covers a request at 1 MiB/s beyond its floor.
            let seconds = settings.timeoutSeconds + Double(body.count) / 1_048_576
            do {
                let response = try await http.execute(request, timeout: .milliseconds(Int64(seconds * 1000)))
                let bytes = try await response.body.collect(upTo: 256 << 20) // packs are at most 128 MiB
                let r = Response(status: Int(response.status.code), headers: response.headers,
                                 body: Array(buffer: bytes))
                if S3Client.isTransient(r.status, serverCode(r)) {
                    last = failure(r, what)
                    continue
                }
                return r
            } catch {
                last = transportFailure(error, what, attempts: attempt + 1)
                if error is CancellationError { break }
            }
        }
        var e = last ?? S3Error(.io, "\(serviceText) did not answer")
        if e.status != 0 || attempts > 1 {
            e.message += " (tried \(attempts) times)"
        }
        throw e
    }

    static func isTransient(_ status: Int, _ code: String) -> Bool {
        status >= 500 || status == 429 || code == "SlowDown" || code == "RequestTimeout" || code == "Throttling"
    }

    func serverCode(_ r: Response) -> String {
        XMLText.value("Code", in: String(decoding: r.body.prefix(4096), as: UTF8.self)) ?? ""
    }

    /// The error for a network failure: no answer in time, or no connection.
    func transportFailure(_ error: any Error, _ what: String, attempts: Int) -> S3Error {
        if let e = error as? HTTPClientError, e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
            return S3Error(.timeout, "\(serviceText) did not answer within \(Int(settings.timeoutSeconds)) s when asked to "
                + "\(what); it may be overloaded or the network slow; what it stored already is kept, so run the command "
                + "again (config.json's \"s3\": {\"timeout_seconds\": N} allows more time)", status: 0, serverCode: "")
        }
        return S3Error(.io, "cannot reach \(serviceText) to \(what): \(Self.connectionText(error)); check that it runs and "
            + "the address in --repo; what it stored already is kept, so run the command again", status: 0, serverCode: "")
    }

    /// A network failure in words (never NIO's own text): from its errno when it has one.
    static func connectionText(_ error: any Error) -> String {
        var code: Int32?
        if let e = error as? IOError { code = e.errnoCode }
        if let e = error as? NIOConnectionError {
            code = e.connectionErrors.lazy.compactMap { ($0.error as? IOError)?.errnoCode }.first
            if code == nil, e.dnsAError != nil || e.dnsAAAAError != nil { return "its host name could not be resolved" }
        }
        if let code { return Errno.connectionSentence(code) ?? "the connection failed (\(Errno.message(code)))" }
        if let e = error as? HTTPClientError, e == .remoteConnectionClosed { return "the service closed the connection" }
        return "the connection failed (an unexpected \(String(describing: type(of: error))))"
    }

    /// The error for an answer that is not a success, in words a person can act on.
    func failure(_ r: Response, _ what: String) -> S3Error {
        let xml = String(decoding: r.body.prefix(8192), as: UTF8.self)
        let code = XMLText.value("Code", in: xml) ?? ""
        let said = XMLText.value("Message", in: xml).map { ": \($0)" } ?? ""
        let key = signer.credentials.accessKey
        let bucket = endpoint.bucket
        let (kind, text): (ErrorCode, String) = {
        switch (r.status, code) {
        case (_, "InvalidAccessKeyId"):
            return (.refused, "\(serviceText) does not know the access key ID \(key) (from \(credentialSource)); "
                + "check the key, or pick another profile with AWS_PROFILE; nothing was changed")
        case (_, "SignatureDoesNotMatch"):
            return (.refused, "\(serviceText) refused the request's signature: the secret access key (from "
                + "\(credentialSource)) does not belong to the access key ID \(key); fix it there; nothing was changed")
        case (_, "RequestTimeTooSkewed"):
            let server = r.headers.first(name: "date").map { " (the server's time is \($0))" } ?? ""
            return (.clockSkew, "\(serviceText) refused the request because this machine's clock is too far from "
                + "the server's\(server); set the clock (e.g. `timedatectl set-ntp true`) and run again; nothing was changed")
        case (_, "NoSuchBucket"):
            return (.missing, "the bucket \(bucket) does not exist at \(endpoint.hostHeader); create it with "
                + "`hubsync backup init --repo \(endpoint) --create-bucket`, or check the name in --repo")
        case (403, _), (401, _):
            return (.refused, "\(serviceText) denied access\(said.isEmpty ? "" : " (\(code)\(said))") to \(what) "
                + "in bucket \(bucket) for the key \(key) (from \(credentialSource)); grant that key read and write on the "
                + "bucket, or use another; nothing was changed")
        case (400, "BadDigest"), (400, "InvalidDigest"), (400, "XAmzContentChecksumMismatch"), (400, "XAmzContentSHA256Mismatch"):
            return (.damaged, "\(serviceText) received different bytes than were sent to \(what) (\(code)) and kept "
                + "nothing; the network may be damaging data; run the command again")
        case (let s, _) where S3Client.isTransient(s, code):
            return (.io, "\(serviceText) failed to \(what) (HTTP \(s)\(code.isEmpty ? "" : " \(code)")\(said)); "
                + "it may be overloaded or failing; what it stored already is kept, so run the command again")
        default:
            return (.io, "\(serviceText) refused to \(what) (HTTP \(r.status)\(code.isEmpty ? "" : " \(code)")\(said))")
        }
        }()
        return S3Error(kind, text, status: r.status, serverCode: code)
    }
}

/// One HTTP client for the process, never shut down (a global lives until exit). A connection
/// that cannot be made fails its request at once, so the retries here (with their backoff) decide
/// how long to keep trying, rather than the pool waiting out the whole time limit.
let s3HTTPClient: HTTPClient = {
    var c = HTTPClient.Configuration()
    c.connectionPool.retryConnectionEstablishment = false
    c.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
    c.timeout.connect = .seconds(10)
    c.decompression = .disabled
    c.redirectConfiguration = .disallow
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: c)
}()

/// Just enough XML for S3's answers: the text of simple elements.
enum XMLText {
    /// The text of the first `<name>…</name>`, entities decoded.
    static func value(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"),
              let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) else { return nil }
        return decode(String(xml[open.upperBound..<close.lowerBound]))
    }

    /// The inner text of every `<name>…</name>`.
    static func elements(_ name: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml.startIndex..<xml.endIndex
        while let open = xml.range(of: "<\(name)>", range: rest),
              let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) {
            out.append(String(xml[open.upperBound..<close.lowerBound]))
            rest = close.upperBound..<xml.endIndex
        }
        return out
    }

    static func decode(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Runs async work to its end from synchronous code, blocking the calling thread, which must not
/// be one of the cooperative pool's (the CLI's main thread, the agent's backup thread).
public func s3Blocking<T: Sendable>(_ body: @escaping @Sendable () async throws(S3Error) -> T) throws(S3Error) -> T {
    let box = BlockingResult<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do throws(S3Error) { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// The result of ``s3Blocking(_:)``'s task: written once before the semaphore is signalled, read
/// after the wait, so the semaphore orders the two.
final class BlockingResult<T: Sendable>: @unchecked Sendable {
    var result: Result<T, S3Error>?
}
