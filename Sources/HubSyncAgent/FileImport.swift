public import HubSyncCore
public import HubSyncCrypto
public import HubSyncMigration
public import HubSyncStore

/// Imports one file (HubSync's own JSON Lines, a character card, a chat export, Markdown) in
/// two passes, for `hubsync import` and `POST /v1/import` alike: ``check(store:progress:)``
/// reads the whole file, validates every record and says what would be created, updated,
/// removed or left alone, writing nothing; ``apply(batch:write:progress:)`` reads it again and
/// writes in batches. A file that fails the check has nothing imported.
public struct FileImport: Sendable {
    public var path: String
    /// The name the person gave, for messages.
    public var displayName: String
    public var format: Migration.Format
    public var persona: String?
    /// The household's group ID: `devices` records of a HubSync file that do not belong to it
    /// are left out (``HouseholdRecords/belongs(_:toGroup:)``).
    public var group: [UInt8]?
    /// Whose audit entries the household takes (``AuditWriters``): others' are left out.
    public var devices: AuditWriters?

    public init(path: String, displayName: String, format: Migration.Format, persona: String?, group: [UInt8]? = nil) {
        self.path = path
        self.displayName = displayName
        self.format = format
        self.persona = persona
        self.group = group
    }

    /// What a file holds and what importing it would do.
    public struct Plan: Sendable {
        public var format: Migration.Format
        public var created = 0, updated = 0, unchanged = 0
        /// Lorebook memories and avatar parts of a re-imported card that the card no longer gives.
        public var removed = 0
        /// By collection: how many records the file gives.
        public var collections: [String: Int] = [:]
        public var notes: [ImportNote] = []
        public var records: Int { created + updated + unchanged }

        /// The plan as JSON members, for `--json` and `POST /v1/import`.
        public var object: [String: Value] {
            [
                "format": .string(format.rawValue), "records": .int(Int64(records)), "create": .int(Int64(created)),
                "update": .int(Int64(updated)), "unchanged": .int(Int64(unchanged)), "remove": .int(Int64(removed)),
                "collections": .object(collections.mapValues { .int(Int64($0)) }),
                "skipped": .array(notes.prefix(1000).map { .object(["place": .string($0.place), "reason": .string($0.reason)]) }),
                "skipped_count": .int(Int64(notes.count)),
            ]
        }
    }

    /// What ``apply(batch:write:progress:)`` did.
    public struct Outcome: Sendable {
        /// Local puts that changed a record, merges that did, removals of lorebook memories.
        public var written = 0, merged = 0, removed = 0
        public var unchanged = 0
        public var changed: Int { written + merged + removed }
    }

    /// A record the file gives that the store would refuse, named by file and place (its line,
    /// in a file of JSON Lines).
    struct Refused: Error {
        var message: String
        var line: Int? = nil
    }

    /// Reads and checks the whole file against `store` (read only); `progress` gets the bytes
    /// read so far (records, for a HubSync file).
    public func check(store: Store, progress: (Int) -> Void = { _ in }) throws -> Plan {
        var sink = CheckSink(plan: Plan(format: format), store: store)
        do {
            // The records are checked against the store a window at a time (one read each);
            // an error found on reading a later record waits for the window's own, so the
            // first bad record in the file is the one named.
            do {
                if format == .hubsync {
                    try readOwnInParallel { line, write in try sink.own(write, line: line, group: group, devices: devices, store: store) }
                } else {
                    try Migration.read(path: path, displayName: displayName, format: format, persona: persona, into: &sink, progress: progress)
                }
            } catch let e as MigrationError {
                try sink.drain()
                throw e
            }
            try sink.drain()
            if !sink.repeated.isEmpty {
                let unchanged = try checkRepeated(sink.repeated, store: store)
                sink.plan.updated -= unchanged
                sink.plan.unchanged += unchanged
            }
            if format != .hubsync { sink.plan.removed = try staleLinked(sink.cards, store: store).count }
        } catch let r as Refused {
            throw MigrationError(file: displayName, line: r.line, r.message)
        }
        return sink.plan
    }

    /// Reads the file again for the records it gives more than once (`keys`), and measures each
    /// put on one of them against the record as the lines before it left it: three puts of
    /// 300 KiB texts into three fields of one record pass one by one, together they do not.
    /// Only those records are held in memory. Answers how many writes after a record's first
    /// change nothing (the same fields again), which the import finds up to date.
    func checkRepeated(_ keys: Set<RecordKey>, store: Store) throws -> Int {
        var sink = RepeatSink(keys: keys, store: store)
        if format == .hubsync {
            try readOwn { line, write in
                switch write {
                case .local(.put(let key, let patch)) where keys.contains(key): try sink.put(key, patch, line: line)
                case .merge(let state) where keys.contains(state.key): try sink.merge(state)
                default: break
                }
            }
        } else {
            try Migration.read(path: path, displayName: displayName, format: format, persona: persona, into: &sink)
        }
        return sink.unchangedRepeats
    }

    /// Reads the file again and writes its records through `write`, `batch` at a time; `write`
    /// answers, per write, whether it changed the store. `progress` gets the writes committed.
    public func apply(batch: Int, store: Store, write: @escaping ([RecordWrite]) throws -> [Bool],
                      progress: @escaping (Int) -> Void) throws -> Outcome {
        var sink = ApplySink(batch: batch, write: write, progress: progress)
        if format == .hubsync {
            try readOwn { _, w in
                if case .merge(let state) = w, !HouseholdRecords.belongs(state, toGroup: group, writers: devices) { return }
                try sink.add(w)
            }
        } else {
            try Migration.read(path: path, displayName: displayName, format: format, persona: persona, into: &sink)
            for key in try staleLinked(sink.cards, store: store) { try sink.add(.local(.delete(key))) }
        }
        try sink.flush()
        return sink.outcome
    }

    /// The write a record becomes: a local put of its fields.
    public static func write(_ r: ImportedRecord) -> RecordWrite {
        .local(.put(RecordKey(collection: r.collection, id: r.id), r.fields))
    }

    /// A reading of this device's clock later than every write `state` holds, as the store's
    /// next would be: what the check stamps the puts it follows with.
    static func nextStamp(after state: RecordState, device: DeviceID) -> Stamp {
        Stamp(time: Timestamp(millis: max(state.updated.millis + 1, Store.systemClock()), counter: 0), device: device)
    }

    /// `state` as a put of `patch` leaves it, for measuring (sets take the elements added);
    /// refused when that is over the store's size limit and larger than `state` is.
    static func put(_ patch: [String: Value], on state: RecordState, collection: HubCollection, device: DeviceID, line: Int?) throws -> RecordState {
        var after = state
        let stamp = nextStamp(after: after, device: device)
        for (name, value) in patch {
            if collection.isSetField(name) { _ = after.insert(value.arrayValue ?? [], into: name, stamp: stamp) } else {
                after.write(field: name, value: value, stamp: stamp)
            }
        }
        let size = CanonicalEncoding.size(after)
        if size > Store.maxRecordBytes, size > CanonicalEncoding.size(state) {
            throw Refused(message: "\(after.key) would be \(size) bytes as stored, over the \(Store.maxRecordBytes / 1024) KiB "
                + "(\(Store.maxRecordBytes) bytes) one record may hold; shorten that text (or split it) in the file and import it again",
                line: line)
        }
        return after
    }

    /// An upper bound of the canonical size of the new record a put of `patch` makes (each field one
    /// version and one context entry of 40 bytes, each set element its length): a record under
    /// half the limit by this bound needs no exact measure.
    public static func newRecordBound(_ key: RecordKey, _ patch: [String: Value], collection: HubCollection) -> Int {
        var n = 64 + key.collection.utf8.count + key.id.utf8.count
        for (name, value) in patch {
            if collection.isSetField(name), case .array(let elements) = value {
                n += 8 + name.utf8.count + elements.reduce(0) { $0 + CanonicalEncoding.size($1) + 8 }
            } else {
                n += 100 + name.utf8.count + CanonicalEncoding.size(value)
            }
        }
        return n
    }

    /// Whether putting `patch` on `state` would change nothing: every field already has that
    /// value (and no conflict), every set those elements.
    static func unchanged(_ state: RecordState, by patch: [String: Value], collection: HubCollection) -> Bool {
        guard state.isAlive else { return false }
        for (name, value) in patch {
            if collection.isSetField(name) {
                let current = Set(state.sets[name]?.elements ?? [])
                guard current == Set(value.arrayValue ?? []) else { return false }
            } else if let reg = state.fields[name] {
                guard !reg.hasConflict, reg.value == value else { return false }
            } else if !value.isNull {
                return false
            }
        }
        return true
    }

    // MARK: Records linked to a card's persona

    /// The lorebook memories of `personaID` the store holds, alive, in ID order.
    public static func lorebookMemories(of personaID: String, in store: Store) throws -> [RecordState] {
        try linkedRecords(HubCollection.memories.rawValue, prefix: CardMapping.lorebookPrefix(personaID: personaID),
                          persona: personaID, source: CardMapping.lorebookSource, in: store)
    }

    /// The avatar parts of `personaID` the store holds, alive, in ID order.
    public static func avatarParts(of personaID: String, in store: Store) throws -> [RecordState] {
        try linkedRecords(HubCollection.preferences.rawValue, prefix: CardMapping.avatarPartPrefix(personaID: personaID),
                          persona: personaID, source: CardMapping.avatarSource, in: store)
    }

    /// The live records of `collection` whose IDs start with `prefix` and that name `persona`
    /// and `source` in their fields.
    static func linkedRecords(_ collection: String, prefix: String, persona: String, source: String, in store: Store) throws -> [RecordState] {
        let end = Array(prefix.utf8)
        var out: [RecordState] = []
        var after = String(prefix.dropLast())
        while true {
            let page = try store.read(.records(in: collection, after: after, limit: 500))
            for state in page {
                if state.key.id.hasPrefix(prefix) {
                    let f = state.visibleFields
                    if f["persona"]?.stringValue == persona, f["source"]?.stringValue == source { out.append(state) }
                } else if !Array(state.key.id.utf8).lexicographicallyPrecedes(end) {
                    return out
                }
            }
            guard page.count == 500, let last = page.last else { return out }
            after = last.key.id
        }
    }

    /// What a card import wrote for each persona: the IDs of its lorebook memories and avatar
    /// parts, and whether the card had a picture.
    struct CardWrites: Sendable {
        var written = Set<String>()
        var hasAvatar = false
    }

    /// The lorebook memories and avatar parts of the personas a card import wrote that the card
    /// no longer gives (parts only when the card has a picture: a JSON card leaves them).
    func staleLinked(_ cards: [String: CardWrites], store: Store) throws -> [RecordKey] {
        var stale: [RecordKey] = []
        for (persona, writes) in cards.sorted(by: { $0.key < $1.key }) {
            var linked = try Self.lorebookMemories(of: persona, in: store)
            if writes.hasAvatar { linked += try Self.avatarParts(of: persona, in: store) }
            stale += linked.map(\.key).filter { !writes.written.contains($0.id) }
        }
        return stale
    }

    /// Notes the personas of cards and the records written for each.
    static func track(_ r: ImportedRecord, in cards: inout [String: CardWrites]) {
        if r.collection == "personas", r.fields["source"]?.stringValue == "character-card" {
            let hasAvatar = r.fields["avatar_png"].map { !$0.isNull } == true || r.fields["avatar_parts"].map { !$0.isNull } == true
            cards[r.id, default: CardWrites()].hasAvatar = hasAvatar
        } else if let source = r.fields["source"]?.stringValue, source == CardMapping.lorebookSource || source == CardMapping.avatarSource,
                  let persona = r.fields["persona"]?.stringValue {
            cards[persona, default: CardWrites()].written.insert(r.id)
        }
    }

    // MARK: Sinks

    struct CheckSink: ImportSink {
        var plan: Plan
        let store: Store
        var cards: [String: CardWrites] = [:]
        /// Keys the file gave earlier, by their 64-bit hash (8 bytes a record, not the key: a
        /// million records hold 16 MB, not 60). Two keys of one file sharing a hash (about one
        /// chance in 30 million at a million records) only count the second as an update in the plan
        /// and have its puts measured with the first's.
        var seen = Set<Int>()
        /// Keys the file gives more than once: ``FileImport/checkRepeated(_:store:)`` measures
        /// their puts together.
        var repeated = Set<RecordKey>()
        /// Records read but not yet checked against the store: ``drain()`` reads a window's
        /// stored states at once (one read transaction, not one per record).
        var window: [Step] = []
        static let windowSize = 512

        /// A record waiting for its stored state: a put of fields, or an exported state to merge;
        /// `line` is its line in a file of JSON Lines.
        enum Step {
            case put(RecordKey, [String: Value], HubCollection, line: Int?)
            case merge(RecordState, line: Int)

            var key: RecordKey {
                switch self {
                case .put(let key, _, _, _): key
                case .merge(let state, _): state.key
                }
            }
        }

        init(plan: Plan, store: Store) {
            self.plan = plan
            self.store = store
        }

        mutating func record(_ r: ImportedRecord) throws {
            let key = RecordKey(collection: r.collection, id: r.id)
            let collection: HubCollection
            do {
                collection = try HubCollection.named(r.collection)
                try HubCollection.validate(id: r.id)
                try collection.validate(patch: r.fields)
            } catch {
                try drain()
                throw Refused(message: "\(key): \(error.message)")
            }
            try enqueue(.put(key, r.fields, collection, line: nil))
            FileImport.track(r, in: &cards)
        }

        mutating func enqueue(_ step: Step) throws {
            window.append(step)
            if window.count >= Self.windowSize { try drain() }
        }

        /// Checks the records of the window against their stored states, in file order.
        mutating func drain() throws {
            guard !window.isEmpty else { return }
            let stored = try store.read(.records(window.map(\.key)))
            for (step, existing) in zip(window, stored) {
                switch step {
                case .put(let key, let patch, let collection, let line): try put(key, patch, collection: collection, existing: existing, line: line)
                case .merge(let state, let line): merge(state, existing: existing, line: line)
                }
            }
            window.removeAll(keepingCapacity: true)
        }

        /// Counts a put of `patch` on `key`; a new record must have the required fields, and
        /// the record must stay within the store's size limit (``Store/maxRecordBytes``).
        mutating func put(_ key: RecordKey, _ patch: [String: Value], collection: HubCollection, existing: RecordState?, line: Int?) throws {
            // The record as the put would leave it, measured as the store measures it (a new
            // record far under the limit by a quick upper bound is not built).
            if existing != nil || FileImport.newRecordBound(key, patch, collection: collection) > Store.maxRecordBytes / 2 {
                _ = try FileImport.put(patch, on: existing ?? RecordState(key: key), collection: collection, device: store.device, line: line)
            }
            if !seen.insert(key.hashValue).inserted {
                plan.updated += 1
                repeated.insert(key)
            } else if let existing, existing.isAlive {
                if FileImport.unchanged(existing, by: patch, collection: collection) { plan.unchanged += 1 } else { plan.updated += 1 }
            } else {
                // A deleted record comes back with the fields it kept, as a put brings it back.
                if let missing = collection.requiredFields.first(where: { patch[$0.name] == nil && existing?.visibleFields[$0.name] == nil }) {
                    throw Refused(message: "new record \(key) needs the field \"\(missing.name)\"", line: line)
                }
                plan.created += 1
            }
            plan.collections[key.collection, default: 0] += 1
        }

        /// Counts a merge of an exported state.
        mutating func merge(_ state: RecordState, existing: RecordState?, line: Int) {
            if !seen.insert(state.key.hashValue).inserted {
                plan.updated += 1
                repeated.insert(state.key)
            } else if let existing {
                if RecordState.merge(existing, state) == existing { plan.unchanged += 1 } else { plan.updated += 1 }
            } else {
                plan.created += 1
            }
            plan.collections[state.key.collection, default: 0] += 1
        }

        /// Counts one write of a HubSync file, on line `line`.
        mutating func own(_ write: RecordWrite, line: Int, group: [UInt8]?, devices: AuditWriters?, store: Store) throws {
            switch write {
            case .local(.put(let key, let patch)):
                try enqueue(.put(key, patch, try HubCollection.named(key.collection), line: line))
            case .local(let op):
                try drain()
                throw Refused(message: "\(op.key): only puts and exported states can be imported", line: line)
            case .merge(let state) where state.key.collection == AuditEntry.collection
                    && !HouseholdRecords.belongs(state, toGroup: group, writers: devices):
                plan.notes.append(ImportNote(place: "line \(line)", reason: "\(state.key) is not an audit entry signed by a device "
                    + "of this household (left out)"))
            case .merge(let state) where !HouseholdRecords.belongs(state, toGroup: group):
                plan.notes.append(ImportNote(place: "line \(line)", reason: "\(state.key) is a membership record of another household "
                    + "(devices records travel only within their own household)"))
            case .merge(let state):
                if let skew = store.clockSkew(of: state.greatestTime) {
                    try drain()
                    throw Refused(message: "\(state.key) was last changed at \(isoTime(state.greatestTime)), "
                        + "\(String(format: "%.0f", Double(skew.aheadMillis) / 1000)) s ahead of this device's clock (the limit is "
                        + "\(skew.maxDriftMillis / 1000) s): the device that wrote it had a clock set ahead, or this one is behind; "
                        + "check this device's date and time (`timedatectl`, NTP), or import the file once this clock has passed "
                        + "that time", line: line)
                }
                try enqueue(.merge(state, line: line))
            }
        }

        mutating func skipped(_ note: ImportNote) { plan.notes.append(note) }
    }

    /// The records a file gives more than once, as its lines leave them in turn.
    struct RepeatSink: ImportSink {
        let keys: Set<RecordKey>
        let store: Store
        /// Each record as measured: a put's set elements are added to the set's.
        var states: [RecordKey: RecordState] = [:]
        /// Each record as the store would leave it (``Store/put(_:on:collection:exists:stamp:)``:
        /// a put's set elements are the set's), to tell the writes that change nothing.
        var written: [RecordKey: RecordState] = [:]
        /// Writes after a record's first in the file that leave it as the lines before them did:
        /// the check counted them as updates, and the import finds them up to date.
        var unchangedRepeats = 0

        /// The record as the store holds it, read at its first write in the file only.
        func stored(_ key: RecordKey) throws -> RecordState? {
            states[key] == nil ? try store.get(key) : nil
        }

        mutating func put(_ key: RecordKey, _ patch: [String: Value], line: Int?) throws {
            let collection = try HubCollection.named(key.collection)
            let stored = try stored(key)
            states[key] = try FileImport.put(patch, on: states[key] ?? stored ?? RecordState(key: key), collection: collection,
                                             device: store.device, line: line)
            // Whether the put changes anything does not depend on the clock reading.
            let was = written[key] ?? stored ?? RecordState(key: key)
            var after = was
            let stamp = FileImport.nextStamp(after: was, device: store.device)
            do { _ = try Store.put(patch, on: &after, collection: collection, exists: true, stamp: { stamp }) } catch {
                written[key] = was // refused: the import stops there, so the count does not matter
                return
            }
            if written[key] != nil, after == was { unchangedRepeats += 1 }
            written[key] = after
        }

        /// A merge is never refused for its size (its parts were each accepted somewhere).
        mutating func merge(_ state: RecordState) throws {
            let stored = try stored(state.key)
            states[state.key] = RecordState.merge(states[state.key] ?? stored ?? RecordState(key: state.key), state)
            // With nothing before it, the store keeps the state exactly as it came.
            let was = written[state.key] ?? stored
            let after = was.map { RecordState.merge($0, state) } ?? state
            if written[state.key] != nil, after == was { unchangedRepeats += 1 }
            written[state.key] = after
        }

        mutating func record(_ r: ImportedRecord) throws {
            let key = RecordKey(collection: r.collection, id: r.id)
            if keys.contains(key) { try put(key, r.fields, line: nil) }
        }

        mutating func skipped(_ note: ImportNote) {}
    }

    struct ApplySink: ImportSink {
        let batch: Int
        let write: ([RecordWrite]) throws -> [Bool]
        let progress: (Int) -> Void
        var pending: [RecordWrite] = []
        var outcome = Outcome()
        var done = 0
        var cards: [String: CardWrites] = [:]

        mutating func record(_ r: ImportedRecord) throws {
            FileImport.track(r, in: &cards)
            try add(FileImport.write(r))
        }

        mutating func add(_ w: RecordWrite) throws {
            pending.append(w)
            if pending.count >= batch { try flush() }
        }

        mutating func skipped(_ note: ImportNote) {}

        mutating func flush() throws {
            guard !pending.isEmpty else { return }
            let results = try write(pending)
            for (w, changed) in zip(pending, results) {
                switch (w, changed) {
                case (_, false): outcome.unchanged += 1
                case (.merge, true): outcome.merged += 1
                case (.local(.delete), true): outcome.removed += 1
                case (.local, true): outcome.written += 1
                }
            }
            done += pending.count
            // The writes are freed on another thread: on this one, they held up the next batch.
            Store.letGo(pending)
            pending = []
            pending.reserveCapacity(batch)
            progress(done)
        }
    }
}
