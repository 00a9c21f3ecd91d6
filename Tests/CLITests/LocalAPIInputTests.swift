import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HubSyncCore
import HubSyncCrypto
import Testing

/// The local API refuses what the CLI refuses: a 400 with `{"error": …}`, and nothing written.
@Suite struct LocalAPIInputTests {
    let dir = TemporaryDirectory()

    /// A request with raw body bytes (the API client sends only valid JSON).
    func raw(_ agent: AgentProcess, _ method: String, _ path: String, body: Data? = nil) async throws -> (Int, Value) {
        let token = try String(contentsOfFile: agent.device.data + "/api.token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var request = URLRequest(url: URL(string: agent.client.baseURL + path)!)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSON.parse([UInt8](data))) ?? .null)
    }

    @Test func badRequestsAreRefusedWithAJSONErrorAndChangeNothing() async throws {
        let a = try await AgentProcess(Device(data: dir.path + "/a"))
        try await a.device.ok("put", "personas", "ada", "--json", #"{"name": "Ada"}"#)
        let cases: [(String, String, Value?, Int, String)] = [
            ("PATCH", "/v1/records/memories/e0", [:], 400, "does not exist"),
            ("PUT", "/v1/records/memories/e0", [:], 400, "does not exist"),
            ("GET", "/v1/records/widgets", nil, 400, "unknown collection"),
            ("PATCH", "/v1/records/widgets/w", ["x": 1], 400, "unknown collection"),
            ("GET", "/v1/records/memories?limit=abc", nil, 400, "limit"),
            ("GET", "/v1/records/memories?limit=-1", nil, 400, "limit"),
            ("GET", "/v1/changes?since=abc", nil, 400, "since"),
            ("GET", "/v1/records/memories?limit=99999999999999999999999", nil, 400, "limit"),
            ("GET", "/v1/changes?since=-5", nil, 400, "since"),
            ("GET", "/v1/records/memories?after=%FF%FE", nil, 400, "after"),
            ("GET", "/v1/pairing/invites/none?wait=soon", nil, 400, "wait"),
            ("GET", "/v1/pairing/invites/none?wait=600", nil, 400, "wait"),
            ("GET", "/v1/records/memories/nobody", nil, 404, "no record"),
            ("GET", "/v1/no/such/route", nil, 404, "no route"),
            ("POST", "/v1/records/memories/nobody/remove", ["field": "tags", "elements": ["x"]], 404, "no record"),
            ("POST", "/v1/batch", ["operations": [["op": "put", "collection": "memories", "id": "ok", "fields": ["text": "t"]],
                                                  ["op": "put", "collection": "memories", "id": "m"]]], 400, "operations[1]"),
            ("POST", "/v1/batch", ["operations": [["op": "put", "collection": "memories", "id": "ok", "fields": ["text": "t"]],
                                                  ["op": "put", "collection": "memories", "id": "e1", "fields": [:]]]],
             400, "operations[1]: memories/e1 does not exist"),
            // A batch of one names its operation too.
            ("POST", "/v1/batch", ["operations": [["op": "put", "collection": "memories", "id": "e1", "fields": [:]]]],
             400, "operations[0]: memories/e1 does not exist"),
            // The first bad write is named, though a later one cannot even be read.
            ("POST", "/v1/batch", ["operations": [["op": "put", "collection": "memories", "id": "ok", "fields": ["text": "t"]],
                                                  ["op": "put", "collection": "personas", "id": "nameless", "fields": ["tags": ["x"]]],
                                                  ["op": "put", "collection": "memories", "id": "m", "fields": 5]]],
             400, "operations[1]: personas/nameless needs the field \"name\""),
            ("POST", "/v1/batch", ["operations": [["op": "put", "collection": "memories", "id": "ok", "fields": ["text": "t"]],
                                                  ["op": "put", "collection": "memories", "id": "m", "fields": 5]]],
             400, "operations[1]: "),
        ]
        for (method, path, body, status, message) in cases {
            let (got, answer) = try await a.request(method, path, body: body)
            #expect(got == status, "\(method) \(path): \(got) \(answer)")
            let error = answer.objectValue?["error"]?.stringValue ?? ""
            #expect(error.contains(message), "\(method) \(path): \(answer)")
        }
        // A membership record of another household before the unreadable operation is refused
        // as the batch would refuse it, before the store is asked about the delete after it.
        var record = RecordState(key: RecordKey(collection: "devices", id: "x1"))
        record.write(field: "note", value: "not a statement", stamp: Stamp(time: Timestamp(millis: 1_700_000_000_000, counter: 0),
                                                                           device: try DeviceID(bytes: [UInt8](repeating: 7, count: 32))))
        let foreign: [String: Value] = ["op": "merge", "collection": "devices", "id": "x1", "state": StateJSON.object(record),
                                        "digest": .string(Hex.encode(CanonicalEncoding.digest(record)))]
        let (foreignStatus, foreignAnswer) = try await a.request("POST", "/v1/batch", body: [
            "operations": [.object(foreign), ["op": "delete", "collection": "memories", "id": "missing"],
                           ["op": "put", "collection": "memories", "id": "m", "fields": 5]]])
        #expect(foreignStatus == 400 && foreignAnswer.objectValue?["error"]?.stringValue?
            .contains("is not a membership record of this device's household") == true, "\(foreignAnswer)")
        // A stray % as sent on the wire (the test client would encode it as %25).
        let stray = try await DashboardTests.send(a.client.port, "GET", "/v1/records/memories?after=%zz",
                                                  headers: ["Authorization": "Bearer \(a.client.token)"])
        #expect(stray.status == 400 && stray.body.contains("percent-encoding"), "\(stray)")
        // Bodies that are not UTF-8: the byte offset, and nothing written.
        let badValue = Data(#"{"text": "ab"#.utf8) + Data([0xFF]) + Data(#""}"#.utf8)
        let badName = Data(#"{"ab"#.utf8) + Data([0xC3]) + Data(#"": "x"}"#.utf8)
        for body in [badValue, badName] {
            let (status, answer) = try await raw(a, "PATCH", "/v1/records/memories/u1", body: body)
            #expect(status == 400, "\(answer)")
            let error = answer.objectValue?["error"]?.stringValue ?? ""
            #expect(error.contains("UTF-8") && error.contains("byte"), "\(answer)")
        }
        // An ID that is not UTF-8 once percent-decoded.
        let (idStatus, idAnswer) = try await raw(a, "PATCH", "/v1/records/memories/ab%FF", body: Data(#"{"text": "t"}"#.utf8))
        #expect(idStatus == 400, "\(idAnswer)")
        // Nothing above wrote a record: only ada exists, and no phantom memories.
        let memories = try await a.device.ok("list", "memories", "--deleted", "--json").json?.arrayValue ?? []
        #expect(memories.isEmpty, "\(memories)")
        let personas = try await a.device.ok("list", "personas", "--deleted", "--json").json?.arrayValue ?? []
        #expect(personas.count == 1, "\(personas)")
        // A command's one write through the agent is refused in the command's own words.
        let put = try await a.device.run("put", "memories", "e2", "--json", "{}")
        #expect(put.status == 2 && put.stderr.contains("memories/e2 does not exist") && !put.stderr.contains("operations["),
                "\(put.stderr)")
        await a.stop()
    }
}

/// Connections that never finish a request: at the API's limit the oldest silent one makes room
/// for a new one, so a client with the token still gets in; every one is closed within the idle
/// time; the API answers afterwards (issue 10, F9b; review 3, N3).
@Suite struct LocalAPISlowClientTests {
    let dir = TemporaryDirectory()

    /// Which of `fds` the agent has closed.
    static func closed(_ fds: [Int32]) -> Set<Int32> {
        var out = Set<Int32>()
        for fd in fds {
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno == ECONNRESET) { out.insert(fd) }
        }
        return out
    }

    @Test func partialRequestsMakeRoomAndAreClosed() async throws {
        let a = try await AgentProcess(Device(data: dir.path + "/a"))
        let port = UInt16(try #require(URL(string: a.client.baseURL)?.port))
        let limit = 256, extra = 16
        let started = Date()
        let fds = try await onDedicatedThread { () throws -> [Int32] in
            var fds: [Int32] = []
            for _ in 0..<(limit + extra) {
                let fd = try connectLoopback(port)
                fds.append(fd)
                let partial = "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                _ = partial.withCString { write(fd, $0, strlen($0)) }
            }
            return fds
        }
        defer { fds.forEach { close($0) } }
        // Over the limit, the oldest silent connections were closed to make room.
        try await waitUntil("\(extra) connections closed to make room", timeout: 10, interval: 0.05) {
            Self.closed(fds).count >= extra
        }
        let early = Self.closed(fds)
        // While the rest are held, a client with the token gets in (its request evicts a silent one).
        #expect(try await a.status()["peers"] != nil, "the API answers while \(limit) silent connections are open")
        // Which ones made room can be told only while the idle time has closed none (on a machine
        // so loaded that opening them took longer, every one may be closed by then).
        if Date().timeIntervalSince(started) < Double(10) {
            #expect(early.isSubset(of: Set(fds.prefix(extra * 2))), "the oldest ones make room")
        } else {
            print("LocalAPISlowClientTests: opening \(fds.count) connections took \(Date().timeIntervalSince(started)) s; which ones made room is not checked")
        }
        // Every one is closed once it has sat without a whole request head for the idle time.
        try await waitUntil("every partial connection closed", timeout: 60, interval: 0.2) { Self.closed(fds).count == fds.count }
        #expect(try await a.status()["peers"] != nil, "the API answers afterwards")
    }
}

/// A TCP connection to 127.0.0.1:`port` (blocking).
func connectLoopback(_ port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { close(fd); throw TimedOut(description: "cannot connect to port \(port): errno \(errno)") }
    return fd
}
