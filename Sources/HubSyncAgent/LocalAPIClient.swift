import Foundation
public import HubSyncBase
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

    /// The running agent of a data directory, or nil when none runs: the process holding the
    /// directory's writer lock as an agent, once it has written its bound addresses.
    public static func running(inDataDirectory path: String) -> LocalAPIClient? {
        let directory = DataDirectory(path: path)
        guard let holder = WriterLock.holder(in: directory), holder.isAgent else { return nil }
        return running(in: directory, pid: holder.pid)
    }

    /// The API of the agent with process ID `pid` on `directory`, from its `agent.json`; nil
    /// until that agent has written it (a file left by an earlier agent names another PID).
    public static func running(in directory: DataDirectory, pid: Int32) -> LocalAPIClient? {
        guard let bytes = directory.contents(of: DataDirectory.agentStateFile),
              let state = (try? JSON.parse(bytes))?.objectValue,
              case .int(let statePID) = state["pid"] ?? .null, statePID == Int64(pid),
              let api = state["api"]?.stringValue, let colon = api.lastIndex(of: ":"),
              let port = UInt16(api[api.index(after: colon)...]),
              let token = directory.contents(of: DataDirectory.tokenFile) else { return nil }
        var host = String(api[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return LocalAPIClient(host: host, port: port,
                              token: String(decoding: token, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Sends a request; returns the status code and the parsed JSON body.
    public func request(_ method: String, _ path: String, body: Value? = nil) throws(APIClientError) -> (status: Int, body: Value) {
        let address = host == "localhost" ? "127.0.0.1" : host
        let family = address.contains(":") ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw APIClientError("cannot open a socket: \(errnoText())") }
        defer { close(fd) }
        let rc: Int32
        if family == AF_INET6 {
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, address, &addr.sin6_addr) == 1 else { throw APIClientError("\(host) is not an IP address") }
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { throw APIClientError("\(host) is not an IP address") }
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard rc == 0 else {
            throw APIClientError("the agent's API at \(host):\(port) does not answer (\(errnoText())); "
                + "is `hubsync run` still running?")
        }
        let payload = body.map { JSON.serialize($0) } ?? ""
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(address.contains(":") ? "[\(address)]" : address):\(port)\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n"
        if body != nil { text += "Content-Type: application/json\r\n" }
        text += "Content-Length: \(payload.utf8.count)\r\n\r\n" + payload
        var bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            guard n > 0 else { throw APIClientError("cannot send to the agent: \(errnoText())") }
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
