import Foundation
import HubSyncBase
import HubSyncCore
#if canImport(Glibc)
import Glibc
#endif

/// A lease on a repository: a file under `locks/` naming the holder and an expiry, renewed while
/// the work runs. An expired lease is ignored and removed by the next user, so a crash never
/// needs a manual unlock. A lease whose holder ran on this machine (the same boot and process
/// namespace) and is gone — no such process, or another one under its PID — is removed at
/// once, without waiting for it to expire. Backups, restores and verifies take shared leases and
/// run side by side; forget and prune take an exclusive one.
public final class Lease {
    let target: any BackupTarget
    let name: String
    let exclusive: Bool
    let holder: String
    let duration: TimeInterval
    private var expires: Date
    /// The bytes of the lease file as this process last wrote them.
    private var written: [UInt8] = []

    public static let defaultDuration: TimeInterval = 300
    /// How far past this clock another lease may end and still be obeyed.
    static let furthest: TimeInterval = 3600

    init(target: any BackupTarget, exclusive: Bool, holder: String, duration: TimeInterval) throws(BackupError) {
        self.target = target
        self.exclusive = exclusive
        self.holder = holder
        self.duration = duration
        name = "locks/" + hexEncode((0..<16).map { _ in UInt8.random(in: 0...255) })
        expires = Date().addingTimeInterval(duration)
        try write()
        // Look at the others after writing ours: two exclusive takers both see each other and back off.
        let now = Date()
        for (other, _) in try target.list("locks") where other != name {
            guard let bytes = try? target.get(other), let o = (try? JSON.parse(bytes))?.objectValue,
                  case .int(let exp) = o["expires"] ?? .null else { continue }
            if Double(exp) / 1000 < now.timeIntervalSince1970 || HolderProcess.isGone(o) {
                try? target.delete(other) // stale: its holder died
                continue
            }
            // No lease is renewed for longer than its duration, so one ending more than an hour
            // past this clock was forged, or written by a clock that is wrong: it is not obeyed.
            // A holder that is alive finds its lease gone at its next check and stops.
            if Double(exp) / 1000 > now.timeIntervalSince1970 + Self.furthest {
                try? target.delete(other)
                continue
            }
            let otherExclusive = o["exclusive"] == .bool(true)
            if exclusive || otherExclusive {
                try? target.delete(name)
                let who = o["holder"]?.stringValue ?? "another process"
                throw BackupError(.locked, "the repository at \(target.description) is in use by \(who) "
                    + "(\(otherExclusive ? "a forget or prune" : "a backup, restore or verify"); its lease is \(other)) until "
                    + "\(rfc3339(millis: UInt64(exp), fractional: false)) at the latest; try again when it is done")
            }
        }
    }

    private func write() throws(BackupError) {
        var o: [String: Value] = ["holder": .string(holder), "exclusive": .bool(exclusive), "pid": .int(Int64(getpid())),
                                  "expires": .int(Int64(expires.timeIntervalSince1970 * 1000))]
        for (k, v) in HolderProcess.current { o[k] = v }
        let v = Value.object(o)
        let bytes = Array(JSON.serialize(v).utf8)
        try target.put(name, bytes, replacing: true)
        written = bytes
    }

    /// Extends the lease when a third of it has passed. A lease that ran out and was removed
    /// by another process (which took it for a dead holder's) is not written again: the work
    /// stops, since a prune may have started under it.
    func renew() throws(BackupError) {
        guard expires.timeIntervalSinceNow < duration * 2 / 3 else { return }
        try confirm()
        expires = Date().addingTimeInterval(duration)
        try write()
    }

    /// Checks that the lease file is still there as this process wrote it. Another process
    /// removes a lease it takes for a dead holder's (one whose expiry it sees passed: ours ran
    /// out, or the clocks disagree), and a forget or prune may then run and delete what this
    /// work wrote or reads; so the work stops.
    func confirm() throws(BackupError) {
        let current: [UInt8]?
        do throws(BackupError) { current = try target.get(name) } catch {
            guard error.code == .notFound else { throw error }
            current = nil
        }
        guard current == written else {
            throw BackupError(.locked, "this process's lease on the repository at \(target.description) was removed "
                + "while the work ran (another process took it for a dead holder's: it ran out, or the two clocks "
                + "disagree); stopped, since a forget or prune may have deleted what it wrote. Run the command again")
        }
    }

    /// Gives the lease up.
    public func release() { try? target.delete(name) }

    deinit { release() }
}

extension Repository {
    /// Takes a lease for this process, lasting ``leaseDuration`` unless `duration` is given.
    public func lease(exclusive: Bool, holder: String, duration: TimeInterval? = nil) throws(BackupError) -> Lease {
        try Lease(target: target, exclusive: exclusive, holder: holder, duration: duration ?? leaseDuration)
    }
}

/// Who holds a lease, as far as another process on the same machine can check: the kernel's boot
/// ID, the PID namespace, and the process's start time (clock ticks after boot). Written into
/// every lease as `"boot"`, `"pid_ns"` and `"started"` beside `"pid"`.
enum HolderProcess {
    static let current: [String: Value] = {
        guard let boot = bootID, let ns = pidNamespace, let started = startTime(of: getpid()) else { return [:] }
        return ["boot": .string(boot), "pid_ns": .string(ns), "started": .int(started)]
    }()

    static let bootID: String? = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)

    static let pidNamespace: String? = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")

    /// Field 22 of `/proc/PID/stat`, or nil when it cannot be read.
    static func startTime(of pid: Int32) -> Int64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After the command name (which may hold spaces): field 3 onwards.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? Int64(fields[19]) : nil
    }

    /// Whether the lease `o` was written by a process of this boot and PID namespace that no
    /// longer runs. A lease from elsewhere, or one that does not say, is never taken for gone.
    static func isGone(_ o: [String: Value]) -> Bool {
        guard let boot = bootID, let ns = pidNamespace,
              o["boot"]?.stringValue == boot, o["pid_ns"]?.stringValue == ns,
              case .int(let pid) = o["pid"] ?? .null, case .int(let started) = o["started"] ?? .null,
              pid > 0, pid <= Int64(Int32.max) else { return false }
        if kill(Int32(pid), 0) != 0 { return errno == ESRCH }
        // A process runs under that PID: the holder only if it started when the holder did.
        return startTime(of: Int32(pid)).map { $0 != started } ?? false
    }
}
