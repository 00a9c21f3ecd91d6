import Foundation
import HubSyncBackup
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import Hummingbird

/// The backup targets of config.json for the dashboard: each one's snapshots, and verify. Only
/// configured targets are read: the page names a target by its text in `"backup"."targets"`.
extension Agent {
    func addBackupRoutes(to router: Router<BasicRequestContext>) {
        // `GET /v1/backups/snapshots`: every configured target with its snapshots, oldest first.
        router.get("v1/backups/snapshots") { [self] _, _ in
            let schedule = try configuredBackups()
            var targets: [Value] = []
            for text in schedule.targets {
                let answer: Value = await (try? BlockingIO.run { () -> Value in
                    do {
                        let (repo, _, _) = try self.repository(text, schedule, create: false)
                        let (snapshots, unreadable) = try repo.scanSnapshots()
                        return ["target": .string(text), "snapshots": .array(snapshots.map(\.summary)),
                                "unreadable": .array(unreadable.map { .string($0.message) })]
                    } catch {
                        return ["target": .string(text), "snapshots": [], "error": .string(Self.backupMessage(error))]
                    }
                }) ?? ["target": .string(text), "snapshots": [], "error": "the target could not be read"]
                targets.append(answer)
            }
            return json(["targets": .array(targets)])
        }
        // `POST /v1/backups/verify` `{"target", "read_data"}`: as `hubsync backup verify [--read-data]`.
        router.post("v1/backups/verify") { [self] request, _ in
            let schedule = try configuredBackups()
            let body = try await bodyObject(request)
            guard let text = body["target"]?.stringValue, schedule.targets.contains(text) else {
                throw APIError(.badRequest, "give \"target\", one of config.json's backup targets: "
                    + schedule.targets.joined(separator: ", "))
            }
            var readData = false
            if let given = body["read_data"] {
                guard case .bool(let b) = given else { throw APIError(.badRequest, "\"read_data\" must be true or false") }
                readData = b
            }
            let started = ContinuousClock.now, verifyData = readData, progress = backupProgress
            let report: VerifyReport
            do {
                report = try await BlockingIO.run {
                    let (repo, _, _) = try self.repository(text, schedule, create: false)
                    // As the CLI's: the packs an earlier verify found damaged count until read again.
                    let cacheFolder = self.writerLock.directory.file(DataDirectory.backupCacheFolder)
                    let known = repo.knownDamage(cacheFolder: cacheFolder)
                    if let problem = known.problem { self.logger.warning("\(problem)", metadata: ["target": "\(text)"]) }
                    let report = try repo.verify(readData: verifyData, knownDamaged: known.packs, progress: { phase, done, total in
                        progress.update(target: text, phase: "verify: " + phase, done: done, total: total)
                    })
                    // The next backups write again the chunks of the packs found damaged.
                    if let problem = repo.rememberDamage(report, readData: verifyData, subset: false, cacheFolder: cacheFolder) {
                        self.logger.warning("\(problem)", metadata: ["target": "\(text)"])
                    }
                    return report
                }
            } catch {
                backupProgress.finish()
                throw APIError(.conflict, Self.backupMessage(error))
            }
            backupProgress.finish()
            let took = (ContinuousClock.now - started).components
            return json(["target": .string(text), "ok": .bool(report.ok), "snapshots": .int(Int64(report.snapshots)),
                         "packs": .int(Int64(report.packs)), "packs_read": .int(Int64(report.packsRead)),
                         "blobs_checked": .int(Int64(report.blobsChecked)), "bytes_read": .int(Int64(report.bytesRead)),
                         "problems": .array(report.problems.map { .string($0) }),
                         "seconds": .double(Double(took.seconds) + Double(took.attoseconds) / 1e18)])
        }
    }

    /// config.json's backup schedule, or the 409 that says how to add one.
    func configuredBackups() throws -> BackupSchedule {
        guard let schedule = configuration.backup, !schedule.targets.isEmpty else {
            throw APIError(.conflict, "no backup target is configured; add \"backup\": {\"targets\": [...]} to config.json "
                + "(the README's Backups section), then send SIGHUP or restart the agent")
        }
        return schedule
    }

    static func backupMessage(_ error: any Error) -> String {
        (error as? BackupError)?.message ?? (error as? HouseholdError)?.message ?? "\(error)"
    }
}
