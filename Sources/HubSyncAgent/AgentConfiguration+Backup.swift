import Foundation
import HubSyncBackup
import HubSyncBase
import HubSyncCore
import HubSyncS3

/// What this device keeps for other members that back up to it (`peer:DEVICE-ID`):
/// `"peer_backups": {"quota_bytes": 10737418240, "quarantine_seconds": 604800}`.
public struct PeerBackupSettings: Sendable, Equatable {
    /// The most each member may store here, its quarantine included (default 10 GiB).
    public var quotaBytes = PeerStorage.defaultQuota
    /// How long files a prune plan removed stay in quarantine before the space is freed (default 7 days).
    public var quarantineSeconds = PeerStorage.defaultQuarantineSeconds

    public init() {}

    init(_ o: [String: Value], path: String) throws(ValidationFailure) {
        for (key, v) in o {
            switch (key, v) {
            case ("quota_bytes", .int(let n)) where n > 0: quotaBytes = Int(n)
            case ("quarantine_seconds", .int(let n)) where n >= 0: quarantineSeconds = Int(n)
            case ("quarantine_days", .int(let n)) where n >= 0: quarantineSeconds = Int(n) * 86_400
            default:
                throw ValidationFailure("\(path): unknown or invalid setting \"peer_backups.\(key)\": \(JSON.serialize(v)); "
                    + "settings: quota_bytes, quarantine_seconds (or quarantine_days)")
            }
        }
    }
}

/// This device's own backups, taken by the agent:
/// `"backup": {"targets": ["local:/mnt/usb/hubsync", "peer:ID", "s3:https://HOST/BUCKET/PREFIX"],
/// "interval_seconds": 3600, "keep_last": 24, "keep_daily": 7, "recovery_point_seconds": 86400,
/// "s3": {"region": "eu-west-1", "credentials_file": "/etc/hubsync/s3-credentials"}}`.
public struct BackupSchedule: Sendable, Equatable {
    /// Where to back up, in order; the CLI's default `--repo` is the first.
    public var targets: [String] = []
    /// How often the agent takes a snapshot (0: never; the CLI still reads `targets`).
    public var intervalSeconds = 0
    /// Retention applied after each scheduled backup (`forget`, no prune); empty keeps all.
    public var retention = RetentionPolicy()
    /// A last snapshot older than this is a warning in status (default: twice the interval).
    public var recoveryPointSeconds = 0
    /// How `s3:` targets are reached (region, credentials file, addressing, time limits).
    public var s3 = S3Settings(environment: ProcessInfo.processInfo.environment)

    public init() {}

    init(_ o: [String: Value], path: String) throws(ValidationFailure) {
        func bad(_ key: String, _ v: Value) -> ValidationFailure {
            ValidationFailure("\(path): unknown or invalid setting \"backup.\(key)\": \(JSON.serialize(v)); settings: "
                + "targets (an array of \"local:PATH\", \"peer:DEVICE-ID\" or \"s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]\"), "
                + "interval_seconds, recovery_point_seconds, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, "
                + "keep_yearly, keep_within (\"7d\"), s3 (an object)")
        }
        var localFolders: [(text: String, place: String)] = []
        for (key, v) in o {
            switch (key, v) {
            case ("targets", .array(let a)):
                for t in a {
                    guard let s = t.stringValue ?? t.objectValue?["target"]?.stringValue,
                          s.hasPrefix("local:") || s.hasPrefix("peer:") || s.hasPrefix("s3:") || s.hasPrefix("/")
                    else { throw bad(key, v) }
                    if s.hasPrefix("local:") || s.hasPrefix("/") {
                        let folder = s.hasPrefix("local:") ? String(s.dropFirst(6)) : s
                        guard folder.hasPrefix("/") else {
                            throw ValidationFailure("\(path): backup target \(s): a local repository is an absolute path, such as local:/media/usb/hubsync")
                        }
                        if let problem = FolderPlacement.problem(folder, what: "a backup repository") {
                            throw ValidationFailure("\(path): backup target \(s): \(problem)")
                        }
                        let other = FolderPlacement.foreignEntries(folder)
                        if !other.isEmpty {
                            throw ValidationFailure("\(path): backup target \(s): the folder holds other files (\(other.prefix(3).joined(separator: ", "))"
                                + "\(other.count > 3 ? ", …" : "")) and is not a repository; give a new or empty folder")
                        }
                        // One repository per target, none inside another: each backup would
                        // write twice into one, or refuse the inner one.
                        let resolved = FolderPlacement.resolved(folder)
                        for (earlier, place) in localFolders {
                            if place == resolved {
                                throw ValidationFailure("\(path): backup targets \(earlier) and \(s) are the same folder; give it once")
                            }
                            if resolved.hasPrefix(place + "/") || place.hasPrefix(resolved + "/") {
                                throw ValidationFailure("\(path): backup targets \(earlier) and \(s): one is inside the other; "
                                    + "give folders side by side")
                            }
                        }
                        localFolders.append((s, resolved))
                    }
                    if s.hasPrefix("s3:") {
                        do throws(S3Error) { _ = try S3Endpoint(parsing: String(s.dropFirst(3))) } catch {
                            throw ValidationFailure("\(path): backup target \(s): \(error.message)")
                        }
                    }
                    targets.append(s)
                }
            case ("target", .string(let s)): targets.insert(s, at: 0)
            case ("s3", .object(let settings)):
                let (parsed, problem) = S3Settings.parse(settings, environment: ProcessInfo.processInfo.environment)
                guard let parsed else { throw ValidationFailure("\(path): \(problem ?? "invalid \"backup.s3\"")") }
                s3 = parsed
            case ("interval_seconds", .int(let n)) where n >= 0: intervalSeconds = Int(n)
            case ("recovery_point_seconds", .int(let n)) where n >= 0: recoveryPointSeconds = Int(n)
            case ("keep_last", .int(let n)) where n >= 0: retention.last = Int(n)
            case ("keep_hourly", .int(let n)) where n >= 0: retention.hourly = Int(n)
            case ("keep_daily", .int(let n)) where n >= 0: retention.daily = Int(n)
            case ("keep_weekly", .int(let n)) where n >= 0: retention.weekly = Int(n)
            case ("keep_monthly", .int(let n)) where n >= 0: retention.monthly = Int(n)
            case ("keep_yearly", .int(let n)) where n >= 0: retention.yearly = Int(n)
            case ("keep_within", .string(let s)):
                guard let d = RetentionPolicy.parseDuration(s) else { throw bad(key, v) }
                retention.within = d
            default: throw bad(key, v)
            }
        }
        if recoveryPointSeconds == 0 { recoveryPointSeconds = intervalSeconds * 2 }
    }
}
