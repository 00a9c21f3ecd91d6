import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
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
        var identityOK = false
        do {
            let id = try dir.identity()
            checks.append(("identity", true, id.deviceID.description))
            identityOK = true
        } catch {
            checks.append(("identity", false, error.message))
        }
        do {
            // The store opens with the identity: its failure is said once, on the line above.
            guard identityOK else { throw CLIError.failure("not checked: the store opens with this device's identity (above)") }
            let store = try dir.openStore()
            let report = try guarded { try store.integrityCheck() }
            // The rows are read only from sound pages.
            let problems = report == "ok" ? try guarded { try store.checkRecords() } : []
            if report != "ok" {
                checks.append(("store", false, "integrity check failed: \(report); restore it from a backup (`hubsync backup restore`)"))
            } else if !problems.isEmpty {
                checks.append(("store", false, Self.recordProblemText(problems)))
            } else {
                let counts = try guarded { try store.counts() }
                let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                let never = try guarded { try store.read(.neverCreated) }
                checks.append(("store", true, (summary.isEmpty ? "empty" : summary) + (never.isEmpty ? "" : "; " + Self.neverCreatedText(never))))
            }
        } catch {
            checks.append(("store", false, CLIError(error).message))
        }
        checks += householdChecks(dir)
        checks.append(configCheck(dir))
        checks.append(privacyCheck(dir))
        checks.append(diskCheck(dir))
        // mDNS is optional (static addresses work without it), and so is the device's name: warnings, not failures.
        let warnings: Set = ["mdns", "device"]
        let failed = checks.filter { !$0.ok && !warnings.contains($0.name) }
        if output.json {
            printJSON(.object(Dictionary(uniqueKeysWithValues: checks.map {
                ($0.name, ["ok": .bool($0.ok), "detail": .string($0.detail),
                           "level": .string($0.ok ? "ok" : warnings.contains($0.name) ? "warn" : "fail")] as Value)
            })))
        } else {
            for c in checks { print("\(c.ok ? "ok  " : warnings.contains(c.name) ? "warn" : "FAIL") \(c.name): \(c.detail)") }
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }

    /// Rows an older HubSync stored for a put of only nulls on a new ID: what they are, and that
    /// they need nothing.
    static func neverCreatedText(_ keys: [RecordKey]) -> String {
        let named = keys.prefix(3).map(\.description).joined(separator: ", ")
        return "\(plural(keys.count, "row")) of records never created (\(named)\(keys.count > 3 ? ", …" : "")), as an older HubSync "
            + "stored for a put of only nulls on a new ID (sync and exports carry them on): they hold no fields and need nothing done"
    }

    /// Records whose rows do not hold up, the first three named, and what to do.
    static func recordProblemText(_ problems: [RecordProblem]) -> String {
        let named = problems.prefix(3).map(\.description).joined(separator: "; ")
        let one = problems.count == 1
        return "\(plural(problems.count, "damaged record")) (\(named)\(problems.count > 3 ? "; …" : "")); `hubsync repair` "
            + "rebuilds the store without \(one ? "it" : "them"), keeping every other record, and \(one ? "it comes" : "they come") "
            + "back from a peer or a backup"
    }

    /// Free space on the disk that holds the data directory: a write there fails below a few MiB.
    func diskCheck(_ dir: DataDirectory) -> (name: String, ok: Bool, detail: String) {
        var fs = statvfs()
        guard statvfs(dir.path, &fs) == 0 else { return ("disk", true, "not checked (\(dir.path) cannot be read)") }
        let free = Int(fs.f_bavail) * Int(fs.f_frsize), total = Int(fs.f_blocks) * Int(fs.f_frsize)
        let ok = free >= 8 << 20
        return ("disk", ok, ok ? "\(byteText(free)) free of \(byteText(total))"
                    : "the disk holding \(dir.path) is nearly full (\(byteText(free)) free of \(byteText(total))); "
                        + "writes will fail: free some space")
    }

    /// config.json read as the agent reads it at start (`run` refuses a file that does not pass).
    func configCheck(_ dir: DataDirectory) -> (name: String, ok: Bool, detail: String) {
        guard FileManager.default.fileExists(atPath: dir.configPath) else { return ("config", true, "none (the defaults)") }
        do {
            _ = try AgentConfiguration.load(from: dir.path)
            return ("config", true, dir.configPath)
        } catch {
            return ("config", false, error.message + "; `hubsync run` and the backup commands refuse it until it is fixed")
        }
    }

    /// The household files (secrets and membership statements) read whole, and the device's
    /// name file (`device.json`) when there is one.
    func householdChecks(_ dir: DataDirectory) -> [(name: String, ok: Bool, detail: String)] {
        var checks: [(name: String, ok: Bool, detail: String)] = []
        do {
            let household = try HouseholdSnapshot.read(in: dir)
            if household.secretsLost {
                checks.append(("household", false, HouseholdSnapshot.lostSecretsAdvice(dir)))
                return checks
            }
            let members = household.membership?.members.count ?? 0
            checks.append(("household", true, household.secrets == nil ? "none (no household secrets)"
                : "\(plural(members, "member")), group \(Hex.encode(household.secrets!.groupID.prefix(4)))"))
        } catch {
            checks.append(("household", false, error.message))
        }
        if let bytes = dir.contents(of: DataDirectory.deviceFile),
           (try? JSON.parse(bytes))?.objectValue?["name"]?.stringValue == nil {
            checks.append(("device", false, "\(dir.file(DataDirectory.deviceFile)) is not the JSON object `hubsync init` wrote, "
                + "so this device shows no name; write {\"name\": \"NAME\"} there, or remove the file"))
        }
        return checks
    }

    /// The data directory and its secret files readable by this user alone.
    func privacyCheck(_ dir: DataDirectory) -> (name: String, ok: Bool, detail: String) {
        if access(dir.path, R_OK | X_OK) != 0, FileManager.default.fileExists(atPath: dir.path) {
            return ("permissions", false, "this user may not read \(dir.path); run HubSync as the user who owns it "
                + "(`ls -ld \(dir.path)`)")
        }
        var problems: [String] = []
        func mode(_ path: String) -> mode_t? {
            var status = stat()
            return stat(path, &status) == 0 ? status.st_mode & 0o777 : nil
        }
        if let m = mode(dir.path), m & 0o077 != 0 {
            problems.append("\(dir.path) is mode \(String(m, radix: 8)): others can read the store; run `chmod 700 \(dir.path)`")
        }
        // Every file: the keys, the store (it holds every record) and anything left from older versions.
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
        for name in names {
            var status = stat()
            guard lstat(dir.file(name), &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            let m = status.st_mode & 0o777
            if m & 0o077 != 0 {
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
            let reason = String(cString: avahi_strerror(error))
            return (false, "mDNS unavailable: " + (reason == "Daemon not running" ? "avahi-daemon is not running" : "avahi-daemon: \(reason)")
                + "; start it (`systemctl start avahi-daemon`), or run the agent with --no-mdns and give peers' "
                + "addresses (`hubsync peers add DEVICE-ID --address HOST:PORT`)")
        }
        defer { avahi_client_free(client) }
        let version = avahi_client_get_version_string(client).map { String(cString: $0) } ?? "avahi"
        return (true, "\(version) on the system bus")
    }
}
