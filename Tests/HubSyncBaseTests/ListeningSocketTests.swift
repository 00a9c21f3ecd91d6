#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HubSyncBase
import Testing

@Suite struct ListeningSocketTests {
    /// A loopback TCP socket listening on a port the kernel picks; its descriptor and port.
    private func listener() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0
                && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// Every one of 80 sockets is found, so the kernel's table is read past its first page
    /// (about 27 sockets), as on a busy machine.
    @Test func socketsPastTheTablesFirstPageAreFound() throws {
        var sockets: [(fd: Int32, port: UInt16)] = []
        defer { for s in sockets { close(s.fd) } }
        for _ in 0..<80 { sockets.append(try listener()) }
        let missed = sockets.filter { !ListeningSocket.isListening(onPort: $0.port, process: getpid()) }
        #expect(missed.isEmpty, "not found: ports \(missed.map(\.port))")
        #expect(!ListeningSocket.isListening(onPort: sockets[0].port, process: getppid()))
    }
}
