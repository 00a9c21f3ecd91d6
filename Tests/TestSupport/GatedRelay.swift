import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HubSyncBase

/// A loopback TCP relay in front of a test server that passes the first `limit` bytes its
/// clients send and then holds every connection still: a client is stopped part-way through a
/// transfer however fast the machine is, so a test can break the server at that point instead of
/// racing the client. ``cut()`` then closes every connection and the listening socket.
public final class GatedRelay: @unchecked Sendable { // every var is guarded by `condition`
    public let port: Int
    private let listener: Int32
    private let target: Int
    private let limit: Int
    private let condition = NSCondition()
    private var forwarded = 0
    private var holding = false
    private var isCut = false
    private var sockets: [Int32] = []

    /// Starts relaying from a new loopback port to `127.0.0.1:targetPort`.
    public init(to targetPort: Int, passing limit: Int) throws {
        (listener, port) = try ListeningSocket.bindLoopback()
        target = targetPort
        self.limit = limit
        guard Glibc.listen(listener, 64) == 0 else {
            let code = errno
            close(listener)
            throw SystemCallError(call: "listen", path: "127.0.0.1:\(port)", errno: code)
        }
        let thread = Thread { [self] in acceptLoop() }
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit { cut() }

    /// Whether a client has reached the limit and is being held.
    public var isHolding: Bool { condition.withLock { holding } }

    /// Bytes passed from clients to the server so far.
    public var bytesPassed: Int { condition.withLock { forwarded } }

    /// Closes every connection (held ones included) and stops accepting new ones. Idempotent.
    public func cut() {
        condition.withLock {
            guard !isCut else { return }
            isCut = true
            for fd in sockets { shutdown(fd, Int32(SHUT_RDWR)) }
            shutdown(listener, Int32(SHUT_RDWR))
            condition.broadcast()
        }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                break
            }
            let server = connectToTarget()
            let registered = condition.withLock { () -> Bool in
                guard !isCut, server >= 0 else { return false }
                sockets += [client, server]
                return true
            }
            guard registered else {
                close(client)
                if server >= 0 { close(server) }
                continue
            }
            let connection = Connection(client: client, server: server) { [self] in
                // Forgotten before they are closed, so that cut() never shuts down a reused number.
                condition.withLock { sockets.removeAll { $0 == client || $0 == server } }
            }
            for (from, to, counted) in [(client, server, true), (server, client, false)] {
                let thread = Thread { [self] in
                    pump(from: from, to: to, counted: counted)
                    connection.pumpEnded()
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
        }
        close(listener)
    }

    private func connectToTarget() -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(target).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if !connected { close(fd); return -1 }
        return fd
    }

    /// Copies `from` to `to` until either end closes; client bytes past the limit are held
    /// until ``cut()``.
    private func pump(from: Int32, to: Int32, counted: Bool) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            if counted {
                let pass = condition.withLock { () -> Bool in
                    if holding || forwarded + n > limit {
                        holding = true
                        condition.broadcast()
                        while !isCut { condition.wait() }
                        return false
                    }
                    forwarded += n
                    return true
                }
                guard pass else { break }
            }
            var sent = 0
            while sent < n {
                let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, n - sent) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { shutdown(to, Int32(SHUT_WR)); return }
                sent += w
            }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    /// Both sockets of one relayed connection, closed when both of its pumps have ended.
    private final class Connection: @unchecked Sendable { // `ended` is guarded by `lock`
        let client: Int32
        let server: Int32
        private var ended = 0
        private let lock = NSLock()
        private let forget: @Sendable () -> Void
        init(client: Int32, server: Int32, forget: @escaping @Sendable () -> Void) {
            self.client = client
            self.server = server
            self.forget = forget
        }
        func pumpEnded() {
            let last = lock.withLock { ended += 1; return ended == 2 }
            if last { forget(); close(client); close(server) }
        }
    }
}
