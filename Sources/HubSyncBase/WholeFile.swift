import Glibc

/// Reading a whole file to its end, whatever it is: a /proc file or a pipe (`<(…)` in a shell,
/// which names `/dev/fd/N`) has no size to go by, so it is read until `read(2)` returns 0.
public enum WholeFile {
    /// The file's bytes; throws on failing to open or read it, or (EFBIG) when it holds more
    /// than `limit` bytes.
    public static func read(_ path: String, limit: Int = .max) throws(SystemCallError) -> [UInt8] {
        let fd = try SystemCallError.check("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try SystemCallError.check("read", path) { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { return bytes }
            guard bytes.count + n <= limit else { throw SystemCallError(call: "read", path: path, errno: EFBIG) }
            bytes += chunk[0..<n]
        }
    }
}
