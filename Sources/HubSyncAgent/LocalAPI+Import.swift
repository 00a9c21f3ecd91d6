import Foundation
import Glibc
import Hummingbird
import HubSyncCore
import HubSyncMigration
import HubSyncStore
import NIOCore

extension LocalAPI {
    /// The largest file `POST /v1/import` takes (README, local API): larger files go through
    /// `hubsync import`, which reads them from disk.
    static let maxImportSize = 1 << 30

    /// `POST /v1/import?format=auto&name=FILE&persona=ID&dry_run=1`: the body is one file, in
    /// any format `hubsync import` takes (HubSync's own JSON Lines, a card, a chat export,
    /// Markdown), imported as it does (``FileImport``): streamed to a private file beside the
    /// store, checked whole, then written in batches. The answer is the plan (what is created,
    /// updated, unchanged, removed and skipped), with `written` unless it is a dry run. A bad
    /// file is a 400 whose `error` says what and where (`file`, `place`, `line`), with nothing
    /// of it imported.
    func addImportRoute(to router: Router<BasicRequestContext>) {
        router.post("v1/import") { request, _ in
            let query = request.uri.queryParameters
            let name = query.get("name") ?? "upload"
            let formatName = query.get("format") ?? "auto"
            guard formatName == "auto" || Migration.Format(rawValue: formatName) != nil else {
                throw APIError(.badRequest, "unknown format \"\(formatName)\"; use auto, "
                    + Migration.Format.allCases.map(\.rawValue).joined(separator: ", "))
            }
            let persona = query.get("persona")
            if let persona {
                do { try HubCollection.validate(id: persona) } catch let e as ValidationFailure { throw APIError(.badRequest, "persona: \(e.message)") }
            }
            let dryRunText = query.get("dry_run") ?? "0"
            guard let dryRun = ["1": true, "true": true, "yes": true, "0": false, "false": false, "no": false][dryRunText] else {
                throw APIError(.badRequest, "dry_run must be 1 or 0 (true or false); got \"\(dryRunText)\"")
            }
            let tooLarge = APIError(.contentTooLarge, "the file is over \(Self.maxImportSize >> 20) MiB, the most POST /v1/import "
                + "takes; import it with `hubsync import FILE` on this device", details: ["file": .string(name), "limit": .int(Int64(Self.maxImportSize))])
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > Self.maxImportSize { throw tooLarge }
            // The body goes to a private file beside the store (not a memory-backed /tmp): the
            // importers stream from files.
            let dir = URL(fileURLWithPath: store.path).deletingLastPathComponent().appendingPathComponent("import-\(UUID().uuidString)")
            try await BlockingIO.run { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false,
                                                                                attributes: [.posixPermissions: 0o700]) }
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("upload").path
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw APIError(.internalServerError, "cannot write a temporary file in \(dir.path)") }
            var size = 0
            do {
                defer { close(fd) }
                for try await buffer in request.body {
                    size += buffer.readableBytes
                    guard size <= Self.maxImportSize else { throw tooLarge }
                    let bytes = Array(buffer.readableBytesView)
                    try await BlockingIO.run {
                        var offset = 0
                        while offset < bytes.count {
                            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
                            if n < 0, errno == EINTR { continue }
                            guard n > 0 else {
                                let code = errno
                                throw APIError(code == ENOSPC ? HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage") : .internalServerError,
                                               "cannot keep the upload beside the store: \(String(cString: strerror(code)))")
                            }
                            offset += n
                        }
                    }
                }
            }
            let store = self.store
            let group = householdGroup(), devices = householdDevices()
            let received = size
            do {
                let answer: Value = try await BlockingIO.run {
                    let format = formatName == "auto" ? try Migration.detect(path: path, displayName: name) : Migration.Format(rawValue: formatName)!
                    if format == .hubsync, persona != nil {
                        throw MigrationError(file: name, "persona names the persona of a card's, a chat's or Markdown's records; "
                            + "a HubSync file's records carry their own IDs (send it without persona)")
                    }
                    var job = FileImport(path: path, displayName: name, format: format, persona: persona, group: group)
                    job.devices = devices
                    let plan = try job.check(store: store)
                    var answer = plan.object
                    answer["file"] = .string(name)
                    answer["bytes"] = .int(Int64(received))
                    answer["dry_run"] = .bool(dryRun)
                    if !dryRun {
                        let result = try job.apply(batch: 1000, store: store,
                                                   write: { writes in try store.apply(writes).map { $0.sequence != nil } },
                                                   progress: { _ in })
                        answer["written"] = .int(Int64(result.changed))
                        answer["unchanged"] = .int(Int64(result.unchanged))
                        if format == .hubsync { answer["merged"] = .int(Int64(result.merged)) }
                    }
                    return .object(answer)
                }
                return json(answer)
            } catch let e as MigrationError {
                var details: [String: Value] = ["file": .string(e.file), "imported": .int(0)]
                if let place = e.place { details["place"] = .string(place) }
                if let line = e.line { details["line"] = .int(Int64(line)) }
                throw APIError(.badRequest, e.description, details: details)
            } catch let e as StoreError where e.code == .invalidInput || e.code == .clockSkew {
                throw APIError(.badRequest, e.message, details: ["file": .string(name)])
            }
        }
    }
}
