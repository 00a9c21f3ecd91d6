import Foundation
public import Hummingbird
public import HubSyncCore
public import HubSyncCrypto
public import HubSyncNet
public import HubSyncStore
import NIOCore
import ServiceLifecycle

/// The agent's local HTTP + JSON API (loopback only, bearer token): records, conflicts, a change
/// feed as server-sent events, status and peers. Routes are listed in README.md.
public struct LocalAPI: Sendable {
    let store: Store
    let node: SyncNode
    let token: String
    /// The token of `metrics.token`, which reads `GET /metrics` and nothing else.
    var metricsToken: String?
    let status: @Sendable () async -> AgentStatus
    let peersChanged: @Sendable () -> Void
    /// Removes a household member from the household (on every member); false when the device
    /// is not a member, and then only this device's trust in it goes.
    var removeMember: @Sendable (DeviceID) async throws -> Bool = { _ in false }
    /// The household's group ID (nil before there is one): `devices` records must belong to it.
    var householdGroup: @Sendable () -> [UInt8]? = { nil }
    /// Whose audit entries the household takes (``AuditWriters``).
    var householdDevices: @Sendable () -> AuditWriters? = { nil }
    /// Told of every write applied through the API, with its results (the audit journal).
    var applied: @Sendable ([RecordWrite], [RecordWriteResult]) async -> Void = { _, _ in }
    /// Whether the device was removed from the household: it cannot be trusted again (4.8).
    var isRemoved: @Sendable (DeviceID) -> Bool = { _ in false }
    /// The dashboard's sign-in codes and sessions, which the API takes beside the token.
    var sessions = DashboardSessions()

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware(storePath: store.path))
        router.add(middleware: AccessMiddleware(token: token, metricsToken: metricsToken, sessions: sessions))
        router.get("v1/status") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: await status().encoded() + [10])))
        }
        router.get("v1/peers") { _, _ in
            let peers = try await store.read(.peers)
            let names = await DeviceNames.read(from: store)
            return json(.array(peers.map {
                ["device_id": .string($0.device.description), "device_name": names[$0.device].map { .string($0) } ?? .null,
                 "address": $0.address.map { .string($0) } ?? .null]
            }))
        }
        router.post("v1/peers") { request, _ in
            let body = try await bodyObject(request)
            guard let text = body["device_id"]?.stringValue else { throw APIError(.badRequest, "give \"device_id\"") }
            let device: DeviceID
            do { device = try DeviceID(parsing: text) } catch let e as DeviceIDError { throw APIError(.badRequest, e.message) }
            if isRemoved(device) {
                throw APIError(.badRequest, PeerTrust.removedMessage(device))
            }
            let address = body["address"]?.stringValue
            if let address, !SyncNode.isDialable(address) {
                throw APIError(.badRequest, "\"address\" must be HOST:PORT with a port of 1–65535")
            }
            let added = try await storeCall { try await store.write(.addPeer(device, address: address)) }
            peersChanged()
            return json(["device_id": .string(device.description), "added": .bool(added)], status: added ? .created : .ok)
        }
        router.delete("v1/peers/:device") { _, context in
            let device: DeviceID
            do { device = try DeviceID(parsing: try context.parameters.require("device")) } catch let e as DeviceIDError {
                throw APIError(.badRequest, e.message)
            }
            // A member would be trusted again at the next membership sync: it leaves the household.
            if try await removeMember(device) {
                peersChanged()
                return json(["device_id": .string(device.description), "removed": true, "household": true])
            }
            let removed = try await store.write(.removePeer(device))
            await node.disconnect(device)
            peersChanged()
            guard removed else { throw APIError(.notFound, "device \(device) is not a trusted peer") }
            return json(["device_id": .string(device.description), "removed": true])
        }
        router.get("v1/records/:collection") { request, context in
            let collection = try pathParameter(context, "collection")
            do { _ = try HubCollection.named(collection) } catch let e as ValidationFailure { throw APIError(.badRequest, e.message) }
            var limit: Int?
            if let text = try queryParameter(request, "limit") {
                guard let n = Int(text), n >= 0 else {
                    throw APIError(.badRequest, "limit must be a whole number, 0 or more; got \"\(text)\"")
                }
                limit = n
            }
            let after = try queryParameter(request, "after")
            let records = try await store.read(.records(in: collection, after: after, limit: limit))
            return json(.array(records.map { recordJSON($0) }))
        }
        router.get("v1/records/:collection/:id") { _, context in
            let key = try recordKey(context)
            guard let state = try await store.read(.record(key)), state.causalLength > 0 else {
                throw APIError(.notFound, "no record \(key)")
            }
            return json(recordJSON(state))
        }
        // Each record route states its write in RecordWrite's form, which the batch route and the
        // CLI use too: one parser for every path into the store.
        router.patch("v1/records/:collection/:id") { request, context in
            try await write("put", context, ["fields": .object(try await bodyObject(request))])
        }
        router.put("v1/records/:collection/:id") { request, context in
            try await write("put", context, ["fields": .object(try await bodyObject(request))])
        }
        router.delete("v1/records/:collection/:id") { _, context in try await write("delete", context) }
        router.post("v1/records/:collection/:id/undelete") { _, context in try await write("undelete", context) }
        router.post("v1/records/:collection/:id/resolve") { request, context in
            try await write("resolve", context, try await bodyObject(request))
        }
        router.post("v1/records/:collection/:id/add") { request, context in
            try await write("add", context, try await bodyObject(request))
        }
        router.post("v1/records/:collection/:id/remove") { request, context in
            try await write("remove", context, try await bodyObject(request))
        }
        // Many writes, in ``BatchRequest``'s form; the answer is a ``BatchAnswer``.
        router.post("v1/batch") { request, _ in
            let body = try await bodyObject(request)
            let read = BatchRequest.reading(body)
            // Membership and audit records of another household refuse the batch before the store sees it.
            func refuseForeign(_ writes: [RecordWrite]) throws {
                guard let key = HouseholdRecords.admissible(writes, toGroup: householdGroup(), writers: householdDevices()).refused.first
                else { return }
                if key.collection == AuditEntry.collection {
                    throw APIError(.badRequest, "\(key) is not an audit entry signed by the device it names, a device of this "
                        + "household; it was left out, with the rest of the batch")
                }
                throw APIError(.badRequest, "\(key) is not a membership record of this device's household; "
                    + "devices records come only from this household (by sync, or in its own exports)")
            }
            if let failure = read.failure {
                // A write before the one that cannot be read may be refused as the batch would
                // refuse it (tried in the store, and rolled back): that one is named.
                if !read.writes.isEmpty {
                    try refuseForeign(read.writes)
                    try await storeCall { if let earlier = try await store.refusal(of: read.writes) { throw earlier } }
                }
                throw APIError(.badRequest, failure.message)
            }
            let (writes, withRecords) = (read.writes, body["records"] == .bool(true))
            try refuseForeign(writes)
            let (results, records) = try await storeCall { () async throws -> ([RecordWriteResult], [RecordState?]?) in
                let results = try await store.apply(writes, indexed: true)
                return (results, withRecords ? try await store.read(.records(results.map(\.key))) : nil)
            }
            await applied(writes, results)
            return json(BatchAnswer(results: results, records: records).json)
        }
        router.get("v1/conflicts") { _, _ in
            let records = try await store.read(.conflicts)
            let names = await DeviceNames.read(from: store)
            return json(.array(records.flatMap { s in s.conflictedFields.map { conflictJSON(s, field: $0, names: names) } }))
        }
        router.get("v1/changes") { request, _ in
            var since: Int64?
            // A browser's EventSource that reconnects sends the last ID it got: it resumes after it.
            if let text = request.uri.queryParameters.get("since") ?? request.headers[Self.lastEventID] {
                guard let n = Int64(text), n >= 0 else {
                    throw APIError(.badRequest, "since must be a sequence number, 0 or more; got \"\(text)\"")
                }
                since = n
            }
            return try await changeFeed(since: since)
        }
        addImportRoute(to: router)
        return router
    }

    /// Applies the write `op` names on the record the path names, with `body`'s members
    /// (fields, field, elements, value), and answers the record with its change's sequence.
    func write(_ op: String, _ context: BasicRequestContext, _ body: [String: Value] = [:]) async throws -> Response {
        var object = body
        object["op"] = .string(op)
        object["collection"] = .string(try pathParameter(context, "collection"))
        object["id"] = .string(try pathParameter(context, "id"))
        let write = try parseWrite(object)
        let key = write.key
        let (result, state) = try await storeCall {
            let result = try await store.apply([write])
            return (result, try await store.read(.record(key)))
        }
        await applied([write], result)
        guard let state, case .object(var o) = recordJSON(state) else { throw APIError(.notFound, "no record \(key)") }
        let sequence = result.first?.sequence
        o["sequence"] = sequence.map { .int($0) } ?? .null
        o["changed"] = .bool(sequence != nil)
        return json(.object(o))
    }

    /// Runs a store call, answering its refusals with their HTTP status.
    func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as StoreError {
            switch e.code {
            case .invalidInput: throw APIError(.badRequest, e.message)
            case .notFound: throw APIError(.notFound, e.message)
            // Marked, so a client tells it from a clock refused (also 409): it is the caller's input.
            case .noConflict: throw APIError(.conflict, e.message, details: ["no_conflict": .bool(true)])
            case .clockSkew: throw APIError(.conflict, e.message)
            default: throw JSONErrorMiddleware.apiError(e, storePath: store.path)
            }
        }
    }

    /// Server-sent events: each change as `id: SEQ`, `event: change`, `data: {...}`, in sequence
    /// order with none missing, however slowly the client reads: the feed pages the change log
    /// from the last sequence it sent, and a commit only wakes it. With `?since=SEQ` it starts
    /// after that sequence, else after the last one committed when the request came. A comment
    /// line `: live` marks the moment it first caught up with the log.
    func changeFeed(since: Int64?) async throws -> Response {
        // Subscribed before the start is read, so nothing committed in between is missed.
        let subscription = store.changeSignal()
        let start: Int64
        if let since { start = since } else { start = try await store.read(.lastSequence) }
        let store = self.store
        // A client that closes its connection ends the feed then, not at the next change's write.
        LocalAPIServer.whenClientGone { subscription.cancel() }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var cursor = start, live = false
            // The feed ends when the agent shuts down, instead of holding the shutdown open.
            try await withGracefulShutdownHandler {
                while true {
                    let events = try await store.read(.changes(after: cursor, limit: 500))
                    guard let last = events.last else {
                        if !live {
                            try await writer.write(ByteBuffer(string: ": live\n\n"))
                            live = true
                        }
                        guard await subscription.wait() else { break }
                        continue
                    }
                    // A slow client holds this write back (back pressure); the log keeps the rest.
                    var text = ""
                    for e in events { text += Self.sse(e) }
                    try await writer.write(ByteBuffer(string: text))
                    cursor = last.sequence
                }
            } onGracefulShutdown: {
                subscription.cancel()
            }
            subscription.cancel()
            try await writer.finish(nil)
        })
    }

    static let lastEventID = HTTPFields.Element.Name("Last-Event-ID")!

    static func sse(_ e: ChangeEvent) -> String {
        let data: Value = ["sequence": .int(e.sequence), "origin": e.origin == .local ? "local" : "remote",
                           "record": recordJSON(e.state)]
        return "id: \(e.sequence)\nevent: change\ndata: \(JSON.serialize(data))\n\n"
    }
}

/// Parses a write with the one parser every path uses; a refusal is a 400 with its message.
func parseWrite(_ object: [String: Value]) throws(APIError) -> RecordWrite {
    do { return try RecordWrite(parsing: object) } catch { throw APIError(.badRequest, error.message) }
}

/// A path parameter, percent-decoded exactly once.
func pathParameter(_ context: BasicRequestContext, _ name: String) throws -> String {
    let raw = try context.parameters.require(name)
    guard let decoded = percentDecoded(raw) else {
        throw APIError(.badRequest, "the \(name) in the path is not valid percent-encoding; encode it as UTF-8, "
            + "each byte outside A-Z a-z 0-9 - . _ ~ as %XX")
    }
    return decoded
}

/// `text` with each `%XX` made the byte it names, when every `%` is followed by two hex digits
/// and the bytes are UTF-8; else nil (Foundation's decoding lets a stray `%zz` through as it is).
func percentDecoded(_ text: String) -> String? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    func hex(_ c: UInt8?) -> UInt8? {
        switch c {
        case (UInt8(ascii: "0")...UInt8(ascii: "9"))?: c! - UInt8(ascii: "0")
        case (UInt8(ascii: "a")...UInt8(ascii: "f"))?: c! - UInt8(ascii: "a") + 10
        case (UInt8(ascii: "A")...UInt8(ascii: "F"))?: c! - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    while let c = iterator.next() {
        if c == UInt8(ascii: "%") {
            guard let high = hex(iterator.next()), let low = hex(iterator.next()) else { return nil }
            bytes.append(high << 4 | low)
        } else {
            bytes.append(c)
        }
    }
    return String(validating: bytes, as: UTF8.self)
}

/// A query parameter's value, percent-decoded once. Bad percent-encoding, or bytes that are not
/// UTF-8, are refused (400) naming the parameter, never repaired or passed on as they came.
func queryParameter(_ request: Request, _ name: String) throws -> String? {
    guard let query = request.uri.query else { return nil }
    for pair in query.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard String(parts[0]) == name else { continue }
        let raw = parts.count > 1 ? String(parts[1]) : ""
        guard let decoded = percentDecoded(raw) else {
            throw APIError(.badRequest, "the query parameter \(name) is not valid percent-encoding of UTF-8 text; encode it as UTF-8, "
                + "each byte outside A-Z a-z 0-9 - . _ ~ as %XX")
        }
        return decoded
    }
    return nil
}

/// A whole-number query parameter within `range`, or nil when absent; anything else is a 400.
func queryInteger(_ request: Request, _ name: String, _ range: ClosedRange<Int>) throws -> Int? {
    guard let text = try queryParameter(request, name) else { return nil }
    guard let n = Int(text), range.contains(n) else {
        throw APIError(.badRequest, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound); got \"\(text)\"")
    }
    return n
}

/// The record key a path names (decoded once), checked as every write checks it.
func recordKey(_ context: BasicRequestContext) throws -> RecordKey {
    let collection = try pathParameter(context, "collection"), id = try pathParameter(context, "id")
    do {
        _ = try HubCollection.named(collection)
        try HubCollection.validate(id: id)
    } catch {
        throw APIError(.badRequest, error.message)
    }
    return RecordKey(collection: collection, id: id)
}

func bodyObject(_ request: Request) async throws -> [String: Value] {
    let buffer = try await request.body.collect(upTo: 4 << 20)
    let value: Value
    do { value = try JSON.parse(Array(buffer.readableBytesView)) } catch {
        throw APIError(.badRequest, "\(error)")
    }
    guard let o = value.objectValue else { throw APIError(.badRequest, "the body must be a JSON object") }
    return o
}

func json(_ value: Value, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: JSON.serialize(value) + "\n")))
}

/// An API failure, answered as `{"error": message}` with its status.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    /// More fields of the answer, beside `error` (such as the devices a refused removal names).
    var details: [String: Value] = [:]
    init(_ status: HTTPResponse.Status, _ message: String, details: [String: Value] = [:]) {
        self.status = status
        self.message = message
        self.details = details
    }
    func response(from request: Request, context: some RequestContext) throws -> Response {
        json(.object(details.merging(["error": .string(message)]) { _, new in new }), status: status)
    }
}

/// The bearer token's check: `Authorization: Bearer TOKEN` (the token file in the data directory;
/// the scheme's name in any case, as RFC 9110 has it). ``AccessMiddleware`` applies it, and takes
/// the metrics token (`metrics.token`) for `GET /metrics` alone: the copy Prometheus holds reads
/// figures, never records, invites or the household.
enum BearerToken {
    /// The file whose token a request for `path` should carry, for refusals: for /metrics the
    /// metrics token (Prometheus' copy), not api.token.
    static func file(for path: String) -> String {
        path == "/metrics" ? "the metrics.token file (api.token works too, but never give it to a scraper)" : "the api.token file"
    }

    /// Whether `header` is `Bearer TOKEN`, the token compared in constant time.
    static func matches(_ header: String, token: String) -> Bool {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        return constantTimeEqual(parts[1].trimmingCharacters(in: .whitespaces), token)
    }

    /// Whether two secrets are equal, compared in time that does not depend on where they differ.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let given = Array(a.utf8), expected = Array(b.utf8)
        guard given.count == expected.count else { return false }
        return zip(given, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Gives the errors the HTTP layer raises without a body (no such route, a body over the limit)
/// the API's JSON form, `{"error": MESSAGE}`, with a message that says what to do.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    static let tooLarge = APIError(.contentTooLarge, "the request body is over 4 MiB; send the writes in smaller batches")

    /// The store file the agent serves, for the sentence of a store damaged under it.
    var storePath: String

    /// A store failure as a 500: a store damaged under the agent says so, with what to do.
    static func apiError(_ error: StoreError, storePath: String) -> APIError {
        guard Store.isDamage(error) else { return APIError(.internalServerError, error.message) }
        return APIError(.internalServerError, FailureText.storeDamage(error, storePath: storePath, refused: true))
    }

    /// The 413 for a request: a single record's route is over the record limit, not a batch.
    static func tooLarge(_ request: Request) -> APIError {
        guard request.uri.path.hasPrefix("/v1/records/") else { return tooLarge }
        return APIError(.contentTooLarge, "the request body is over 4 MiB; a write may make a record at most "
            + "\(Store.maxRecordBytes / 1024) KiB; nothing was written — split the value over several records")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch is NIOTooManyBytesError {
            throw Self.tooLarge(request)
        } catch let error as HTTPError where error.body == nil {
            switch error.status {
            case .notFound:
                throw APIError(.notFound, "no route \(request.method) \(request.uri.path); the README's local API table lists the routes")
            case .contentTooLarge:
                throw Self.tooLarge(request)
            default:
                throw APIError(error.status, error.status.reasonPhrase)
            }
        } catch let error as any HTTPResponseError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as StoreError {
            // A store failure outside storeCall: its message says what happened (a damaged store, a full disk).
            throw error.code == .invalidInput ? APIError(.badRequest, error.message) : Self.apiError(error, storePath: storePath)
        } catch {
            context.logger.error("unexpected failure in the local API", metadata: ["error": "\(String(reflecting: error))"])
            throw APIError(.internalServerError, FailureText.describe(error)?.message
                ?? FailureText.unknown(error) + "; the agent's log has the detail")
        }
    }
}
