import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
internal import CHubAvahi
internal import CHubZstd

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this device: libraries, mDNS (avahi-daemon), identity and store.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var checks: [(name: String, ok: Bool, detail: String)] = []
        checks.append(("libsodium", true, Sodium.versionString))
        checks.append(("zstd", true, String(cString: ZSTD_versionString())))
        checks.append(("sqlite", true, Store.sqliteVersion))
        let mdns = avahiStatus()
        checks.append(("mdns", mdns.ok, mdns.detail))
        let dir = common.directory
        do {
            let id = try dir.identity()
            checks.append(("identity", true, id.deviceID.description))
        } catch {
            checks.append(("identity", false, error.message))
        }
        do {
            let store = try dir.openStore()
            let report = try guarded { try store.integrityCheck() }
            let counts = try guarded { try store.counts() }
            let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            checks.append(("store", report == "ok", report == "ok" ? (summary.isEmpty ? "empty" : summary)
                               : "integrity check failed: \(report); restore it from a backup (`hubsync backup restore`)"))
        } catch {
            checks.append(("store", false, error.message))
        }
        checks.append(privacyCheck(dir))
        // mDNS is optional (static addresses work without it): a warning, not a failure.
        let failed = checks.filter { !$0.ok && $0.name != "mdns" }
        if output.json {
            printJSON(.object(Dictionary(uniqueKeysWithValues: checks.map {
                ($0.name, ["ok": .bool($0.ok), "detail": .string($0.detail)] as Value)
            })))
        } else {
            for c in checks { print("\(c.ok ? "ok  " : c.name == "mdns" ? "warn" : "FAIL") \(c.name): \(c.detail)") }
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }

    /// The data directory and its secret files readable by this user alone.
    func privacyCheck(_ dir: DataDirectory) -> (name: String, ok: Bool, detail: String) {
        var problems: [String] = []
        func mode(_ path: String) -> mode_t? {
            var status = stat()
            return stat(path, &status) == 0 ? status.st_mode & 0o777 : nil
        }
        if let m = mode(dir.path), m & 0o077 != 0 {
            problems.append("\(dir.path) is mode \(String(m, radix: 8)): others can read the store; run `chmod 700 \(dir.path)`")
        }
        for name in [DataDirectory.identityFile, DataDirectory.householdFile, DataDirectory.tokenFile] {
            if let m = mode(dir.file(name)), m & 0o077 != 0 {
                problems.append("\(name) is mode \(String(m, radix: 8)); run `chmod 600 \(dir.file(name))`")
            }
        }
        return ("permissions", problems.isEmpty, problems.isEmpty ? "only this user can read the directory" : problems.joined(separator: "; "))
    }

    /// Connects to the system's avahi-daemon over D-Bus once, to tell whether mDNS works here.
    func avahiStatus() -> (ok: Bool, detail: String) {
        guard let poll = avahi_simple_poll_new() else { return (false, "cannot create an Avahi poll object") }
        defer { avahi_simple_poll_free(poll) }
        var error: Int32 = 0
        guard let client = avahi_client_new(avahi_simple_poll_get(poll), AvahiClientFlags(0), { _, _, _ in }, nil, &error)
        else {
            return (false, "mDNS unavailable: avahi-daemon is not running (\(String(cString: avahi_strerror(error))))")
        }
        defer { avahi_client_free(client) }
        let version = avahi_client_get_version_string(client).map { String(cString: $0) } ?? "avahi"
        return (true, "\(version) on the system bus")
    }
}
