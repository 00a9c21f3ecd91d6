import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// `hubsync audit`: the household's audit journal, every device's signed entries.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Show the audit journal: who did what, when, on every device of the household.",
        discussion: """
            Each device signs an entry for every pairing, removal, key rotation, backup, restore, repair and \
            conflict resolution it does; entries sync to every member, which checks each against the household \
            and refuses one that is not signed by the device it names or that alters an entry (protocol/SPEC.md 8). \
            Oldest first.
              hubsync audit --since 2026-11-30 --json
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Only entries from this time on: RFC 3339 (2026-11-30T22:41:07Z) or a date (2026-11-30).",
                               valueName: "TIME"))
    var since: String?
    @Option(help: ArgumentHelp("Only entries this device wrote: its ID, or the start of it as entries show it (7 characters or more).",
                               valueName: "ID")) var device: String?

    /// --device as typed: the whole ID, or its start (upper case, without "-").
    var devicePrefix: String? {
        device.map { $0.uppercased().filter { $0 != "-" && !$0.isWhitespace } }
    }

    func validate() throws {
        if let since, AuditTime.parse(since) == nil {
            throw ValidationError("--since takes an RFC 3339 time (2026-11-30T22:41:07Z) or a date (2026-11-30); got \"\(since)\"")
        }
        if let device, (try? DeviceID(parsing: device)) == nil {
            let prefix = devicePrefix ?? ""
            guard prefix.count >= 7, prefix.count < 56, prefix.allSatisfy({ ("A"..."Z").contains($0) || ("2"..."7").contains($0) }) else {
                do { _ = try DeviceID(parsing: device) } catch { throw ValidationError("--device: \(error.message); or give the first 7 characters or more of it") }
                return
            }
        }
    }

    func run() throws {
        let dir = common.directory
        let store = try dir.openStore()
        let me = try dir.identity().deviceID
        let household = try guarded { try HouseholdSnapshot.read(in: dir) }
        var listed = try guarded {
            try AuditJournal.listing(in: store, household: household, me: me, since: since.flatMap(AuditTime.parse),
                                     device: device.flatMap { try? DeviceID(parsing: $0) })
        }
        if let device, (try? DeviceID(parsing: device)) == nil, let prefix = devicePrefix {
            // The start of an ID, as the listing shows it: the entries of the devices it begins.
            let keep = listed.entries.indices.filter { listed.entries[$0].device.description.replacingOccurrences(of: "-", with: "").hasPrefix(prefix) }
            listed = (keep.map { listed.entries[$0] }, keep.map { listed.json[$0] }, listed.hidden)
        }
        if listed.hidden > 0 {
            FileHandle.standardError.write(Data(("hubsync: left out \(plural(listed.hidden, "entry", "entries")) of devices this "
                + "household never had (kept from a household this device was in before)\n").utf8))
        }
        if output.json { return printJSON(.array(listed.json)) }
        if listed.entries.isEmpty { return print("no audit entries" + (since != nil || device != nil ? " match" : " yet")) }
        for (e, j) in zip(listed.entries, listed.json) {
            // The name the device signed, quoted (SPEC 4.10); every text escaped (printable()).
            let who = e.device == me ? "this device" : e.device.short
            let name = j.objectValue?["device_name"]?.stringValue.map { " " + printable(JSON.serialize(.string($0))) } ?? ""
            print("\(rfc3339(millis: e.time))  \(who)\(name)  \(e.action.rawValue): \(printable(e.detail))")
        }
    }
}

/// Records what this command did in the audit journal: through the running agent, else into
/// the store this process holds the writer lock of. While another command holds the lock (a
/// second backup beside the first), waits for it as a write does (``DataDirectory/writer(patience:)``),
/// so that no entry is dropped. A failure is a warning: the act is done.
func recordAudit(_ dir: DataDirectory, store: Store?, _ action: AuditEntry.Action, subject: [String: String], detail: String,
                 metrics: [String: Value] = [:], patience: Duration = .seconds(300)) {
    do {
        let identity = try dir.identity()
        let name = dir.deviceName
        func append(to store: Store) throws {
            try AuditJournal(store: store, identity: identity, deviceName: { name }).append(action, subject: subject, detail: detail)
        }
        if dir.holdsWriterLock, let store { return try append(to: store) }
        switch try dir.writer(patience: patience, purpose: "the \(action.rawValue) is done; to write its audit entry") {
        case .direct(let own):
            try append(to: own)
        case .agent(let agent):
            var body: [String: Value] = ["action": .string(action.rawValue), "detail": .string(detail),
                                         "subject": .object(subject.mapValues { .string($0) })]
            body.merge(metrics) { a, _ in a }
            _ = try agent.call("POST", "/v1/audit", body: .object(body))
        }
    } catch {
        FileHandle.standardError.write(Data("hubsync: warning: the audit entry for this \(action.rawValue) was not written: \(error)\n".utf8))
    }
}
