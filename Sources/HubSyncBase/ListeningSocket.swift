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
