import Foundation
import Hummingbird
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncNet
import HubSyncStore

/// The audit journal on the agent: what this device does (pairings, removals, key rotations,
/// backups, restores, repairs, conflict resolutions) becomes a signed entry in the `audit`
/// collection; what peers send of it is checked before it is stored (protocol/SPEC.md 8).
extension Agent {
    /// Appends an entry to this device's chain; a failure is logged, never the caller's failure
    /// (the act it records is done).
    @discardableResult
    func recordAudit(_ action: AuditEntry.Action, subject: [String: String] = [:], detail: String) async -> AuditEntry? {
        let journal = audit
        do {
            return try await BlockingIO.run { try journal.append(action, subject: subject, detail: detail) }
        } catch {
            logger.warning("the audit entry could not be written", metadata: ["action": "\(action.rawValue)", "error": "\(error)"])
            return nil
        }
    }

    /// Checks the audit entries among states a peer sent: the ones refused are logged, counted and not stored.
    func screenAudit(_ states: [RecordState], from peer: DeviceID) async -> [RecordKey: String] {
        let refused = await AuditJournal.refusals(among: states, household: household.current, store: store)
        for (key, reason) in refused.sorted(by: { $0.key < $1.key }) {
            logger.warning("refused an audit entry", metadata: node.peerMetadata(peer).merging(["record": "\(key.id)", "reason": "\(reason)"]) { $1 })
        }
        metrics.count(.auditRefused, by: refused.count)
        return refused
    }

    /// The conflict resolutions among applied writes, as audit entries.
    func auditResolutions(_ writes: [RecordWrite], _ results: [RecordWriteResult]) async {
        for (write, result) in zip(writes, results) where result.sequence != nil {
            guard case .local(.resolve(let key, let field, _)) = write else { continue }
            await recordAudit(.conflictResolved, subject: ["collection": key.collection, "id": key.id, "field": field],
                              detail: "resolved the conflict of \(key) field \(field)")
        }
    }

    /// `GET /v1/audit[?since=TIME&device=ID]`: the journal, oldest first, as `hubsync audit --json`.
    /// `POST /v1/audit` `{"action", "subject", "detail"}`: a command that did something this device
    /// records (a backup, a restore) has the agent append the entry; a backup's `"seconds"` and
    /// `"repository_bytes"` also feed the backup metrics.
    func addAuditRoutes(to router: Router<BasicRequestContext>) {
        router.get("v1/audit") { [store, household, identity] request, _ in
            var since: UInt64?
            if let text = request.uri.queryParameters.get("since") {
                guard let ms = AuditTime.parse(text) else {
                    throw APIError(.badRequest, "since must be an RFC 3339 time (2026-11-30T22:41:07Z) or a date (2026-11-30); got \"\(text)\"")
                }
                since = ms
            }
            var device: DeviceID?
            if let text = request.uri.queryParameters.get("device") {
                do { device = try DeviceID(parsing: text) } catch let e as DeviceIDError { throw APIError(.badRequest, "device: \(e.message)") }
            }
            let (s, d) = (since, device)
            let (current, me) = (household.current, identity.deviceID)
            let listed = try await BlockingIO.run { try AuditJournal.listing(in: store, household: current, me: me, since: s, device: d) }
            return json(.array(listed.json))
        }
        router.post("v1/audit") { [self] request, _ in
            let body = try await bodyObject(request)
            let known: Set = ["action", "subject", "detail", "seconds", "repository_bytes"]
            if let other = body.keys.sorted().first(where: { !known.contains($0) }) {
                throw APIError(.badRequest, "\"\(other)\" is not a member of an audit request; give \"action\", \"subject\" and \"detail\" "
                    + "(and a backup's \"seconds\" and \"repository_bytes\"): the entry's time, device and signature are this agent's")
            }
            guard let actionText = body["action"]?.stringValue, let action = AuditEntry.Action(rawValue: actionText) else {
                throw APIError(.badRequest, "give \"action\": one of " + AuditEntry.Action.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let detail = body["detail"]?.stringValue, !detail.isEmpty, detail.utf8.count <= 1024 else {
                throw APIError(.badRequest, "give \"detail\": a sentence of at most 1024 bytes saying what was done")
            }
            if let given = body["subject"], given.objectValue == nil {
                throw APIError(.badRequest, "\"subject\" must be an object of strings, such as {\"target\": \"local:/mnt/usb\"}")
            }
            switch body["seconds"] {
            case nil, .int(0...)?: break
            case .double(let d)? where d >= 0 && d.isFinite: break
            default: throw APIError(.badRequest, "\"seconds\" must be a number of seconds, 0 or more")
            }
            switch body["repository_bytes"] {
            case nil, .int(0...)?: break
            default: throw APIError(.badRequest, "\"repository_bytes\" must be a whole number of bytes, 0 or more")
            }
            var subject: [String: String] = [:]
            for (k, v) in body["subject"]?.objectValue ?? [:] {
                guard let s = v.stringValue, k.utf8.count <= 64, s.utf8.count <= 1024 else {
                    throw APIError(.badRequest, "\"subject\" must be an object of strings (names up to 64 bytes, values up to 1024)")
                }
                subject[k] = s
            }
            guard subject.count <= 16 else { throw APIError(.badRequest, "\"subject\" holds at most 16 members") }
            guard let entry = await recordAudit(action, subject: subject, detail: detail) else {
                throw APIError(.internalServerError, "the audit entry could not be written; the agent's log says why")
            }
            if action == .backup, let target = subject["target"] {
                var seconds = 0.0, bytes: Int?
                if case .double(let d) = body["seconds"] ?? .null { seconds = d }
                if case .int(let n) = body["seconds"] ?? .null { seconds = Double(n) }
                if case .int(let n) = body["repository_bytes"] ?? .null { bytes = Int(n) }
                metrics.noteBackup(target: target, finished: entry.time, seconds: seconds, repositoryBytes: bytes)
                // `hubsync backup now` beside the agent, to a configured target: status and the
                // dashboard show it as the last backup, as they show the agent's own.
                if let schedule = configuration.backup, schedule.targets.contains(target), let snapshot = subject["snapshot"] {
                    backupState.withLock {
                        $0.last = entry.time
                        $0.snapshot = snapshot
                        $0.target = target
                        if $0.errorTarget == target { $0.error = nil; $0.errorTarget = nil }
                    }
                    await saveBackupState()
                    await measureStorage([target], schedule)
                }
            }
            return json(entry.json(verifiedName: await DeviceNames.read(from: store)[entry.device]), status: .created)
        }
    }
}

/// Times as the audit journal's readers give them: RFC 3339 (with or without fractions), or a date.
public enum AuditTime {
    /// Unix milliseconds, or nil when `text` is no such time.
    public static func parse(_ text: String) -> UInt64? {
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let date = full.date(from: text) ?? plain.date(from: text) ?? day.date(from: text),
              date.timeIntervalSince1970 >= 0 else { return nil }
        // The formatter rolls a day that does not exist (2026-02-30) into the next month: a date
        // in UTC must come back as written.
        if text.count == 10 || text.hasSuffix("Z") || text.hasSuffix("z"), day.string(from: date) != String(text.prefix(10)) {
            return nil
        }
        return UInt64(date.timeIntervalSince1970 * 1000)
    }
}
