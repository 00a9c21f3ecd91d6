import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncAgent
import HubSyncBackup

/// Standard output through a buffer, so that long listings stream without a write per line.
struct OutputBuffer {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Prints one JSON value on its own line.
func printJSON(_ value: Value) {
    print(JSON.serialize(value))
}

/// A record for people: its key, then one line per field.
func recordText(_ s: RecordState) -> String {
    var lines = ["\(s.key)" + (s.isAlive ? "" : " (deleted)")]
    let fields = s.visibleFields
    for name in fields.keys.sorted(by: utf8Less) {
        lines.append("  \(name): \(JSON.serialize(fields[name]!))")
    }
    for field in s.conflictedFields {
        let reg = s.fields[field]!
        let values = reg.versions.map { "\(JSON.serialize($0.value)) (device \($0.stamp.device.short))" }
        lines.append("  ! conflict on \(field): " + values.joined(separator: " vs ")
            + "; shown: the first. Resolve with `hubsync resolve \(s.key.collection) \(s.key.id) \(field) --value JSON`")
    }
    return lines.joined(separator: "\n")
}

/// Progress of long work (backups, restores, imports): a line with an ETA on a terminal, JSON events otherwise,
/// at most a few per second.
final class ProgressReporter {
    let isTerminal = isatty(2) == 1
    let quiet: Bool
    var start = Date()
    var phase = ""
    var last = Date.distantPast

    init(quiet: Bool = false) { self.quiet = quiet }

    func report(_ phase: String, _ done: Int, _ total: Int) {
        guard !quiet else { return }
        if phase != self.phase { self.phase = phase; start = Date() }
        let now = Date()
        guard done >= total || now.timeIntervalSince(last) >= (isTerminal ? 0.2 : 0.5) else { return }
        last = now
        if isTerminal {
            let elapsed = now.timeIntervalSince(start)
            let eta = done > 0 ? elapsed / Double(done) * Double(max(0, total - done)) : 0
            let pct = total > 0 ? done * 100 / total : 100
            FileHandle.standardError.write(Data("\r\(phase) \(done)/\(total) (\(pct)%) ETA \(Int(eta.rounded())) s   ".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let event: Value = ["event": "progress", "phase": .string(phase), "done": .int(Int64(done)),
                                "total": .int(Int64(total)),
                                "elapsed_ms": .int(Int64(now.timeIntervalSince(start) * 1000))]
            FileHandle.standardError.write(Data((JSON.serialize(event) + "\n").utf8))
        }
    }

    var callback: BackupProgress { { [self] in report($0, $1, $2) } }
}
