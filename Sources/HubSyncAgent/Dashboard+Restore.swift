import Foundation
import HubSyncBackup
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Hummingbird
import NIOCore

/// What the last restore drill found: how long a restore of the latest snapshot took (recovery
/// time) and how old that snapshot was (recovery point), for status and the Backups tab.
struct DrillResult: Sendable {
    var target: String
    var snapshot: String
    var at: UInt64
    var recoveryTimeSeconds: Double
    var recoveryPointSeconds: Double
    var problems: [String]
    /// Records restored, when this process ran it (not kept in the file).
    var records: Int?

    init(target: String, snapshot: String, at: UInt64, recoveryTimeSeconds: Double, recoveryPointSeconds: Double,
         problems: [String], records: Int? = nil) {
        (self.target, self.snapshot, self.at, self.records) = (target, snapshot, at, records)
        (self.recoveryTimeSeconds, self.recoveryPointSeconds, self.problems) = (recoveryTimeSeconds, recoveryPointSeconds, problems)
    }

    /// A drill's report on `target`, run now.
    init(target: String, report r: DrillReport) {
        self.init(target: target, snapshot: r.snapshot.id.hex, at: Store.systemClock(), recoveryTimeSeconds: r.recoveryTimeSeconds,
                  recoveryPointSeconds: r.recoveryPointSeconds, problems: r.problems, records: r.records)
    }

    /// Its form in `backup-state.json`.
    var fileJSON: Value {
        ["target": .string(target), "snapshot": .string(snapshot), "at": .int(Int64(at)),
         "recovery_time_seconds": .double(recoveryTimeSeconds), "recovery_point_seconds": .double(recoveryPointSeconds),
         "problems": .array(problems.map { .string($0) })]
    }

    var status: AgentStatus.Drill {
        AgentStatus.Drill(target: target, snapshot: snapshot, at: isoTime(Timestamp(millis: at, counter: 0)),
                          recoveryTimeSeconds: recoveryTimeSeconds, recoveryPointSeconds: recoveryPointSeconds,
                          ok: problems.isEmpty, problems: problems)
    }
}

/// The Backups tab's restores (protocol/SPEC.md 9.5): one record reverted to a snapshot's value
/// (`backup restore --revert --record`), everything into a new data directory
/// (`backup restore --into`), and a restore drill (`backup drill`), on configured targets only.
extension Agent {
    func addRestoreRoutes(to router: Router<BasicRequestContext>) {
        // `POST /v1/backups/restore` `{"target", "snapshot", "record": "COLLECTION/ID"}` or `{…, "into": DIR}`.
        router.post("v1/backups/restore") { [self] request, _ in
            let schedule = try configuredBackups()
            let body = try await bodyObject(request)
            let target = try Self.targetParameter(body, schedule)
            guard let snapshotName = body["snapshot"]?.stringValue, !snapshotName.isEmpty else {
                throw APIError(.badRequest, "give \"snapshot\": a snapshot ID (or a unique prefix), or \"latest\"")
            }
            switch (body["record"]?.stringValue, body["into"]?.stringValue) {
            case (let record?, nil): return json(try await revertRecord(record, snapshotName, target, schedule))
            case (nil, let into?): return json(try await restoreInto(into, snapshotName, target, schedule))
            default:
                throw APIError(.badRequest, "give exactly one of \"record\" (COLLECTION/ID, reverted to the snapshot's value) "
                    + "or \"into\" (a new folder, restored as a new device)")
            }
        }
        // `POST /v1/backups/drill` `{"target"}`: as `hubsync backup drill`, kept for status.
        router.post("v1/backups/drill") { [self] request, _ in
            let schedule = try configuredBackups()
            let target = try Self.targetParameter(try await bodyObject(request), schedule)
            let drill: DrillResult
            do {
                drill = try await BlockingIO.run { try self.drill(target, schedule) }
            } catch {
                throw APIError(.conflict, Self.backupMessage(error))
            }
            backupState.withLock { $0.drill = drill }
            await saveBackupState()
            await recordAudit(.restore, subject: ["target": target, "snapshot": drill.snapshot, "mode": "drill"],
                              detail: "restore drill of snapshot \(drill.snapshot.prefix(8)) from \(target): "
                                  + String(format: "%.1f s to restore, the snapshot %.0f s old", drill.recoveryTimeSeconds, drill.recoveryPointSeconds)
                                  + (drill.problems.isEmpty ? "" : "; \(drill.problems.count) problem(s)"))
            return json(Self.drillJSON(drill.status, records: drill.records))
        }
    }

    static func drillJSON(_ d: AgentStatus.Drill, records: Int? = nil) -> Value {
        ["records": records.map { .int(Int64($0)) } ?? .null, "target": .string(d.target), "snapshot": .string(d.snapshot), "at": .string(d.at),
         "recovery_time_seconds": .double(d.recoveryTimeSeconds), "recovery_point_seconds": .double(d.recoveryPointSeconds),
         "ok": .bool(d.ok), "problems": .array(d.problems.map { .string($0) })]
    }

    /// The `"target"` of a request: one of config.json's backup targets.
    static func targetParameter(_ body: [String: Value], _ schedule: BackupSchedule) throws -> String {
        guard let text = body["target"]?.stringValue, schedule.targets.contains(text) else {
            throw APIError(.badRequest, "give \"target\", one of config.json's backup targets: " + schedule.targets.joined(separator: ", "))
        }
        return text
    }

    /// Reverts one record to its value in a snapshot, as new edits every peer follows; a record
    /// the snapshot does not hold is deleted, as it did not exist then.
    func revertRecord(_ text: String, _ snapshotName: String, _ target: String, _ schedule: BackupSchedule) async throws -> Value {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        let key = RecordKey(collection: parts.first ?? "", id: parts.count > 1 ? parts[1] : "")
        do {
            guard parts.count == 2 else { throw ValidationFailure("\"record\" takes COLLECTION/ID, e.g. memories/m42") }
            guard HubCollection.userCollections.contains(where: { $0.rawValue == key.collection }) else {
                throw ValidationFailure("only records of people's collections are restored one by one ("
                    + HubCollection.userCollections.map(\.rawValue).joined(separator: ", ") + ")")
            }
            try HubCollection.validate(id: key.id)
        } catch let e as ValidationFailure {
            throw APIError(.badRequest, e.message)
        }
        let started = ContinuousClock.now
        let (snap, states): (Snapshot, [RecordState])
        do {
            (snap, states) = try await BlockingIO.run {
                let (repo, _, _) = try self.repository(target, schedule, create: false)
                let snap = try repo.snapshot(named: snapshotName)
                var states: [RecordState] = []
                let report = try repo.readRecords(of: snap, skipDamaged: false, only: key) { states += $0 }
                // Not read, with damaged chunks skipped: it may be in them, so nothing is changed.
                if states.isEmpty, !report.skippedChunks.isEmpty {
                    throw BackupError(.damaged, report.whyNotRead(key, from: snap) + "; nothing was changed. Restore it "
                        + "from an older snapshot, or run `hubsync backup verify --read-data`")
                }
                return (snap, states)
            }
        } catch {
            throw APIError(.conflict, Self.backupMessage(error))
        }
        let current = try await store.read(.record(key))
        var ops: [RecordOperation]
        if let old = states.first(where: { $0.key == key }) {
            ops = RestorePlan.revert(snapshot: old, current: current)
        } else if let current, current.isAlive {
            ops = [.delete(key)]
        } else {
            throw APIError(.notFound, "snapshot \(snap.id.short) holds no record \(key), and there is none now; check the collection and ID, "
                + "or restore the snapshot into a new folder to see what it holds (`hubsync backup restore \(snap.id.short) --into DIR`)")
        }
        let writes = ops.map(RecordWrite.local)
        let results = try await store.apply(writes)
        let changed = results.filter { $0.sequence != nil }.count
        let seconds = Self.seconds(since: started)
        await recordAudit(.restore, subject: ["snapshot": snap.id.hex, "mode": "revert", "record": "\(key)", "target": target],
                          detail: "restored snapshot \(snap.id.short) (reverted) for \(key)")
        return ["mode": "revert", "record": .string("\(key)"), "snapshot": .string(snap.id.hex), "writes": .int(Int64(changed)),
                "seconds": .double(seconds), "snapshot_age_seconds": .double(snap.age())]
    }

    /// Restores a snapshot as a new device into `into`: an absolute path that does not exist yet
    /// or is an empty folder.
    func restoreInto(_ into: String, _ snapshotName: String, _ target: String, _ schedule: BackupSchedule) async throws -> Value {
        guard into.hasPrefix("/") else {
            throw APIError(.badRequest, "\"into\" must be an absolute path (a new folder), such as /home/me/hubsync-restored")
        }
        let path = URL(fileURLWithPath: into).standardizedFileURL.path
        let parent = (path as NSString).deletingLastPathComponent
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isFolder), isFolder.boolValue else {
            throw APIError(.badRequest, "\(parent), the folder \"into\" goes in, does not exist; give a new folder inside an existing one, nothing was written")
        }
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil {
            throw APIError(.badRequest, "\(path) is a symbolic link; give the folder itself (a new or empty one), nothing was written")
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]
            guard isFolder.boolValue, entries.isEmpty else {
                throw APIError(.conflict, "\(path) exists and is not an empty folder; choose a new folder, nothing was written")
            }
        }
        if let problem = FolderPlacement.problem(path, what: "a restored device") {
            throw APIError(.badRequest, problem + "; nothing was written")
        }
        let started = ContinuousClock.now
        let (snap, made): (Snapshot, NewDeviceRestore)
        do {
            (snap, made) = try await BlockingIO.run {
                let (repo, household, _) = try self.repository(target, schedule, create: false)
                let snap = try repo.snapshot(named: snapshotName)
                // The repository gives its household's secrets only to the recovery key: the new
                // device takes this agent's, which opened it.
                let made = try repo.restoreNewDevice(snap, into: DataDirectory(path: path), deviceName: ProcessInfo.processInfo.hostName,
                                                     skipDamaged: false, ownHousehold: household)
                return (snap, made)
            }
        } catch {
            throw APIError(.conflict, Self.backupMessage(error))
        }
        let seconds = Self.seconds(since: started)
        await recordAudit(.restore, subject: ["snapshot": snap.id.hex, "mode": "into", "target": target],
                          detail: "restored snapshot \(snap.id.short) into a new folder (\(made.report.records) records)")
        return ["mode": "into", "into": .string(path), "device_id": .string(made.deviceID.description),
                "records": .int(Int64(made.report.records)), "snapshot": .string(snap.id.hex), "seconds": .double(seconds),
                "snapshot_age_seconds": .double(snap.age()), "note": made.householdNote.map { .string($0) } ?? .null,
                "next": .string("start it with `hubsync run --data \(path)` and pair it with the household again")]
    }

    /// As `hubsync backup drill`: the latest snapshot restored into a scratch store, checked.
    func drill(_ target: String, _ schedule: BackupSchedule) throws -> DrillResult {
        let (repo, _, _) = try repository(target, schedule, create: false)
        return DrillResult(target: target, report: try repo.drill(try repo.snapshot(named: "latest")))
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let took = (ContinuousClock.now - start).components
        return Double(took.seconds) + Double(took.attoseconds) / 1e18
    }
}

/// The Migration tab's export: `GET /v1/export` answers the file `hubsync export` writes.
extension Agent {
    func addExportRoute(to router: Router<BasicRequestContext>) {
        router.get("v1/export") { [self] _, _ in
            // Written to a file of the data directory first (mode 0600: it holds every record), then
            // sent from it a piece at a time, so a large store is never held in memory whole.
            let path = directory + "/export-\(UUID().uuidString).partial"
            let (store, device) = (self.store, identity.deviceID)
            let size: Int
            do {
                size = try await BlockingIO.run {
                    guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
                          let file = FileHandle(forWritingAtPath: path) else {
                        throw APIError(.internalServerError, "cannot write \(path) for the export; is the data directory writable?")
                    }
                    defer { try? file.close() }
                    var size = 0
                    _ = try ExportFormat.write(store, device: device.description, created: store.now.millis) { bytes in
                        try file.write(contentsOf: bytes)
                        size += bytes.count
                    }
                    return size
                }
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                if let e = error as? APIError { throw e }
                throw APIError(.internalServerError, "the export failed: \(error); nothing was downloaded")
            }
            let day = String(isoTime(Timestamp(millis: Store.systemClock(), counter: 0)).prefix(10))
            var headers = HTTPFields()
            headers[.contentType] = "application/x-ndjson"
            headers[.contentLength] = String(size)
            headers[.contentDisposition] = "attachment; filename=\"hubsync-export-\(device.short)-\(day).jsonl\""
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                defer { try? FileManager.default.removeItem(atPath: path) }
                let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
                defer { try? file.close() }
                while true {
                    let piece = try await BlockingIO.run { try file.read(upToCount: 1 << 16) ?? Data() }
                    if piece.isEmpty { break }
                    try await writer.write(ByteBuffer(bytes: piece))
                }
                try await writer.finish(nil)
            })
        }
    }
}
