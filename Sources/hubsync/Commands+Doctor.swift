import ArgumentParser
import Foundation
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
            let store = try dir.openStore()
            let report = try guarded { try store.integrityCheck() }
            let counts = try guarded { try store.counts() }
            checks.append(("store", report == "ok",
                           report == "ok" ? counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                               : "integrity check failed: \(report)"))
        } catch {
            checks.append(("identity", false, error.message))
        }
        if output.json {
            printJSON(.object(Dictionary(uniqueKeysWithValues: checks.map {
                ($0.name, ["ok": .bool($0.ok), "detail": .string($0.detail)] as Value)
            })))
        } else {
            for c in checks { print("\(c.ok ? "ok  " : "FAIL") \(c.name): \(c.detail)") }
        }
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
