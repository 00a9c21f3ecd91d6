import HubSyncBase
import Foundation
import HubSyncNet
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
        let o = try settings(data, path: path)
        for (key, v) in o {
            switch (key, v) {
            case ("listen", .string(let s)):
                if let problem = addressProblem("listen", s, source: "\(path): \"listen\"") { throw ValidationFailure(problem) }
                c.listen = s
            case ("api", .string(let s)):
                if let problem = addressProblem("api", s, source: "\(path): \"api\"") { throw ValidationFailure(problem) }
                c.api = s
            case ("repair_interval_seconds", .int(let n)) where n > 0: c.repairInterval = .seconds(n)
            case ("max_clock_drift_seconds", .int(let n)) where n > 0: c.maxClockDriftMillis = UInt64(n) * 1000
            case ("mdns", .bool(let b)): c.mdns = b
            case ("peer_backups", .object(let o)): c.peerBackups = try PeerBackupSettings(o, path: path)
            case ("backup", .object(let o)): c.backup = try BackupSchedule(o, path: path)
            default:
                // A known setting with a value of the wrong kind is told what it takes.
                let takes = ["listen": "a string HOST:PORT, such as \"0.0.0.0:7400\"", "api": "a string HOST:PORT on loopback, such as \"127.0.0.1:7401\"",
                             "repair_interval_seconds": "a whole number of seconds, 1 or more",
                             "max_clock_drift_seconds": "a whole number of seconds, 1 or more", "mdns": "true or false",
                             "peer_backups": "an object (see examples/config.json)", "backup": "an object (see examples/config.json)"][key]
                if let takes {
                    throw ValidationFailure("\(path): \"\(key)\" takes \(takes); got \(JSON.serialize(v))")
                }
                throw ValidationFailure("\(path): unknown setting \"\(key)\": \(JSON.serialize(v)); "
                    + "settings: listen, api, repair_interval_seconds, max_clock_drift_seconds, mdns, peer_backups, backup")
            }
        }
        return c
    }

    /// The JSON object of a `config.json` file's bytes. Lines that start with `//` are comments
    /// (see examples/config.json), blanked byte for byte so that a refusal's byte offset is the
    /// file's own; bytes that are not UTF-8 (in a comment too) are refused with their offset,
    /// never replaced; a leading byte-order mark is skipped.
    public static func settings(_ data: Data, path: String) throws(ValidationFailure) -> [String: Value] {
        var bytes = [UInt8](data)
        // A byte-order mark some editors write is not text of the file.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.replaceSubrange(0..<3, with: [0x20, 0x20, 0x20]) }
        // The whole file is UTF-8 text, comments too: a byte that is not is said, never skipped.
        if let offset = invalidUTF8Offset(bytes) {
            throw ValidationFailure("\(path): byte \(offset) is not part of UTF-8 text; save the file as UTF-8, or remove it to use the defaults")
        }
        var lineStart = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == UInt8(ascii: "\n") {
            var j = lineStart
            while j < i, bytes[j] == UInt8(ascii: " ") || bytes[j] == UInt8(ascii: "\t") { j += 1 }
            if j + 1 < i, bytes[j] == UInt8(ascii: "/"), bytes[j + 1] == UInt8(ascii: "/") {
                for k in lineStart..<i { bytes[k] = UInt8(ascii: " ") }
            }
            lineStart = i + 1
        }
        let value: Value
        do { value = try JSON.parse(bytes) } catch {
            throw ValidationFailure("\(path): \(error); fix the file or remove it to use the defaults")
        }
        guard let o = value.objectValue else { throw ValidationFailure("\(path) must hold a JSON object") }
        return o
    }

    /// Why `address` cannot be where the agent listens for `key` ("listen": peers, "api": the
    /// local API, loopback only), or nil; `source` names where it was given (a flag, a setting).
    public static func addressProblem(_ key: String, _ address: String, source: String) -> String? {
        guard let (host, _) = SyncNode.split(address) else {
            return "\(source) must be HOST:PORT with a port of 0–65535 (0 picks a free one); got \"\(address)\""
        }
        if key == "listen", !isListenableHost(host) {
            // Refused before any lookup: a name would need DNS, and a typo would fail late with the resolver's words.
            return "\(source) needs an IP address of this machine (or localhost); \"\(host)\" is not one — "
                + "e.g. 0.0.0.0:7400 for every interface, 127.0.0.1:0 for this machine only"
        }
        if key == "api", !["127.0.0.1", "localhost", "::1"].contains(host) {
            return "\(source) must be a loopback address (127.0.0.1, ::1 or localhost): the local API "
                + "is for this machine only; got \"\(address)\""
        }
        return nil
    }

    /// Whether `host` is an IP address (v4 or v6) or localhost: what "listen" can bind without a lookup.
    public static func isListenableHost(_ host: String) -> Bool {
        if host == "localhost" { return true }
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
