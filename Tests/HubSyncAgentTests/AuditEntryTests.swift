import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore
import HubSyncTestSupport
import Testing

/// The audit journal's checks (protocol/SPEC.md 8.3), one hostile record at a time.
@Suite struct AuditEntryTests {
    let folder = TemporaryDirectory(prefix: "hubsync-audit")

    func entry(_ identity: Identity, sequence: Int64 = 1, previous: String = "", detail: String = "backed up",
               chain: String = "c0ffee") -> AuditEntry {
        AuditEntry(device: identity.deviceID, key: identity.publicKey, deviceName: "laptop", chain: chain, sequence: sequence,
                   previous: previous, time: 1_700_000_000_000, action: .backup, subject: ["target": "local:/mnt/usb"],
                   detail: detail)
    }

    func refusal(_ record: RecordState) -> String? {
        do throws(AuditRefusal) { _ = try AuditEntry(verifying: record); return nil } catch { return error.reason }
    }

    @Test func aSignedEntryChecksOutAndEveryAlterationIsRefused() throws {
        let me = Identity(signingKey: .generate()), other = Identity(signingKey: .generate())
        let e = entry(me)
        let record = e.record(signedWith: me.signingKey, stamp: Timestamp(millis: e.time, counter: 0))
        #expect(try AuditEntry(verifying: record) == e)
        #expect(HouseholdRecords.belongs(record, toGroup: nil))

        // Signed by another key than the one it names.
        let forged = e.record(signedWith: other.signingKey, stamp: Timestamp(millis: e.time, counter: 0))
        #expect(refusal(forged)?.contains("signature") == true)
        #expect(!HouseholdRecords.belongs(forged, toGroup: nil))
        // Naming a device whose key it does not carry.
        var wrongKey = e
        wrongKey.key = other.publicKey
        #expect(refusal(wrongKey.record(signedWith: other.signingKey, stamp: Timestamp(millis: 1, counter: 0)))?.contains("key") == true)
        // Its text changed after signing, by its own device's stamp.
        var changed = record
        let text = try #require(record.visibleFields["entry"]?.stringValue)
        changed.write(field: "entry", value: .string(text.replacingOccurrences(of: "backed up", with: "did nothing")),
                      stamp: Stamp(time: Timestamp(millis: e.time + 1, counter: 0), device: me.deviceID))
        #expect(refusal(changed)?.contains("signature") == true)
        // Another device's write over it, a deletion, an extra field, a second version.
        var overwritten = record
        overwritten.write(field: "signature", value: record.visibleFields["signature"]!,
                          stamp: Stamp(time: Timestamp(millis: e.time + 1, counter: 0), device: other.deviceID))
        #expect(refusal(overwritten)?.contains("another device") == true)
        var deleted = record
        deleted.delete(stamp: Stamp(time: Timestamp(millis: e.time + 1, counter: 0), device: me.deviceID))
        #expect(refusal(deleted) != nil)
        var extra = record
        extra.write(field: "note", value: "x", stamp: Stamp(time: Timestamp(millis: e.time, counter: 0), device: me.deviceID))
        #expect(refusal(extra) != nil)
        // The device's own later rewrite merges into a valid-looking entry: one record cannot tell,
        // which is why a receiver compares with what it holds (the next test).
        let rival = entry(me, detail: "backed up twice").record(signedWith: me.signingKey, stamp: Timestamp(millis: e.time + 5, counter: 0))
        #expect(try AuditEntry(verifying: RecordState.merge(record, rival)).detail == "backed up twice")
        // Under another ID than its own.
        var moved = record
        moved.key = RecordKey(collection: "audit", id: AuditEntry.recordID(device: me.deviceID, chain: "c0ffee", sequence: 2))
        #expect(refusal(moved)?.contains("record ID") == true)
        // A first entry that names a previous one, and a text that is not an entry at all.
        #expect(refusal(entry(me, sequence: 1, previous: String(repeating: "a", count: 64))
            .record(signedWith: me.signingKey, stamp: Timestamp(millis: 1, counter: 0))) != nil)
        var junk = RecordState(key: record.key)
        let stamp = Stamp(time: Timestamp(millis: 1, counter: 0), device: me.deviceID)
        junk.undelete(stamp: stamp)
        junk.write(field: "entry", value: "{\"v\":2}", stamp: stamp)
        junk.write(field: "signature", value: "00", stamp: stamp)
        #expect(refusal(junk) != nil)
    }

    @Test func numbersTimesAndControlCharactersOutOfBoundsAreRefused() throws {
        let me = Identity(signingKey: .generate())
        func signed(_ e: AuditEntry) -> RecordState { e.record(signedWith: me.signingKey, stamp: Timestamp(millis: 1, counter: 0)) }
        let zeros = String(repeating: "0", count: 64)
        // The highest sequence is taken; one more, and 2^63 − 1, are not (their neighbours overflow).
        #expect(refusal(signed(entry(me, sequence: AuditEntry.maxSequence, previous: zeros))) == nil)
        #expect(refusal(signed(entry(me, sequence: AuditEntry.maxSequence + 1, previous: zeros))) != nil)
        #expect(refusal(signed(entry(me, sequence: Int64.max, previous: zeros))) != nil)
        var late = entry(me)
        late.time = AuditEntry.maxTime + 1
        #expect(refusal(signed(late)) != nil)
        for text in ["two\nlines", "\u{1B}[2J", "bell\u{07}", "\u{202E}reversed", "del\u{7F}", "c1\u{85}"] {
            #expect(refusal(signed(entry(me, detail: text)))?.contains("control") == true, "\(text)")
            var named = entry(me)
            named.deviceName = text
            #expect(refusal(signed(named)) != nil, "name \(text)")
            var subject = entry(me)
            subject.subject = ["target": text]
            #expect(refusal(signed(subject)) != nil, "subject \(text)")
        }
        // A device's own journal escapes such text before it signs, so its peers take the entry.
        #expect(AuditEntry.cleaned("a\nb\u{1B}") == "a\\u000ab\\u001b")
        #expect(!AuditEntry.hasControls(AuditEntry.cleaned("x\u{202E}y\u{85}")))
        #expect(AuditEntry.cleaned("plain ünïcode") == "plain ünïcode")
    }

    @Test func aReceiverRefusesStrangersRewritesAndBrokenChains() async throws {
        let me = Identity(signingKey: .generate()), stranger = Identity(signingKey: .generate())
        let household = try Household(directory: DataDirectory(path: folder.path), identity: me)
        _ = try await household.foundIfNeeded(time: 1)
        let store = try Store(path: folder.path + "/store.sqlite", device: me.deviceID)
        let journal = AuditJournal(store: store, identity: me, deviceName: { "laptop" })
        let first = try journal.append(.paired, subject: ["device": "x"], detail: "admitted x")
        let second = try journal.append(.backup, detail: "backed up")
        #expect(second.sequence == 2 && second.previous == first.hash)
        #expect(try AuditJournal.entries(in: store).map(\.sequence) == [1, 2])

        func screen(_ records: [RecordState]) async -> [RecordKey: String] {
            await AuditJournal.refusals(among: records, household: household.current, store: store)
        }
        let stamp = Timestamp(millis: 1_700_000_000_000, counter: 0)
        // A device the household never had.
        let outsider = entry(stranger).record(signedWith: stranger.signingKey, stamp: stamp)
        #expect(await screen([outsider])[outsider.key]?.contains("not a device of this household") == true)
        // This device's entry 2 said otherwise (validly signed, but not what is held).
        let rewritten = AuditEntry(device: me.deviceID, key: me.publicKey, deviceName: "laptop", chain: first.chain, sequence: 2,
                                   previous: first.hash, time: 5, action: .backup, subject: [:], detail: "nothing")
        let rewrittenRecord = rewritten.record(signedWith: me.signingKey, stamp: stamp)
        #expect(await screen([rewrittenRecord])[rewrittenRecord.key]?.contains("alters") == true)
        // Entry 3 that does not follow entry 2, and entry 3 that does.
        let stray = AuditEntry(device: me.deviceID, key: me.publicKey, deviceName: nil, chain: first.chain, sequence: 3,
                               previous: first.hash, time: 6, action: .restore, subject: [:], detail: "restored")
        let strayRecord = stray.record(signedWith: me.signingKey, stamp: stamp)
        #expect(await screen([strayRecord])[strayRecord.key]?.contains("does not follow") == true)
        var good = stray
        good.previous = second.hash
        let goodRecord = good.record(signedWith: me.signingKey, stamp: stamp)
        #expect(await screen([goodRecord]).isEmpty)
        // The same entry again is no alteration.
        let held = try #require(try store.get(RecordKey(collection: "audit", id: second.recordID)))
        #expect(await screen([held]).isEmpty)
        // Other collections pass untouched.
        var memory = RecordState(key: RecordKey(collection: "memories", id: "m"))
        memory.write(field: "text", value: "t", stamp: Stamp(time: stamp, device: stranger.deviceID))
        #expect(await screen([memory, outsider]).keys.sorted() == [outsider.key])
    }
}
