import Foundation

/// Which process listens on a local TCP port, from Linux's `/proc`.
///
/// A client that is about to send a secret (the local API's bearer token) to a port it read
/// from a file checks with this that the port belongs to the process it means to talk to.
public enum ListeningSocket {
    /// Whether process `pid` holds a socket listening on TCP `port` (IPv4 or IPv6) in this
    /// network namespace. False when it cannot be told (no `/proc`, another user's process).
    public static func isListening(onPort port: UInt16, process pid: Int32) -> Bool {
        let inodes = listeningInodes(port: port)
        guard !inodes.isEmpty else { return false }
        let folder = "/proc/\(pid)/fd"
        guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return false }
        for descriptor in descriptors {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + descriptor),
                  target.hasPrefix("socket:["), target.hasSuffix("]"),
                  let inode = UInt64(target.dropFirst(8).dropLast()) else { continue }
            if inodes.contains(inode) { return true }
        }
        return false
    }

    /// The inodes of the sockets listening on `port`, from `/proc/net/tcp` and `tcp6`.
    static func listeningInodes(port: UInt16) -> Set<UInt64> {
        var inodes = Set<UInt64>()
        let suffix = ":" + String(format: "%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // Read to the end: `/proc` files report size 0, and String(contentsOfFile:) (like
            // FileManager.contents) stops after the first read, about 4 KiB, so a port listed
            // further down a busy machine's table was never found.
            guard let handle = FileHandle(forReadingAtPath: table) else { continue }
            defer { try? handle.close() }
            let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(whereSeparator: \.isWhitespace)
                // sl, local_address, rem_address, st (0A: LISTEN), tx:rx, tr:when, retrnsmt, uid, timeout, inode
                guard fields.count > 9, fields[1].hasSuffix(suffix), fields[3] == "0A",
                      let inode = UInt64(fields[9]) else { continue }
                inodes.insert(inode)
            }
        }
        return inodes
    }
}

extension ListeningSocket {
    /// A TCP socket bound to 127.0.0.1 on a port the OS picks (not yet listening): its
    /// descriptor, which the caller closes, and the port.
    public static func bindLoopback() throws(SystemCallError) -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError(call: "socket", path: "127.0.0.1", errno: errno) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else {
            let e = errno
            close(fd)
            throw SystemCallError(call: "bind", path: "127.0.0.1:0", errno: e)
        }
        return (fd, Int(UInt16(bigEndian: a.sin_port)))
    }

    /// Ports the OS says are free now (bound to port 0 on 127.0.0.1, read back, closed), for a
    /// server of another program that takes its ports as arguments (SeaweedFS in the S3 tests
    /// and bench).
    public static func freeLoopbackPorts(_ count: Int) throws(SystemCallError) -> [Int] {
        var held: [(fd: Int32, port: Int)] = []
        defer { for h in held { close(h.fd) } }
        for _ in 0..<count { held.append(try bindLoopback()) }
        return held.map(\.port)
    }
}
