import HubSyncBase
import Foundation
public import HubSyncCore

/// The agent's settings: `config.json` in the data directory (lines starting with `//` are
/// comments), each overridable by a flag. examples/config.json documents every setting.
///
/// ```json
/// {"listen": "0.0.0.0:7400", "api": "127.0.0.1:7401", "repair_interval_seconds": 600,
///  "max_clock_drift_seconds": 60, "mdns": true}
/// ```
public struct AgentConfiguration: Sendable, Equatable {
    /// Where peers connect (HOST:PORT; port 0 picks a free one).
    public var listen = "0.0.0.0:7400"
    /// Where the local API listens; loopback only.
    public var api = "127.0.0.1:7401"
    /// How often the dialing side of each session runs a repair round.
    public var repairInterval: Duration = .seconds(600)
    public var maxClockDriftMillis: UInt64 = 60_000
    /// Whether to advertise on mDNS and dial trusted peers found there (avahi-daemon).
    public var mdns = true
    /// Added to the wall clock: only for tests of clock skew (`hubsync run --clock-offset-ms`).
    public var clockOffsetMillis: Int64 = 0
    /// What this device keeps for other members' peer targets (`"peer_backups"`).
    public var peerBackups = PeerBackupSettings()
    /// This device's own backup schedule (`"backup"`), when configured.
    public var backup: BackupSchedule?

    public init() {}

    public static let fileName = DataDirectory.configFile

    /// Reads `config.json` from the data directory; defaults when it does not exist.
    public static func load(from directory: String) throws(ValidationFailure) -> AgentConfiguration {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else { return AgentConfiguration() }
        return try parse(data, path: path)
    }

    /// The settings of a `config.json` file's bytes; its refusals name `path`.
    public static func parse(_ data: Data, path: String) throws(ValidationFailure) -> AgentConfiguration {
        var c = AgentConfiguration()
        // Lines that start with // are comments (see examples/config.json).
        let text = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.drop { $0 == " " || $0 == "\t" }.hasPrefix("//") ? "" : String($0) }
            .joined(separator: "\n")
        let value: Value
        do { value = try JSON.parse(text) } catch {
            throw ValidationFailure("\(path): \(error); fix the file or remove it to use the defaults")
        }
        guard let o = value.objectValue else { throw ValidationFailure("\(path) must hold a JSON object") }
        for (key, v) in o {
            switch (key, v) {
            case ("listen", .string(let s)): c.listen = s
            case ("api", .string(let s)): c.api = s
            case ("repair_interval_seconds", .int(let n)) where n > 0: c.repairInterval = .seconds(n)
            case ("max_clock_drift_seconds", .int(let n)) where n > 0: c.maxClockDriftMillis = UInt64(n) * 1000
            case ("mdns", .bool(let b)): c.mdns = b
            case ("peer_backups", .object(let o)): c.peerBackups = try PeerBackupSettings(o, path: path)
            case ("backup", .object(let o)): c.backup = try BackupSchedule(o, path: path)
            default:
                throw ValidationFailure("\(path): unknown or invalid setting \"\(key)\": \(JSON.serialize(v)); "
                    + "settings: listen, api, repair_interval_seconds, max_clock_drift_seconds, mdns, peer_backups, backup")
            }
        }
        return c
    }
}
