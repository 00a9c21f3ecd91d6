import Foundation
import HubSyncBase
import HubSyncS3
import HubSyncTestSupport
import Testing

/// The client's answers to what a server says, against a scripted HTTP server on loopback: which
/// failures are tried again, which are named at once.
@Suite(.timeLimit(.minutes(5))) struct S3ClientTests {
    /// Answers each request with the next of `replies` (status line, headers, body), then closes
    /// the connection; records the request lines. Runs on a thread of its own.
    final class ScriptedServer: @unchecked Sendable { // requests is guarded by lock
        let fd: Int32
        let port: Int
        let lock = NSLock()
        private var seen: [String] = []
        var requests: [String] { lock.withLock { seen } }

        init(_ replies: [(status: String, headers: [String], body: String)]) throws {
            (fd, port) = try ListeningSocket.bindLoopback()
            guard listen(fd, 16) == 0 else { throw SystemCallError(call: "listen", path: "", errno: errno) }
            let thread = Thread { [self] in
                for reply in replies {
                    let c = accept(fd, nil, nil)
                    if c < 0 { return }
                    var head = [UInt8]()
                    var byte: UInt8 = 0
                    while !head.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)), recv(c, &byte, 1, 0) == 1 { head.append(byte) }
                    let text = String(decoding: head, as: UTF8.self)
                    if let line = text.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
                       let n = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)), n > 0 {
                        var body = [UInt8](repeating: 0, count: n)
                        var got = 0
                        while got < n { let r = recv(c, &body[got], n - got, 0); if r <= 0 { break }; got += r }
                    }
                    lock.withLock { seen.append(String(text.split(separator: "\r\n").first ?? "")) }
                    let out = Array(("HTTP/1.1 \(reply.status)\r\n" + (reply.headers + ["Content-Length: \(reply.body.utf8.count)",
                        "Connection: close"]).joined(separator: "\r\n") + "\r\n\r\n" + reply.body).utf8)
                    _ = send(c, out, out.count, Int32(MSG_NOSIGNAL))
                    close(c)
                }
            }
            thread.start()
        }

        deinit { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    static func error(_ code: String) -> String {
        "<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>said &amp; done</Message></Error>"
    }

    func client(_ server: ScriptedServer, attempts: Int = 4) throws -> S3Client {
        var settings = S3Settings()
        settings.attempts = attempts
        settings.timeoutSeconds = 5
        return S3Client(endpoint: try S3Endpoint(parsing: "http://127.0.0.1:\(server.port)/bucket/pre"),
                        credentials: S3Credentials(accessKey: "AK", secretKey: "SK"), source: "the test", settings: settings)
    }

    @Test func serverErrorsAndThrottlingAreTriedAgain() async throws {
        let server = try ScriptedServer([("503 Slow Down", [], Self.error("SlowDown")), ("500 Internal Server Error", [], Self.error("InternalError")),
                                         ("200 OK", [], "hello")])
        let body = try await client(server).get(key: "pre/config")
        #expect(body == Array("hello".utf8))
        #expect(server.requests == Array(repeating: "GET /bucket/pre/config HTTP/1.1", count: 3))
    }

    @Test func givingUpSaysHowOftenItTried() async throws {
        let server = try ScriptedServer(Array(repeating: ("503 Service Unavailable", [String](), Self.error("SlowDown")), count: 2))
        let e = await #expect(throws: S3Error.self) { try await client(server, attempts: 2).put(key: "pre/data/x", data: [1, 2, 3]) }
        #expect(e?.message.contains("tried 2 times") == true)
        #expect(e?.message.contains("SlowDown") == true)
        #expect(server.requests.count == 2)
    }

    @Test(arguments: [("403 Forbidden", "SignatureDoesNotMatch", "secret access key"),
                      ("403 Forbidden", "InvalidAccessKeyId", "access key ID AK"),
                      ("403 Forbidden", "RequestTimeTooSkewed", "clock"),
                      ("403 Forbidden", "AccessDenied", "denied access"),
                      ("404 Not Found", "NoSuchBucket", "--create-bucket"),
                      ("400 Bad Request", "BadDigest", "different bytes")])
    func refusalsAreNamedAtOnce(_ status: String, _ code: String, _ words: String) async throws {
        let server = try ScriptedServer([(status, ["Date: Mon, 30 Nov 2026 12:00:00 GMT"], Self.error(code))])
        let e = await #expect(throws: S3Error.self) { try await client(server).put(key: "pre/config", data: [1]) }
        #expect(e?.serverCode == code)
        #expect(e?.message.contains(words) == true, "\(e?.message ?? "")")
        #expect(server.requests.count == 1, "a refusal is not tried again")
    }

    @Test func aMissingObjectIsNilAndAListIsReadPageByPage() async throws {
        let page1 = "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;2</NextContinuationToken>"
            + "<Contents><Key>pre/data/a&amp;b</Key><Size>3</Size></Contents><Contents><Key>pre/data/c</Key><Size>4</Size></Contents></ListBucketResult>"
        let page2 = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>pre/data/d</Key><Size>5</Size></Contents></ListBucketResult>"
        let server = try ScriptedServer([("404 Not Found", [], Self.error("NoSuchKey")), ("200 OK", [], page1), ("200 OK", [], page2),
                                         ("206 Partial Content", ["Content-Range: bytes 0-0/1234"], "x")])
        let c = try client(server)
        #expect(try await c.get(key: "pre/nothing") == nil)
        let listed = try await c.list(prefix: "pre/data/")
        #expect(listed.map(\.key) == ["pre/data/a&b", "pre/data/c", "pre/data/d"])
        #expect(listed.map(\.size) == [3, 4, 5])
        #expect(server.requests[2].contains("continuation-token=t%262"))
        #expect(try await c.size(key: "pre/x") == 1234)
    }
}
