import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore
import Testing

/// The audit journal (protocol/SPEC.md 8) between real agents: entries written on one device
/// arrive on the others, and entries another member forged or altered are refused.
@Suite(.timeLimit(.minutes(10))) struct AuditJournalTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    /// Entries of `device` as `hubsync audit --json` lists them.
    func audit(_ device: Device, _ extra: String...) async throws -> [[String: Value]] {
        let r = try await hubsync(["audit", "--json", "--data", device.data] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return (r.json?.arrayValue ?? []).compactMap(\.objectValue)
    }

    @Test func aSecondDeviceListsAPairingAndABackupDoneOnTheFirst() async throws {
        try await device("a").ok("init", "--name", "home-server")
        try await device("b").ok("init", "--name", "laptop")
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        try await join(b, through: a)
        let repo = "local:" + dir.path + "/repo"
        let backup = try await a.device.ok("backup", "now", "--repo", repo, "--json").json?.objectValue
        let snapshot = try #require(backup?["id"]?.stringValue)

        // On B, by sync: A's pairing of B and A's backup, signed by A, with A's name.
        var entries: [[String: Value]] = []
        try await waitUntil("A's pairing and backup listed on B", timeout: 30) {
            entries = try await audit(b.device)
            return entries.contains { $0["action"] == "backup" && $0["device_id"] == .string(a.id) }
        }
        let paired = entries.first { $0["action"] == "pairing" && $0["device_id"] == .string(a.id) }
        #expect(paired?["subject"]?.objectValue?["device"] == .string(b.id), "\(entries)")
        #expect(paired?["device_name"] == "home-server")
        let backedUp = entries.first { $0["action"] == "backup" && $0["device_id"] == .string(a.id) }
        #expect(backedUp?["subject"]?.objectValue?["snapshot"] == .string(snapshot))
        #expect(backedUp?["subject"]?.objectValue?["target"] == .string(repo))
        // B's own side of the pairing is in the journal too, and A's entries form one chain.
        #expect(entries.contains { $0["action"] == "pairing" && $0["device_id"] == .string(b.id) })
        let fromA = entries.filter { $0["device_id"] == .string(a.id) }.compactMap { e -> Int64? in
            if case .int(let n)? = e["sequence"] { return n }
            return nil
        }
        #expect(fromA == Array(1...Int64(fromA.count)), "\(fromA)")

        // The same through the API, and the filters narrow it.
        let viaAPI = try await b.api("GET", "/v1/audit?device=\(a.id)").arrayValue ?? []
        #expect(viaAPI.count == fromA.count)
        #expect(try await audit(b.device, "--device", b.id).allSatisfy { $0["device_id"] == .string(b.id) })
        // The start of an ID, as the listing shows it, narrows it the same way.
        let short = String(a.id.prefix(7)).lowercased()
        let byShort = try await audit(b.device, "--device", short)
        #expect(byShort.count == fromA.count && byShort.allSatisfy { $0["device_id"] == .string(a.id) }, "\(byShort)")
        #expect(try await audit(b.device, "--since", "2999-01-01").isEmpty)
        let text = try await b.device.ok("audit").stdout
        #expect(text.contains("home-server") && text.contains("backup"), "\(text)")
        // Bad input: exit status 2 and a message that says what to give.
        let bad = try await b.device.run("audit", "--since", "yesterday")
        #expect(bad.status == 2 && bad.stderr.contains("RFC 3339"), "\(bad.stderr)")
        #expect(try await b.request("GET", "/v1/audit?since=soon").status == 400)
        #expect(try await b.request("GET", "/v1/audit?since=2026-02-30").status == 400, "a day that does not exist")
        #expect(try await b.device.run("audit", "--since", "2026-02-30T10:00:00Z").status == 2)
        #expect(try await b.request("POST", "/v1/audit", body: ["action": "coffee", "detail": "x"]).status == 400)
        let dated = try await b.request("POST", "/v1/audit", body: ["action": "backup", "detail": "x", "time": "2001-01-01T00:00:00Z"])
        #expect(dated.status == 400 && dated.body.objectValue?["error"]?.stringValue?.contains("\"time\"") == true, "\(dated.body)")
        #expect(try await b.request("POST", "/v1/audit", body: ["action": "backup", "detail": "x", "subject": "x"]).status == 400)
        #expect(try await b.request("POST", "/v1/audit", body: ["action": "backup", "detail": "x", "seconds": -5]).status == 400)
    }

    /// Static peers of two households (`peers add` on each, as in the README's "Two devices,
    /// live"): neither takes the other's entries (SPEC 8.3, point 4), so the journal is held back
    /// both ways. Nothing is sent, refused or shown as not merged, and each repair round finds
    /// the two equal in one round trip; before, every round sent the entry again.
    @Test func theJournalIsHeldBackFromAStaticPeerOfAnotherHousehold() async throws {
        let a = try await AgentProcess(device("sa")), b = try await AgentProcess(device("sb"))
        try await pair(a, b)
        // An entry A writes while connected (its log would push it), then a record after it.
        try await a.api("POST", "/v1/audit", ["action": "backup", "detail": "a backup by hand"])
        try await a.api("PATCH", "/v1/records/memories/after", ["text": "after the entry"])
        try await waitUntil("the record after the entry on B", timeout: 20) { await b.record("memories", "after") != nil }
        #expect(try await audit(a.device).contains { $0["detail"] == "a backup by hand" })
        for (agent, other) in [(a, b), (b, a), (a, b)] {
            let answer = try await agent.api("POST", "/v1/sync", ["wait_seconds": 60]).objectValue
            let peer = answer?["peers"]?.arrayValue?.first?.objectValue
            #expect(peer?["device_id"] == .string(other.id), "\(String(describing: answer))")
            let round = peer?["round"]?.objectValue
            #expect(round?["records_sent"] == .int(0) && round?["records_received"] == .int(0), "\(String(describing: answer))")
            #expect(round?["round_trips"] == .int(1), "\(String(describing: answer))")
        }
        for (agent, other) in [(a, b), (b, a)] {
            #expect(try await metric(agent, "hubsync_errors_total{kind=\"audit_refused\"}") ?? 0 == 0)
            #expect(try await agent.peerStatus(other.id)?["undelivered"] == .array([]))
        }
        await a.stop()
        await b.stop()
    }

    /// A device that leaves its household for another keeps the old one's entries, which the new
    /// one does not take (SPEC 8.3, point 4): they are held back from its new members, so no
    /// round sends them and no member shows them as not merged. Its own entries still go.
    @Test func entriesOfADeviceTheHouseholdNeverHadAreHeldBack() async throws {
        for name in ["e", "f", "g"] { try await device(name).ok("init", "--name", name) }
        let e = try await AgentProcess(device("e")), f = try await AgentProcess(device("f"))
        try await join(f, through: e)
        try await f.api("POST", "/v1/audit", ["action": "backup", "detail": "f's backup"])
        try await waitUntil("f's entry on e", timeout: 30) { try await e.device.ok("export", "-").stdout.contains("f's backup") }
        await f.stop()
        try await e.device.ok("pair", "remove", f.id)
        let g = try await AgentProcess(device("g"))
        try await join(e, through: g)
        try await e.api("POST", "/v1/audit", ["action": "backup", "detail": "e's backup after the move"])
        try await waitUntil("e's entry on g", timeout: 30) { try await audit(g.device).contains { $0["detail"] == "e's backup after the move" } }
        func round(_ agent: AgentProcess, with other: AgentProcess) async throws -> [String: Value]? {
            let answer = try await agent.api("POST", "/v1/sync", ["wait_seconds": 60]).objectValue
            let peer = answer?["peers"]?.arrayValue?.compactMap(\.objectValue).first { $0["device_id"] == .string(other.id) }
            return peer?["round"]?.objectValue
        }
        _ = try await round(e, with: g) // whatever the join's records still left to bring
        for (agent, other) in [(e, g), (g, e), (e, g)] {
            let r = try await round(agent, with: other)
            #expect(r?["records_sent"] == .int(0) && r?["records_received"] == .int(0), "\(String(describing: r))")
        }
        #expect(try await metric(g, "hubsync_errors_total{kind=\"audit_refused\"}") ?? 0 == 0)
        #expect(try await g.peerStatus(e.id)?["undelivered"] == .array([]))
        #expect(try await !g.device.ok("export", "-").stdout.contains("f's backup"))
        await e.stop()
        await g.stop()
    }

    /// A static peer that joins the household refuses the entries it gets just before it takes
    /// the household on; a later round merges them, and `status` stops listing them after the
    /// next round (before, they stayed listed until the agent restarted).
    @Test func aRefusalThatALaterRoundMergesLeavesStatus() async throws {
        for name in ["r1", "r2"] { try await device(name).ok("init", "--name", name) }
        let r1 = try await AgentProcess(device("r1")), r2 = try await AgentProcess(device("r2"))
        try await pair(r1, r2)
        try await join(r2, through: r1)
        try await waitUntil("r1's entries on r2", timeout: 60) {
            _ = try await r1.api("POST", "/v1/sync", ["wait_seconds": 60])
            return try await audit(r2.device).contains { $0["device_id"] == .string(r1.id) }
        }
        for _ in 0..<2 {
            for agent in [r1, r2] { _ = try await agent.api("POST", "/v1/sync", ["wait_seconds": 60]) }
        }
        #expect(try await r2.peerStatus(r1.id)?["undelivered"] == .array([]))
        #expect(try await r1.peerStatus(r2.id)?["undelivered"] == .array([]))
        await r1.stop()
        await r2.stop()
    }

    @Test func entriesForgedOrAlteredByAnotherMemberAreRefused() async throws {
        try await device("a").ok("init", "--name", "a")
        try await device("b").ok("init", "--name", "b")
        let a = try await AgentProcess(device("a"))
        var b = try await AgentProcess(device("b"))
        try await join(b, through: a)
        // A's own entry (its side of the pairing) reaches B.
        let original = try #require(try await waitForEntry(on: b, from: a.id))
        await b.stop()

        // B, stopped, gets entries planted in its store, as a member that turned hostile would.
        let bIdentity = try Identity.load(from: URL(fileURLWithPath: b.device.data))
        let store = try Store(path: b.device.data + "/store.sqlite", device: bIdentity.deviceID)
        let aID = try DeviceID(parsing: a.id)
        let originalID = try #require(original["id"]?.stringValue)
        let originalState = try #require(try store.get(RecordKey(collection: "audit", id: originalID)))
        let now = Store.systemClock()
        var planted: [RecordState] = []
        // 1. An entry naming A and A's key, signed by B.
        let entryText = try #require(originalState.visibleFields["entry"]?.stringValue)
        let aKeyHex = try #require(try JSON.parse(entryText).objectValue?["key"]?.stringValue)
        let aKey = try PublicSigningKey(rawRepresentation: try #require(Hex.decode(aKeyHex)))
        let claimsA = AuditEntry(device: aID, key: aKey, deviceName: "a", chain: "f0f0", sequence: 1, previous: "",
                                 time: now, action: .removed, subject: ["device": a.id], detail: "removed a")
        planted.append(claimsA.record(signedWith: bIdentity.signingKey, stamp: Timestamp(millis: now, counter: 0)))
        // 2. A's real entry with its detail changed by B (B's write over it).
        var altered = originalState
        altered.write(field: "entry", value: .string(entryText.replacingOccurrences(of: "admitted", with: "refused")), stamp: Stamp(time: Timestamp(millis: now, counter: 1), device: bIdentity.deviceID))
        planted.append(altered)
        // 3. B's own entry, validly signed, under the ID of an entry B already wrote but saying
        //    something else (an existing entry rewritten).
        let ownID = try #require(try await waitForEntry(on: a, from: b.id)?["id"]?.stringValue)
        let parts = ownID.split(separator: "/")
        let rewritten = AuditEntry(device: bIdentity.deviceID, key: bIdentity.publicKey, deviceName: "b", chain: String(parts[1]),
                                   sequence: Int64(parts[2])!, previous: "", time: now, action: .backup, subject: [:],
                                   detail: "nothing happened here")
        planted.append(rewritten.record(signedWith: bIdentity.signingKey, stamp: Timestamp(millis: now, counter: 2)))
        // 4. A valid new entry of B's, which must still arrive.
        let honest = AuditEntry(device: bIdentity.deviceID, key: bIdentity.publicKey, deviceName: "b", chain: "beef", sequence: 1,
                                previous: "", time: now, action: .restore, subject: [:], detail: "an honest entry")
        planted.append(honest.record(signedWith: bIdentity.signingKey, stamp: Timestamp(millis: now, counter: 3)))
        // 5. B's own entry, validly signed, numbered 2^63 − 1: its neighbours' numbers overflow
        //    (this stopped every receiver once).
        let huge = AuditEntry(device: bIdentity.deviceID, key: bIdentity.publicKey, deviceName: "b", chain: "huge",
                              sequence: Int64.max, previous: String(repeating: "0", count: 64), time: now, action: .backup,
                              subject: [:], detail: "huge sequence")
        planted.append(huge.record(signedWith: bIdentity.signingKey, stamp: Timestamp(millis: now, counter: 4)))
        // 6. B's own entry whose detail fakes a second journal line in another device's name, with
        //    terminal escapes.
        let faked = AuditEntry(device: bIdentity.deviceID, key: bIdentity.publicKey, deviceName: "b", chain: "fake",
                               sequence: 1, previous: "", time: now, action: .removed, subject: [:],
                               detail: "ok\n2026-12-01T04:40:00.000Z  this device \"a\"  removal: \u{1B}[31mremoved\u{1B}[0m \u{202E}b")
        planted.append(faked.record(signedWith: bIdentity.signingKey, stamp: Timestamp(millis: now, counter: 5)))
        for state in planted { _ = try await store.apply([.merge(state)]) }

        b = try await AgentProcess(device("b"))
        try await waitUntil("the honest entry on A", timeout: 30) {
            try await audit(a.device).contains { $0["id"] == .string(honest.recordID) }
        }
        try await waitUntil("A counted five refused entries", timeout: 30) {
            (try await metric(a, "hubsync_errors_total{kind=\"audit_refused\"}") ?? 0) >= 5
        }
        let onA = try await audit(a.device)
        #expect(!onA.contains { $0["id"] == .string(claimsA.recordID) })
        #expect(!onA.contains { $0["id"] == .string(huge.recordID) || $0["id"] == .string(faked.recordID) })
        #expect(try await a.status()["peers"] != nil, "A is still up")
        #expect(onA.first { $0["id"] == original["id"] }?["detail"] == original["detail"])
        #expect(onA.first { $0["id"] == .string(ownID) }?["detail"] != "nothing happened here")
        // Nothing of the refused ones is stored on A: its export does not hold them.
        let export = try await a.device.ok("export", "-").stdout
        #expect(!export.contains(claimsA.recordID) && !export.contains("nothing happened here")
            && !export.contains("refused \(b.id.prefix(7))"))
        let log = (try? String(contentsOfFile: a.device.data + "/agent.log", encoding: .utf8)) ?? ""
        #expect(log.contains("refused an audit entry"), "\(log.suffix(2000))")

        // An export of a device the household never had, imported through A's API: its entries
        // are left out (an app holding the token cannot write the journal in a stranger's name).
        let stranger = device("x")
        try await stranger.ok("init", "--name", "x")
        try await stranger.ok("repair", "--force")
        let strangerID = try Identity.load(from: URL(fileURLWithPath: stranger.data)).deviceID.description
        let file = dir.path + "/x.jsonl"
        try await stranger.ok("export", file)
        #expect(try String(contentsOfFile: file, encoding: .utf8).contains("\"audit\""))
        try await a.device.ok("import", file)
        #expect(!(try await audit(a.device)).contains { $0["device_id"] == .string(strangerID) })

        // Once B is removed, an entry B (its key kept by a thief) dates after the removal is
        // refused; one dated before it is still B's journal (review 3, N2).
        try await a.device.ok("pair", "remove", b.id)
        let snapshot = try HouseholdSnapshot.read(in: DataDirectory(path: a.device.data))
        let writers = try #require(HouseholdRecords.auditWriters(snapshot, me: aID))
        let removedAt = try #require(writers.removedAt[bIdentity.deviceID])
        var late = honest
        late.time = removedAt + 60_000
        #expect(writers.refusal(of: late)?.contains("removed") == true)
        late.time = removedAt - 60_000
        #expect(writers.refusal(of: late) == nil)
        #expect(writers.refusal(of: claimsA) == nil, "a member's entries are taken")
    }

    /// Names in the journal are the ones devices signed, and every text is printed escaped.
    @Test func theJournalShowsVerifiedNamesAndEscapesWhatItPrints() async throws {
        try await device("n").ok("init", "--name", "n")
        let n = try await AgentProcess(device("n"))
        let posted = try await n.request("POST", "/v1/audit", body: [
            "action": "backup", "detail": "line one\nfake line \u{1B}[2J", "subject": ["target": "t\u{1B}]0;title\u{07}"],
        ])
        #expect(posted.status == 201)
        let entry = try #require(try await audit(n.device).first { $0["action"] == "backup" })
        #expect(entry["detail"]?.stringValue?.contains("\u{1B}") == false && entry["detail"]?.stringValue?.contains("\n") == false,
                "\(entry)")
        #expect(entry["device_name"] == "n")
        let text = try await n.device.ok("audit").stdout
        #expect(!text.contains("\u{1B}") && text.contains("this device \"n\""), "\(text)")
    }

    /// Waits for an entry written by `author` on `agent`, and returns it.
    func waitForEntry(on agent: AgentProcess, from author: String) async throws -> [String: Value]? {
        var found: [String: Value]?
        try await waitUntil("an entry of \(author) on \(agent.id)", timeout: 30) {
            found = try await audit(agent.device).first { $0["device_id"] == .string(author) }
            return found != nil
        }
        return found
    }
}

/// One sample's value from an agent's `/metrics` (the line `NAME{LABELS} VALUE`), nil when absent.
func metric(_ agent: AgentProcess, _ series: String) async throws -> Double? {
    let (status, text) = try await agent.client.text("/metrics")
    guard status == 200 else { throw CommandFailed(description: "GET /metrics: HTTP \(status) \(text)") }
    return metricValue(text, series)
}

func metricValue(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1).trimmingCharacters(in: .whitespaces))
    }
    return nil
}
