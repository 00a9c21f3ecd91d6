import Foundation
import HubSyncAgent
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import Testing

/// Every device shows every other by the name it gave itself, beside its ID: in status, peers,
/// conflicts and the household, as text and JSON; a rename travels; a name from a hostile device
/// is printed without its escapes and can never pass for another device.
@Suite struct DeviceNameTests {
    let dir = TemporaryDirectory()

    /// The line of `text` that holds `needle`.
    func line(_ text: String, containing needle: String) -> String? {
        text.split(separator: "\n").first { $0.contains(needle) }.map(String.init)
    }

    @Test func twoDevicesPairedByCodeShowEachOthersNames() async throws {
        let laptop = Device(data: dir.path + "/laptop"), desk = Device(data: dir.path + "/desk")
        try await laptop.ok("init", "--name", "laptop")
        try await desk.ok("init", "--name", "desk")
        // A conflict waiting to be found once they sync: both edit one memory apart.
        try await laptop.ok("put", "memories", "m1", "--json", #"{"text": "tea"}"#)
        try await desk.ok("put", "memories", "m1", "--json", #"{"text": "coffee"}"#)
        let a = try await AgentProcess(laptop), b = try await AgentProcess(desk)
        try await join(b, through: a)
        try await waitUntilConnected(a, b, "laptop and desk connected after pairing", timeout: 20)
        try await waitUntil("each device knows the other's name", timeout: 20) {
            let ab = try await a.peerStatus(b.id)?["device_name"], ba = try await b.peerStatus(a.id)?["device_name"]
            return ab == .string("desk") && ba == .string("laptop")
        }
        let aShort = String(a.id.prefix(7)), bShort = String(b.id.prefix(7))

        // status: the other device by short ID and quoted name; this one by its whole ID and name.
        let status = try await laptop.ok("status").stdout
        #expect(line(status, containing: "\(bShort) \"desk\":")?.contains("connected") == true, "\(status)")
        #expect(status.contains("Device \(a.id) \"laptop\" (this device)"), "\(status)")
        #expect(try await laptop.ok("status", "--json").json?.objectValue?["device_name"] == .string("laptop"))

        // peers: the whole ID, then the name; JSON keeps the ID and adds the name.
        let peers = try await desk.ok("peers").stdout
        #expect(peers.contains("\(a.id) \"laptop\""), "\(peers)")
        let peersJSON = try #require(try await desk.ok("peers", "--json").json?.arrayValue?.first?.objectValue)
        #expect(peersJSON["device_id"] == .string(a.id) && peersJSON["device_name"] == .string("laptop"), "\(peersJSON)")

        // household: every member named, on both devices; JSON names by device ID.
        for (agent, device) in [(a, laptop), (b, desk)] {
            let text = try await device.ok("pair", "household").stdout
            #expect(text.contains("\(a.id) \"laptop\"") && text.contains("\(b.id) \"desk\""), "\(text)")
            let names = try await household(agent)["names"]?.objectValue
            #expect(names?[a.id] == .string("laptop") && names?[b.id] == .string("desk"), "\(String(describing: names))")
        }

        // conflicts: each version names its device; JSON adds device_name beside the whole ID.
        try await waitUntil("the conflict on m1 reaches the laptop", timeout: 20) {
            try await laptop.ok("conflicts", "--json").json?.arrayValue?.count == 1
        }
        let conflicts = try await laptop.ok("conflicts").stdout
        #expect(line(conflicts, containing: "\"coffee\"")?.contains("device \(bShort) \"desk\",") == true, "\(conflicts)")
        #expect(line(conflicts, containing: "\"tea\"")?.contains("device \(aShort) \"laptop\" (this device),") == true, "\(conflicts)")
        let versions = try await laptop.ok("conflicts", "--json").json?.arrayValue?.first?.objectValue?["versions"]?.arrayValue ?? []
        let byDevice = Dictionary(versions.compactMap(\.objectValue).map { ($0["device"]?.stringValue ?? "", $0["device_name"]) },
                                  uniquingKeysWith: { x, _ in x })
        #expect(byDevice[a.id] == .string("laptop") && byDevice[b.id] == .string("desk"), "\(versions)")

        // status shows the last repair round (the dialing side runs it after the fast path).
        try await waitUntil("a repair round in the text status", timeout: 20) {
            let both = try await laptop.ok("status").stdout + desk.ok("status").stdout
            return both.contains("last repair round") && both.contains("round trip")
        }

        // A rename on the desk (through its agent) reaches the laptop.
        let renamed = try await desk.ok("name", "study desk").stdout
        #expect(renamed.contains("\"study desk\""), "\(renamed)")
        #expect(try await desk.ok("name").stdout.contains("study desk"))
        try await waitUntil("the laptop shows the desk's new name", timeout: 20) {
            try await a.peerStatus(b.id)?["device_name"] == .string("study desk")
        }
        #expect(try await laptop.ok("status").stdout.contains("\(bShort) \"study desk\":"))
        await a.stop()
        await b.stop()
        // Without an agent, status and peers read the names from the store.
        #expect(try await laptop.ok("status").stdout.contains("\(bShort) \"study desk\""))
        #expect(try await laptop.ok("peers").stdout.contains("\(b.id) \"study desk\""))
    }

    /// Pairing's own lines name the other device: the joiner whom it joined through, the
    /// inviter who joined (each name comes with the first sync, which they wait for briefly).
    @Test func pairingNamesTheDevicesOnBothSides() async throws {
        let laptop = Device(data: dir.path + "/laptop"), desk = Device(data: dir.path + "/desk")
        try await laptop.ok("init", "--name", "laptop")
        try await desk.ok("init", "--name", "study desk")
        let a = try await AgentProcess(desk, extra: ["--no-mdns"]), b = try await AgentProcess(laptop, extra: ["--no-mdns"])
        let invite = try await InviteProcess(desk)
        let joined = try await laptop.ok("pair", "join", invite.code, "--host", a.listen)
        #expect(joined.stdout.contains("Joined the household through \(a.id.prefix(7)) \"study desk\" and connected"), "\(joined.stdout)")
        let outcome = try await invite.finish(timeout: 20)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("Device \(b.id.prefix(7)) \"laptop\" joined the household"), "\(outcome.stdout)")
    }

    /// The agent's log names the other device wherever it speaks of it: once its name is known,
    /// every line with its short ID carries its name too — the session's, a stop, a removal.
    @Test func theLogNamesTheDeviceInEveryLineAboutIt() async throws {
        let laptop = Device(data: dir.path + "/laptop"), desk = Device(data: dir.path + "/desk")
        try await laptop.ok("init", "--name", "laptop")
        try await desk.ok("init", "--name", "desk")
        let a = try await AgentProcess(laptop, extra: ["--no-mdns"]), b = try await AgentProcess(desk, extra: ["--no-mdns"])
        try await join(b, through: a)
        try await waitUntil("the laptop knows the desk's name", timeout: 20) {
            try await a.peerStatus(b.id)?["device_name"] == .string("desk")
        }
        try await desk.ok("put", "memories", "m1", "--json", #"{"text": "from the desk"}"#)
        try await waitUntil("the desk's record reaches the laptop", timeout: 20) { await a.record("memories", "m1") != nil }
        // Once more with the name known from the start: the connection and its repair round name it.
        await b.stop()
        try await waitUntil("the laptop sees the desk gone", timeout: 20) { await !a.isConnected(to: b) }
        let b2 = try await AgentProcess(desk, extra: ["--no-mdns"])
        let bShort = String(b.id.prefix(7))
        try await waitUntil("a repair round with the desk after it came back", timeout: 30) {
            let lines = ((try? String(contentsOfFile: laptop.data + "/agent.log", encoding: .utf8)) ?? "").split(separator: "\n")
            guard let ended = lines.lastIndex(where: { $0.contains("connection ended") && $0.contains("peer.id=\(bShort)") }) else { return false }
            return lines[ended...].contains { $0.contains("repair round done") && $0.contains("peer.id=\(bShort)") }
        }
        await b2.stop()
        try await waitUntil("the laptop sees the desk gone", timeout: 20) { await !a.isConnected(to: b) }
        try await laptop.ok("pair", "remove", b.id)
        try await waitUntil("the laptop logs the removal", timeout: 20) {
            (try? String(contentsOfFile: laptop.data + "/agent.log", encoding: .utf8))?.contains("dropped a device removed") == true
        }
        await a.stop()
        let log = try String(contentsOfFile: laptop.data + "/agent.log", encoding: .utf8).split(separator: "\n").map(String.init)
        let named = try #require(log.firstIndex { $0.contains("peer.name=desk") }, "\(log.suffix(30))")
        let about = log[named...].filter { $0.contains("peer.id=\(bShort)") }
        #expect(about.contains { $0.contains("connection ended") }, "\(about)")
        #expect(about.contains { $0.contains("dropped a device removed") }, "\(about)")
        #expect(about.contains { $0.contains("peer connected") }, "\(about)")
        #expect(about.contains { $0.contains("repair round done") }, "\(about)")
        // The first session after pairing began before the name came: the line that tells it ties the two.
        #expect(log.contains { $0.contains("a device's name is known") && $0.contains("peer.id=\(bShort)") && $0.contains("peer.name=desk") },
                "\(log.suffix(30))")
        for line in about { #expect(line.contains("peer.name=desk"), "\(line)") }
    }

    @Test func aHostileNameIsPrintedSafelyAndCannotPassForAnotherDevice() async throws {
        let mine = Device(data: dir.path + "/mine"), evil = Device(data: dir.path + "/evil")
        try await mine.ok("init", "--name", "laptop")
        try await evil.ok("init", "--name", "placeholder")
        let evilIdentity = try Identity.load(from: URL(fileURLWithPath: evil.data))
        let mineID = try await mine.ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // The hostile device names itself with terminal escapes, a bidirectional override, a line
        // break, another device's ID and a "this device" note, and pads it far past the limit.
        let hostile = "\u{1B}]0;pwned\u{07}\u{1B}[2J\u{1B}[31mevil\u{202E}gnp.exe\r\n\(mineID.prefix(7)) (this device)"
            + String(repeating: "x", count: 500)
        // Written over the record `init` made, as the device itself would (no conflict).
        let nameID = DeviceNames.recordKey(of: evilIdentity.deviceID).id
        let held = try #require(try await evil.ok("export", "-").stdout.split(separator: "\n")
            .compactMap { try? JSON.parse(String($0)).objectValue }.first { $0["id"] == .string(nameID) })
        let existing = try StateJSON.state(key: DeviceNames.recordKey(of: evilIdentity.deviceID), from: held["state"] ?? .null)
        let record = DeviceNames.record(naming: hostile, identity: evilIdentity, updating: existing)
        let line = JSON.serialize(["collection": "devices", "id": .string(record.key.id), "state": StateJSON.object(record),
                                   "digest": .string(Hex.encode(CanonicalEncoding.digest(record)))])
        // It slips the record into its own store (by hand, past `hubsync name`'s checks) and keeps
        // device.json from naming it otherwise.
        let header = #"{"created":"2026-01-01T00:00:00.000Z","device":"\#(evilIdentity.deviceID)","format":"hubsync-export","version":1}"#
        try (header + "\n" + line + "\n").write(toFile: dir.path + "/evil.jsonl", atomically: true, encoding: .utf8)
        try await evil.ok("import", dir.path + "/evil.jsonl")
        try #"{"name": "\u001b[31mred"}"#.write(toFile: evil.data + "/device.json", atomically: true, encoding: .utf8)

        let a = try await AgentProcess(mine), e = try await AgentProcess(evil)
        try await pair(a, e)
        try await waitUntil("the laptop holds the hostile device's name", timeout: 20) {
            try await a.peerStatus(e.id)?["device_name"]?.stringValue != nil
        }
        let name = try #require(try await a.peerStatus(e.id)?["device_name"]?.stringValue)
        #expect(name.count <= DeviceNames.maxCharacters && name.hasSuffix("…"), "\(name)")
        #expect(!name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0 == "\u{202E}" }, "\(name.debugDescription)")
        let eShort = String(e.id.prefix(7))
        for args in [["status"], ["peers"], ["status", "--json"], ["peers", "--json"]] {
            let r = try await hubsync(args + ["--data", mine.data])
            #expect(r.status == 0)
            let text = r.stdout
            #expect(!text.contains("\u{1B}") && !text.contains("\u{07}") && !text.contains("\u{202E}") && !text.contains("\r"),
                    "\(args): \(text.debugDescription)")
            if args.count == 1 {
                // The evil device's own ID comes first, its name after it and quoted, so the ID it
                // copied and the "(this device)" it wrote stay inside the quotes.
                let row = try #require(self.line(text, containing: "pwned"), "\(text)")
                #expect(row.contains(eShort + " \"") || row.contains(e.id + " \""), "\(row)")
                #expect(!row.contains("\"laptop\""), "\(row)")
            }
        }
        // A name that does not verify (another device's key, or a signature over another name) is not shown.
        var forged = DeviceNames.record(naming: "laptop", identity: evilIdentity, updating: nil)
        forged.key = DeviceNames.recordKey(of: try DeviceID(parsing: mineID))
        #expect(DeviceNames.verifiedName(in: forged) == nil)
        var tampered = DeviceNames.record(naming: "desk", identity: evilIdentity, updating: nil)
        tampered.write(field: "name", value: "laptop", stamp: Stamp(time: tampered.updated, device: evilIdentity.deviceID))
        #expect(DeviceNames.verifiedName(in: tampered) == nil)
        // A name record the named device alone wrote is taken; another device's write over it
        // (the same valid fields, its later stamp) or a deletion is refused, so no member can
        // erase another's name (issue 10 review 2: G7).
        let honest = DeviceNames.record(naming: "evil", identity: evilIdentity, updating: nil)
        #expect(DeviceNames.isAuthentic(honest) && DeviceNames.refusals(among: [honest]).isEmpty)
        let other = try DeviceID(parsing: mineID)
        var overwritten = honest
        for (field, value) in honest.visibleFields {
            overwritten.write(field: field, value: value, stamp: Stamp(time: Timestamp(millis: honest.updated.millis + 10, counter: 0), device: other))
        }
        #expect(DeviceNames.verifiedName(in: overwritten) != nil && !DeviceNames.isAuthentic(overwritten))
        #expect(DeviceNames.refusals(among: [overwritten]).keys.contains(honest.key))
        var erased = honest
        erased.delete(stamp: Stamp(time: Timestamp(millis: honest.updated.millis + 10, counter: 0), device: other))
        erased.undelete(stamp: Stamp(time: Timestamp(millis: honest.updated.millis + 11, counter: 0), device: other))
        #expect(!DeviceNames.isAuthentic(erased))
        #expect(!HouseholdRecords.belongs(overwritten, toGroup: nil))
        await a.stop()
        await e.stop()
    }
}
