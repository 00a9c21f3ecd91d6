import Foundation
import HubSyncBase
import HubSyncCrypto

/// One backup connection to a peer's sync listener, from the client side: a blocking TCP socket
/// (the repository code is synchronous), the marker frame, the SIGMA handshake as initiator,
/// then sealed request/response messages (protocol/SPEC.md 5.12).
final class PeerConnection {
    let fd: Int32
    let peerText: String
    private var sender: SecretStreamSender
    private var receiver: SecretStreamReceiver

    /// Connects to `host:port`, checks the responder is `expected`, and reads the peer's hello.
    init(host: String, port: Int, identity: SigningKey, expected: DeviceID, peerText: String,
         timeout: Int = 60) throws(BackupError) {
        self.peerText = peerText
        let fd = try Self.connect(host: host, port: port, peerText: peerText)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        self.fd = fd
        do throws(BackupError) {
            try Self.writeFrame(fd, PeerProtocol.marker, peerText)
            var hs = HandshakeInitiator(identity: identity)
            try Self.writeFrame(fd, hs.start(), peerText)
            let msg2 = try Self.readFrame(fd, peerText)
            let step: (peerDevice: DeviceID, finish: [UInt8], result: HandshakeResult)
            do { step = try hs.receive(msg2) } catch {
                throw BackupError(.io, "the handshake with \(peerText) failed: \(error.message)")
            }
            guard step.peerDevice == expected else {
                throw BackupError(.refused, "the agent at \(peerText) is device \(step.peerDevice.short), not "
                    + "\(expected.short); check the address in `hubsync peers`")
            }
            try Self.writeFrame(fd, step.finish, peerText)
            sender = SecretStreamSender(key: step.result.sendKey)
            try Self.writeFrame(fd, sender.header, peerText)
            let header = try Self.readFrame(fd, peerText)
            do { receiver = try SecretStreamReceiver(key: step.result.receiveKey, header: header) } catch {
                throw BackupError(.io, "\(peerText) sent a bad stream header")
            }
        } catch {
            close(fd)
            throw error
        }
        // The hello: ok, or why this device may not store backups there.
        do throws(BackupError) { _ = try PeerProtocol.result(try receive(), from: peerText) } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// Sends one request and returns the answer's body; failures become errors.
    func call(_ request: PeerProtocol.Request) throws(BackupError) -> [UInt8] {
        try send(request.encoded())
        return Array(try PeerProtocol.result(try receive(), from: peerText))
    }

    /// Sends a message as `u32 length ‖ body`, split into sealed frames of at most
    /// ``PeerProtocol/partSize`` plaintext bytes.
    private func send(_ body: [UInt8]) throws(BackupError) {
        var whole = ByteWriter()
        whole.u32(UInt32(body.count))
        whole.append(body)
        var start = 0
        let bytes = whole.bytes
        repeat {
            let end = min(bytes.count, start + PeerProtocol.partSize)
            try Self.writeFrame(fd, sender.seal(Array(bytes[start..<end])), peerText)
            start = end
        } while start < bytes.count
    }

    private func receive() throws(BackupError) -> [UInt8] {
        var message = try open(try Self.readFrame(fd, peerText))
        guard message.count >= 4 else { throw BackupError(.io, "\(peerText) sent a malformed message") }
        let length = message.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        guard length <= PeerProtocol.maxMessageSize else { throw BackupError(.io, "\(peerText) sent an oversized message") }
        message.removeFirst(4)
        while message.count < length { message += try open(try Self.readFrame(fd, peerText)) }
        guard message.count == length else { throw BackupError(.io, "\(peerText) sent a malformed message") }
        return message
    }

    private func open(_ frame: [UInt8]) throws(BackupError) -> [UInt8] {
        do { return try receiver.open(frame) } catch {
            throw BackupError(.io, "a message from \(peerText) failed authentication; the connection was closed")
        }
    }

    // MARK: sockets

    static func connect(host: String, port: Int, peerText: String) throws(BackupError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw BackupError(.io, "\(peerText) is offline: cannot resolve \(host); check its address in `hubsync peers`")
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            // Non-blocking connect with a 5 s limit, then back to blocking.
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var rc = Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen)
            if rc != 0, errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, 5000) == 1 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    rc = err == 0 ? 0 : -1
                    if err != 0 { reason = Errno.message(err) }
                } else {
                    reason = "no answer within 5 s"
                }
            } else if rc != 0 {
                reason = Errno.message(errno)
            }
            if rc == 0 {
                _ = fcntl(fd, F_SETFL, flags)
                return fd
            }
            close(fd)
        }
        throw BackupError(.io, "\(peerText) is offline (\(reason)); start its agent (`hubsync run`) or check its "
            + "address in `hubsync peers`; nothing was stored or changed")
    }

    static func writeFrame(_ fd: Int32, _ payload: [UInt8], _ peerText: String) throws(BackupError) {
        var w = ByteWriter()
        w.u32(UInt32(payload.count))
        w.append(payload)
        let bytes = w.bytes
        var done = 0
        var err: Int32 = 0
        bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_NOSIGNAL))
                if n < 0 { if errno == EINTR { continue }; err = errno; return }
                done += n
            }
        }
        if err != 0 {
            throw BackupError(.io, "the connection to \(peerText) broke (\(Errno.message(err))); "
                + "what it stored already is kept; run the command again")
        }
    }

    static func readFrame(_ fd: Int32, _ peerText: String) throws(BackupError) -> [UInt8] {
        let head = try readExactly(fd, 4, peerText)
        let length = head.reduce(0) { $0 << 8 | Int($1) }
        guard length <= 1 << 20 else { throw BackupError(.io, "\(peerText) sent a frame over the 1 MiB limit") }
        return try readExactly(fd, length, peerText)
    }

    static func readExactly(_ fd: Int32, _ count: Int, _ peerText: String) throws(BackupError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        var err: Int32 = 0
        out.withUnsafeMutableBytes { raw in
            while got < count {
                let n = recv(fd, raw.baseAddress! + got, count - got, 0)
                if n < 0 { if errno == EINTR { continue }; err = errno; return }
                if n == 0 { return }
                got += n
            }
        }
        if err == EAGAIN || err == EWOULDBLOCK {
            throw BackupError(.io, "\(peerText) did not answer in time; what it stored already is kept; run the command again")
        }
        if err != 0 || got < count {
            let why = err != 0 ? Errno.message(err) : "closed by the peer"
            throw BackupError(.io, "the connection to \(peerText) ended (\(why)); it may not trust this device "
                + "(`hubsync peers add` there) or its agent stopped; what it stored already is kept")
        }
        return out
    }
}
