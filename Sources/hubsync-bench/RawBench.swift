import CHubZstd
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto

/// The machine's raw limits, measured in the same run as HubSync's figures so the two can be
/// read side by side: SQLite alone inserting the rows an import writes, BLAKE2b over record-sized
/// inputs, zstd over the records' JSON, and a TCP round trip on loopback.
extension Bench {
    /// SQLite alone, the same rows (ID + fields as JSON text) in one transaction, WAL,
    /// `synchronous=NORMAL` (scripts/bench-sqlite.py); nil when python3 cannot run it.
    func sqliteInsert(plainFile: String) throws -> (rowsPerSecond: Double, seconds: Double)? {
        sync()  // as before each tool the bench times (``spawnTool(_:_:env:)``)
        let (text, status) = try output(of: "/usr/bin/env",
                                        ["python3", options.scripts + "/bench-sqlite.py", plainFile, work + "/raw-sqlite.db"])
        guard status == 0, let o = (try? JSON.parse(text))?.objectValue,
              let rate = o["rows_per_second"]?.number, let seconds = o["seconds"]?.number else { return nil }
        return (rate, seconds)
    }

    /// BLAKE2b-256 over 1 KB inputs (a record's digest) and over 1 MiB, in MB/s.
    func blake2bThroughput() -> Row {
        var small: [Double] = [], large: [Double] = []
        let record = [UInt8](repeating: 0x61, count: 1024)
        let block = [UInt8](repeating: 0x62, count: 1 << 20)
        for _ in 0..<options.runs {
            var start = Date()
            for _ in 0..<100_000 { _ = Blake2b.hash(record) }
            small.append(Double(100_000 * record.count) / Date().timeIntervalSince(start) / 1e6)
            start = Date()
            for _ in 0..<128 { _ = Blake2b.hash(block) }
            large.append(Double(128 * block.count) / Date().timeIntervalSince(start) / 1e6)
        }
        return Row(name: "  raw: BLAKE2b-256 (libsodium), 1 KB inputs / 1 MiB inputs",
                   value: "\(fmt(median(small), 0)) MB/s", rate: "\(fmt(median(large), 0)) MB/s on 1 MiB", goal: "limit, no goal")
    }

    /// zstd level 3 over the plain-record file in 1 MiB pieces (as backups compress groups of
    /// records), compression and decompression, in MB/s of input; the ratio.
    func zstdThroughput(plainFile: String) throws -> Row {
        guard let h = FileHandle(forReadingAtPath: plainFile) else { throw BenchError("cannot read \(plainFile)") }
        let head = [UInt8](h.readData(ofLength: 64 << 20))
        try h.close()
        let pieces = stride(from: 0, to: head.count, by: 1 << 20).map { Array(head[$0..<min($0 + (1 << 20), head.count)]) }
        var compress: [Double] = [], decompress: [Double] = []
        var ratio = 0.0
        for _ in 0..<options.runs {
            var packed: [[UInt8]] = []
            var start = Date()
            for p in pieces {
                let bound = ZSTD_compressBound(p.count)
                var out = [UInt8](repeating: 0, count: bound)
                let n = out.withUnsafeMutableBytes { o in p.withUnsafeBytes { ZSTD_compress(o.baseAddress, bound, $0.baseAddress, $0.count, 3) } }
                guard ZSTD_isError(n) == 0 else { throw BenchError("zstd failed") }
                out.removeLast(out.count - n)
                packed.append(out)
            }
            compress.append(Double(head.count) / Date().timeIntervalSince(start) / 1e6)
            ratio = Double(head.count) / Double(packed.reduce(0) { $0 + $1.count })
            start = Date()
            for (p, z) in zip(pieces, packed) {
                var out = [UInt8](repeating: 0, count: p.count)
                let n = out.withUnsafeMutableBytes { o in z.withUnsafeBytes { ZSTD_decompress(o.baseAddress, p.count, $0.baseAddress, $0.count) } }
                guard ZSTD_isError(n) == 0, n == p.count else { throw BenchError("zstd could not decompress its own output") }
            }
            decompress.append(Double(head.count) / Date().timeIntervalSince(start) / 1e6)
        }
        return Row(name: "  raw: zstd level 3, the records' JSON in 1 MiB pieces",
                   value: "\(fmt(median(compress), 0)) MB/s", rate: "decompress \(fmt(median(decompress), 0)) MB/s, ratio \(fmt(ratio, 2))",
                   goal: "limit, no goal")
    }

    /// A 64-byte message to a thread of this process and back over TCP on 127.0.0.1 (port 0),
    /// 10,000 times: the round trip every network figure pays.
    func loopbackRoundTrip() throws -> Row {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw BenchError("socket: \(Errno.message(errno))") }
        defer { close(listener) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &len) == 0 }
        }
        guard bound else { throw BenchError("cannot listen on 127.0.0.1: \(Errno.message(errno))") }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        let connected = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw BenchError("cannot connect to 127.0.0.1: \(Errno.message(errno))") }
        let server = accept(listener, nil, nil)
        guard server >= 0 else { throw BenchError("accept: \(Errno.message(errno))") }
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(server, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let count = 10_000
        let echo = Thread {
            var buf = [UInt8](repeating: 0, count: 64)
            for _ in 0..<count {
                var got = 0
                while got < 64 {
                    let n = buf.withUnsafeMutableBytes { read(server, $0.baseAddress! + got, 64 - got) }
                    if n <= 0 { return }
                    got += n
                }
                _ = write(server, buf, 64)
            }
        }
        echo.start()
        defer { close(server) }
        var times: [Double] = []
        var buf = [UInt8](repeating: 7, count: 64)
        for _ in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            guard write(client, buf, 64) == 64 else { throw BenchError("loopback write failed: \(Errno.message(errno))") }
            var got = 0
            while got < 64 {
                let n = buf.withUnsafeMutableBytes { read(client, $0.baseAddress! + got, 64 - got) }
                guard n > 0 else { throw BenchError("loopback read failed") }
                got += n
            }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
        }
        times.sort()
        return Row(name: "  raw: TCP round trip on 127.0.0.1, 64 bytes (10,000)",
                   value: "p50 \(fmt(times[count / 2], 0)) µs", rate: "p99 \(fmt(times[count * 99 / 100], 0)) µs", goal: "limit, no goal")
    }
}
