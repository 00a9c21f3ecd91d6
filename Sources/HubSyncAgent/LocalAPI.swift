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
    let store: AsyncStore
    let node: SyncNode
    let token: String
    let status: @Sendable () async -> Value
    let peersChanged: @Sendable () -> Void
    /// Removes a household member from the household (on every member); false when the device
    /// is not a member, and then only this device's trust in it goes.
    var removeMember: @Sendable (DeviceID) async throws -> Bool = { _ in false }

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: BearerTokenMiddleware(token: token))
        router.get("v1/status") { _, _ in json(await status()) }
        router.get("v1/peers") { _, _ in
            let peers = try await store.run { try $0.peers() }
            return json(.array(peers.map { ["device_id": .string($0.device.description), "address": $0.address.map { .string($0) } ?? .null] }))
        }
        router.post("v1/peers") { request, _ in
            let body = try await bodyObject(request)
            guard let text = body["device_id"]?.stringValue else { throw APIError(.badRequest, "give \"device_id\"") }
            let device: DeviceID
            do { device = try DeviceID(parsing: text) } catch let e as DeviceIDError { throw APIError(.badRequest, e.message) }
            let address = body["address"]?.stringValue
            let added = try await store.run { try $0.addPeer(device, address: address) }
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
            let removed = try await store.run { try $0.removePeer(device) }
            await node.disconnect(device)
            peersChanged()
            guard removed else { throw APIError(.notFound, "device \(device) is not a trusted peer") }
            return json(["device_id": .string(device.description), "removed": true])
        }
        router.get("v1/records/:collection") { request, context in
            let collection = try context.parameters.require("collection")
            let limit = request.uri.queryParameters.get("limit", as: Int.self)
            let after = request.uri.queryParameters.get("after")
            let records = try await store.run { try $0.list(collection, after: after, limit: limit) }
            return json(.array(records.map(recordJSON)))
        }
        router.get("v1/records/:collection/:id") { _, context in
            let key = try recordKey(context)
            guard let state = try await store.run({ try $0.get(key) }), state.causalLength > 0 else {
                throw APIError(.notFound, "no record \(key)")
            }
            return json(recordJSON(state))
        }
        router.patch("v1/records/:collection/:id") { request, context in
            try await write(.put(try recordKey(context), try await bodyObject(request)))
        }
        router.put("v1/records/:collection/:id") { request, context in
            try await write(.put(try recordKey(context), try await bodyObject(request)))
        }
        router.delete("v1/records/:collection/:id") { _, context in try await write(.delete(try recordKey(context))) }
        router.post("v1/records/:collection/:id/undelete") { _, context in try await write(.undelete(try recordKey(context))) }
        router.post("v1/records/:collection/:id/resolve") { request, context in
            let body = try await bodyObject(request)
            guard let field = body["field"]?.stringValue, let value = body["value"] else {
                throw APIError(.badRequest, "give \"field\" and \"value\"")
            }
            return try await write(.resolve(try recordKey(context), field: field, value: value))
        }
        router.post("v1/records/:collection/:id/add") { request, context in
            let (field, elements) = try await setBody(request)
            return try await write(.insert(try recordKey(context), field: field, elements: elements))
        }
        router.post("v1/records/:collection/:id/remove") { request, context in
            let (field, elements) = try await setBody(request)
            return try await write(.remove(try recordKey(context), field: field, elements: elements))
        }
        // Many writes in one transaction: {"operations": [{"op": "put", "collection", "id",
        // "fields"} | {"op": "delete", ...}, ...]}; all apply or none.
        router.post("v1/batch") { request, _ in
            let body = try await bodyObject(request)
            guard let list = body["operations"]?.arrayValue else { throw APIError(.badRequest, "give \"operations\" (an array)") }
            var ops: [RecordOperation] = []
            for item in list {
                guard let o = item.objectValue, let c = o["collection"]?.stringValue, let id = o["id"]?.stringValue else {
                    throw APIError(.badRequest, "each operation needs \"op\", \"collection\" and \"id\"")
                }
                let key = RecordKey(collection: c, id: id)
                switch o["op"]?.stringValue {
                case "put":
                    guard let fields = o["fields"]?.objectValue else { throw APIError(.badRequest, "put needs \"fields\"") }
                    ops.append(.put(key, fields))
                case "delete": ops.append(.delete(key))
                case "undelete": ops.append(.undelete(key))
                default: throw APIError(.badRequest, "\"op\" must be put, delete or undelete")
                }
            }
            do {
                let batch = ops
                let events = try await store.run { try $0.apply(batch) }
                return json(["applied": .int(Int64(ops.count)), "changed": .int(Int64(events.count)),
                             "last_sequence": events.last.map { .int($0.sequence) } ?? .null])
            } catch let e as StoreError {
                throw APIError(e.code == .invalidInput ? .badRequest : e.code == .notFound ? .notFound : .internalServerError, e.message)
            }
        }
        router.get("v1/conflicts") { _, _ in
            let records = try await store.run { try $0.conflicts() }
            return json(.array(records.flatMap { s in s.conflictedFields.map { conflictJSON(s, field: $0) } }))
        }
        router.get("v1/changes") { request, _ in changeFeed(since: request.uri.queryParameters.get("since", as: Int64.self)) }
        return router
    }

    func write(_ op: RecordOperation) async throws -> Response {
        let key = op.key
        do {
            let (event, state) = try await store.run { store in
                let event = try store.apply(op)
                return (event, try store.get(key))
            }
            guard let state, case .object(var o) = recordJSON(state) else { throw APIError(.notFound, "no record \(key)") }
            o["sequence"] = event.map { .int($0.sequence) } ?? .null
            o["changed"] = .bool(event != nil)
            return json(.object(o))
        } catch let e as StoreError {
            switch e.code {
            case .invalidInput: throw APIError(.badRequest, e.message)
            case .notFound: throw APIError(.notFound, e.message)
            case .noConflict: throw APIError(.conflict, e.message)
            default: throw APIError(.internalServerError, e.message)
            }
        }
    }

    /// Server-sent events: each change as `id: SEQ`, `event: change`, `data: {...}`. With
    /// `?since=SEQ` the feed first replays the changes after that sequence.
    func changeFeed(since: Int64?) -> Response {
        let subscription = store.store.subscription()
        let store = self.store
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var cursor = since ?? Int64.max
            if let since {
                var after = since
                while true {
                    let from = after
                    let events = try await store.run { try $0.changes(after: from, limit: 500) }
                    guard let last = events.last else { break }
                    for e in events { try await writer.write(ByteBuffer(string: Self.sse(e))) }
                    after = last.sequence
                }
                cursor = after
            }
            try await writer.write(ByteBuffer(string: ": live\n\n"))
            // The feed ends when the agent shuts down, instead of holding the shutdown open.
            try await withGracefulShutdownHandler {
                for await e in subscription.events where since == nil || e.sequence > cursor {
                    try await writer.write(ByteBuffer(string: Self.sse(e)))
                }
            } onGracefulShutdown: {
                subscription.cancel()
            }
            try await writer.finish(nil)
        })
    }

    static func sse(_ e: ChangeEvent) -> String {
        let data: Value = ["sequence": .int(e.sequence), "origin": e.origin == .local ? "local" : "remote",
                           "record": recordJSON(e.state)]
        return "id: \(e.sequence)\nevent: change\ndata: \(JSON.serialize(data))\n\n"
    }
}

func recordKey(_ context: BasicRequestContext) throws -> RecordKey {
    let collection = try context.parameters.require("collection"), id = try context.parameters.require("id")
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

func setBody(_ request: Request) async throws -> (String, [Value]) {
    let body = try await bodyObject(request)
    guard let field = body["field"]?.stringValue, let elements = body["elements"]?.arrayValue else {
        throw APIError(.badRequest, "give \"field\" and \"elements\" (an array)")
    }
    return (field, elements)
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
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
    func response(from request: Request, context: some RequestContext) throws -> Response {
        json(["error": .string(message)], status: status)
    }
}

/// Every request must carry `Authorization: Bearer TOKEN` (the token file in the data directory).
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let auth = request.headers[.authorization], auth == "Bearer \(token)" else {
            throw APIError(.unauthorized, "missing or wrong bearer token; read it from the api.token file in the data directory")
        }
        return try await next(request, context)
    }
}
