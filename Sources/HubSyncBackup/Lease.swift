import Foundation
import HubSyncCore

/// A lease on a repository: a file under `locks/` naming the holder and an expiry, renewed while
/// the work runs. An expired lease is ignored and removed by the next user, so a crash never
/// needs a manual unlock. Backups, restores and verifies take shared leases and run side by
/// side; forget and prune take an exclusive one.
public final class Lease {
    let target: any BackupTarget
    let name: String
    let exclusive: Bool
    let holder: String
    let duration: TimeInterval
    private var expires: Date

    public static let defaultDuration: TimeInterval = 300

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
            if Double(exp) / 1000 < now.timeIntervalSince1970 {
                try? target.delete(other) // stale: its holder died
                continue
            }
            let otherExclusive = o["exclusive"] == .bool(true)
            if exclusive || otherExclusive {
                try? target.delete(name)
                let who = o["holder"]?.stringValue ?? "another process"
                throw BackupError(.locked, "the repository at \(target.description) is in use by \(who) "
                    + "(\(otherExclusive ? "a forget or prune" : "a backup, restore or verify")) until "
                    + "\(iso8601(UInt64(exp))) at the latest; try again when it is done")
            }
        }
    }

    private func write() throws(BackupError) {
        let v: Value = ["holder": .string(holder), "exclusive": .bool(exclusive), "pid": .int(Int64(getpid())),
                        "expires": .int(Int64(expires.timeIntervalSince1970 * 1000))]
        try target.put(name, Array(JSON.serialize(v).utf8), replacing: true)
    }

    /// Extends the lease when a third of it has passed. A lease that ran out and was removed
    /// by another process (which took it for a dead holder's) is not written again: the work
    /// stops, since a prune may have started under it.
    func renew() throws(BackupError) {
        guard expires.timeIntervalSinceNow < duration * 2 / 3 else { return }
        if expires.timeIntervalSinceNow < 0, !((try? target.exists(name)) ?? true) {
            throw BackupError(.locked, "this process's lease on the repository at \(target.description) ran out and "
                + "another process removed it; stopped, since a forget or prune may have started since. Run the command again")
        }
        expires = Date().addingTimeInterval(duration)
        try write()
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
