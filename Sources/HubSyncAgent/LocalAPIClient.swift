import Foundation
import HubSyncBase
public import HubSyncCore

/// The local API could not be reached or answered something unreadable.
public struct APIClientError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Talks to the agent running on a data directory, through its local API (HTTP/1.1 on loopback).
///
/// The CLI sends its writes through it when an agent runs, so that they are pushed to peers at
/// once; tests use it too.
public struct LocalAPIClient: Sendable {
    public let host: String
    public let port: UInt16
    public let token: String

    public init(host: String, port: UInt16, token: String) {
        self.host = host
        self.port = port
        self.token = token
    }

    /// The running agent of a data directory, or nil when none runs (no agent.json, or its
    /// process is gone).
    public static func running(inDataDirectory path: String) -> LocalAPIClient? {
        guard let data = FileManager.default.contents(atPath: path + "/agent.json"),
              let state = (try? JSON.parse([UInt8](data)))?.objectValue,
              case .int(let pid) = state["pid"] ?? .null, kill(pid_t(pid), 0) == 0,
              let api = state["api"]?.stringValue, let colon = api.lastIndex(of: ":"),
              let port = UInt16(api[api.index(after: colon)...]),
              let tokenData = FileManager.default.contents(atPath: path + "/api.token") else { return nil }
        let token = String(decoding: tokenData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return LocalAPIClient(host: String(api[..<colon]), port: port, token: token)
    }

    /// Sends a request; returns the status code and the parsed JSON body.
    public func request(_ method: String, _ path: String, body: Value? = nil) throws(APIClientError) -> (status: Int, body: Value) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw APIClientError("cannot open a socket: \(Errno.message(errno))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            throw APIClientError("the agent's API at \(host):\(port) does not answer (\(Errno.message(errno))); "
                + "is `hubsync run` still running?")
        }
        let payload = body.map { JSON.serialize($0) } ?? ""
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n"
        if body != nil { text += "Content-Type: application/json\r\n" }
        text += "Content-Length: \(payload.utf8.count)\r\n\r\n" + payload
        var bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            guard n > 0 else { throw APIClientError("cannot send to the agent: \(Errno.message(errno))") }
            sent += n
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        bytes = response
        guard let headerEnd = bytes.indices.dropLast(3).first(where: {
            bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10
        }) else { throw APIClientError("the agent sent an incomplete answer") }
        let head = String(decoding: bytes[..<headerEnd], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var bodyBytes = Array(bytes[(headerEnd + 4)...])
        if head.lowercased().contains("transfer-encoding: chunked") { bodyBytes = Self.dechunk(bodyBytes) }
        let value = (try? JSON.parse(bodyBytes)) ?? .null
        return (status, value)
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let lineEnd = bytes[i...].indices.dropLast().first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
                  let size = Int(String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16),
                  size > 0 else { break }
            let start = lineEnd + 2
            out.append(contentsOf: bytes[start..<min(start + size, bytes.count)])
            i = start + size + 2
        }
        return out
    }
}
