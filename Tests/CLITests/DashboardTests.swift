import Foundation
import HubSyncCore
import Testing

/// The dashboard's sign-in and safety rules over real HTTP to a real agent (protocol/SPEC.md 9):
/// the printed link's one-time code, the session cookie and its CSRF token, the `Host` rule, and
/// the page's files with their types and Content-Security-Policy. The browser itself:
/// DashboardBrowserTests.
@Suite struct DashboardTests {
    let dir = TemporaryDirectory()

    /// One raw HTTP/1.1 request to the agent's API; the status, the headers (lowercased names)
    /// and the body.
    static func send(_ port: UInt16, _ method: String, _ path: String, host: String? = nil, headers: [String: String] = [:],
                     body: String? = nil) async throws -> (status: Int, headers: [String: String], body: String) {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\nConnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        let request = text
        let answer = try await onDedicatedThread { try rawRequest(port: port, request) }
        guard let split = answer.range(of: "\r\n\r\n") else { throw CommandFailed(description: "no HTTP answer: \(answer)") }
        let lines = answer[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var content = String(answer[split.upperBound...])
        // A chunked body: the chunks' text without their size lines is enough for `contains`.
        if fields["transfer-encoding"] == "chunked" {
            content = content.split(separator: "\r\n").enumerated().filter { $0.offset % 2 == 1 }.map(\.element).joined()
        }
        return (status, fields, content)
    }

    /// A new code from `hubsync dashboard --json`.
    static func code(_ d: Device) async throws -> String {
        let answer = try #require(try await d.ok("dashboard", "--json").json?.objectValue)
        let url = try #require(answer["url"]?.stringValue)
        #expect(answer["expires_in_seconds"] == .int(120))
        return String(try #require(url.split(separator: "#code=").last))
    }

    @Test func signInByTheLinkThenCookieAndCSRF() async throws {
        let d = Device(data: dir.path + "/a")
        let agent = try await AgentProcess(d)
        let port = agent.client.port
        let printed = try await d.ok("dashboard").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(printed.hasPrefix("http://127.0.0.1:\(port)/#code="), "\(printed)")

        // Without credentials: the page loads (it holds no data), the API does not.
        let page = try await Self.send(port, "GET", "/")
        #expect(page.status == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        #expect(page.headers["content-security-policy"]?.contains("script-src 'self'") == true)
        #expect(page.headers["x-frame-options"] == "DENY")
        #expect(page.body.contains("<script type=\"module\" src=\"/dashboard/app.js\">"))
        let script = try await Self.send(port, "GET", "/dashboard/app.js")
        #expect(script.status == 200 && script.headers["content-type"] == "text/javascript; charset=utf-8")
        #expect(try await Self.send(port, "GET", "/dashboard/dashboard.css").headers["content-type"] == "text/css; charset=utf-8")
        let missing = try await Self.send(port, "GET", "/dashboard/../api.token")
        #expect(missing.status == 404 && !missing.body.contains(agent.client.token))
        let status = try await Self.send(port, "GET", "/v1/status")
        #expect(status.status == 401 && status.body.contains("hubsync dashboard"))

        // The code is exchanged once for the cookie and the CSRF token.
        let code = String(printed.split(separator: "#code=").last!)
        let signIn = try await Self.send(port, "POST", "/v1/dashboard/session", body: #"{"code": "\#(code)"}"#)
        #expect(signIn.status == 201, "\(signIn)")
        let cookie = try #require(signIn.headers["set-cookie"])
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.hasPrefix("hubsync_session_\(port)="))
        let session = String(cookie.split(separator: ";")[0])
        let csrf = try #require(try JSON.parse(Array(signIn.body.utf8)).objectValue?["csrf_token"]?.stringValue)
        let again = try await Self.send(port, "POST", "/v1/dashboard/session", body: #"{"code": "\#(code)"}"#)
        #expect(again.status == 401 && again.body.contains("used already") && again.headers["set-cookie"] == nil, "\(again)")

        // With the cookie: reads need nothing more, writes need the CSRF token (and no foreign Origin).
        #expect(try await Self.send(port, "GET", "/v1/status", headers: ["Cookie": session]).status == 200)
        let resumed = try await Self.send(port, "GET", "/v1/dashboard/session", headers: ["Cookie": "other=1; " + session])
        #expect(resumed.status == 200 && resumed.body.contains(csrf))
        let write = #"{"text": "from the page"}"#
        let noToken = try await Self.send(port, "PATCH", "/v1/records/memories/m1", headers: ["Cookie": session], body: write)
        #expect(noToken.status == 403 && noToken.body.contains("CSRF"), "\(noToken)")
        let wrongToken = try await Self.send(port, "PATCH", "/v1/records/memories/m1",
                                             headers: ["Cookie": session, "X-CSRF-Token": String(csrf.reversed())], body: write)
        #expect(wrongToken.status == 403)
        let foreign = try await Self.send(port, "PATCH", "/v1/records/memories/m1",
                                          headers: ["Cookie": session, "X-CSRF-Token": csrf, "Origin": "http://rebind.test:\(port)"], body: write)
        #expect(foreign.status == 403 && foreign.body.contains("another origin"))
        #expect(await agent.record("memories", "m1") == nil, "a refused write wrote nothing")
        let written = try await Self.send(port, "PATCH", "/v1/records/memories/m1",
                                          headers: ["Cookie": session, "X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:\(port)"], body: write)
        #expect(written.status == 200, "\(written)")
        #expect(await agent.record("memories", "m1")?["fields"]?.objectValue?["text"] == .string("from the page"))
        // A session cannot make more codes; the token can.
        let mint = try await Self.send(port, "POST", "/v1/dashboard/codes", headers: ["Cookie": session, "X-CSRF-Token": csrf], body: "{}")
        #expect(mint.status == 403)

        // The change feed resumes after the Last-Event-ID a reconnecting EventSource sends.
        let sequence = try #require(try JSON.parse(Array(written.body.utf8)).objectValue?["sequence"])
        guard case .int(let seq) = sequence else { throw CommandFailed(description: "no sequence in \(written.body)") }
        let feed = try await onDedicatedThread {
            try rawRequest(port: port, "GET /v1/changes HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nCookie: \(session)\r\n"
                + "Last-Event-ID: \(seq - 1)\r\nConnection: close\r\n\r\n", until: ": live")
        }
        #expect(feed.contains("id: \(seq)\n") && feed.contains("\"id\":\"m1\""), "\(feed)")
        // Signed out, the cookie is worth nothing.
        #expect(try await Self.send(port, "DELETE", "/v1/dashboard/session", headers: ["Cookie": session, "X-CSRF-Token": csrf]).status == 200)
        #expect(try await Self.send(port, "GET", "/v1/status", headers: ["Cookie": session]).status == 401)
        // The bearer token keeps working for programs.
        #expect(try await agent.request("GET", "/v1/status").status == 200)
    }

    /// One agent, every `Host` form: only a loopback name with the API's port reaches the page or the sign-in.
    @Test func theHostRule() async throws {
        let d = Device(data: dir.path + "/h")
        let agent = try await AgentProcess(d)
        let port = agent.client.port
        let cases: [(String, Bool)] = [
            ("rebind.test:PORT", false), ("127.0.0.1.rebind.test:PORT", false), ("localhost.rebind.test:PORT", false),
            ("127.0.0.1:1", false), ("127.0.0.1", false), ("", false), ("127.0.0.1:PORT@rebind.test", false),
            ("[::1]", false), ("127.0.0.256:PORT", false), ("10.77.0.1:PORT", false), ("[::1]x:PORT", false),
            ("127.0.0.1:PORT", true), ("localhost:PORT", true), ("LOCALHOST:PORT", true), ("[::1]:PORT", true), ("127.1.2.3:PORT", true),
        ]
        for (host, admitted) in cases {
            let name = host.replacingOccurrences(of: "PORT", with: "\(port)")
            let page = try await Self.send(port, "GET", "/", host: name)
            #expect((page.status == 200) == admitted, "Host \(name): \(page.status)")
            guard !admitted else { continue }
            #expect(page.status == 421 && page.body.contains("not by a loopback address"), "\(page)")
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            let code = try await Self.code(d)
            let exchange = try await Self.send(port, "POST", "/v1/dashboard/session", host: name, body: #"{"code": "\#(code)"}"#)
            #expect(exchange.status == 421 && exchange.headers["set-cookie"] == nil)
        }
    }

    /// A program with the token is not a page of another site: its `Host` is not checked.
    @Test func theTokenWorksWhateverTheHost() async throws {
        let d = Device(data: dir.path + "/t")
        let agent = try await AgentProcess(d)
        let port = agent.client.port, bearer = ["Authorization": "Bearer \(agent.client.token)"]
        #expect(try await Self.send(port, "GET", "/v1/status", host: "127.0.0.1", headers: bearer).status == 200)
        #expect(try await Self.send(port, "GET", "/v1/status", host: "rebind.test:\(port)", headers: bearer).status == 200)
        let rebound = try await Self.send(port, "GET", "/v1/status", host: "rebind.test:\(port)")
        #expect(rebound.status == 421 && rebound.body.contains("\"error\""))
        let wrong = try await Self.send(port, "GET", "/v1/status", headers: ["Authorization": "Bearer nope"])
        #expect(wrong.status == 401)
        // The metrics token reads /metrics alone, whatever the route or method.
        let metrics = try String(contentsOfFile: d.data + "/metrics.token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let scrape = ["Authorization": "Bearer \(metrics)"]
        #expect(try await Self.send(port, "GET", "/metrics", headers: scrape).status == 200)
        #expect(try await Self.send(port, "GET", "/v1/status", headers: scrape).status == 401)
        #expect(try await Self.send(port, "POST", "/v1/dashboard/codes", headers: scrape, body: "{}").status == 401)
        #expect(try await Self.send(port, "GET", "/v1/status", host: "rebind.test:\(port)", headers: scrape).status == 401)
    }

    @Test func badAndHostileSignIns() async throws {
        let d = Device(data: dir.path + "/x")
        let agent = try await AgentProcess(d)
        let port = agent.client.port
        for body in ["", "{", "[]", #"{"code": 7}"#, #"{"code": ""}"#, #"{"code": "\#(String(repeating: "a", count: 10_000))"}"#] {
            let r = try await Self.send(port, "POST", "/v1/dashboard/session", body: body)
            #expect(r.status == 400 && r.headers["set-cookie"] == nil, "\(body.prefix(20)): \(r.status) \(r.body)")
        }
        let unknown = try await Self.send(port, "POST", "/v1/dashboard/session", body: #"{"code": "00112233445566778899aabbccddeeff"}"#)
        #expect(unknown.status == 401 && unknown.body.contains("not one this agent gave"))
        // A forged cookie is no session.
        let forged = try await Self.send(port, "GET", "/v1/status", headers: ["Cookie": "hubsync_session_\(port)=\(String(repeating: "0", count: 64))"])
        #expect(forged.status == 401)
        // Many codes guessed one after another: each refused, and a real one still works after.
        for _ in 0..<50 {
            let guess = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            #expect(try await Self.send(port, "POST", "/v1/dashboard/session", body: #"{"code": "\#(guess)"}"#).status == 401)
        }
        let code = try await Self.code(d)
        #expect(try await Self.send(port, "POST", "/v1/dashboard/session", body: #"{"code": "\#(code)"}"#).status == 201)
    }

    @Test func syncAndBackupRoutes() async throws {
        let d = Device(data: dir.path + "/s")
        let agent = try await AgentProcess(d)
        let sync = try await agent.api("POST", "/v1/sync", ["wait_seconds": 1])
        #expect(sync.objectValue?["rounds"] == .int(0) && sync.objectValue?["peers"] == .array([]))
        let bad = try await agent.request("POST", "/v1/sync", body: ["wait_seconds": "soon"])
        #expect(bad.status == 400)
        // config.json through the API: refused text leaves the file, good text applies at once.
        let path = d.data + "/config.json"
        try #"{"repair_interval_seconds": 600}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await agent.api("GET", "/v1/config").objectValue?["text"] == .string(#"{"repair_interval_seconds": 600}"#))
        for text in [#"{"repair_interval_seconds": 0}"#, "{", #"{"frob": 1}"#, "[]", #"{"api": "0.0.0.0:7401"}"#,
                     #"{"listen": "myhost:7400"}"#, #"{"backup": {"targets": ["local:\#(d.data)/backups-here"]}}"#,
                     #"{"backup": {"targets": ["local:relative"]}}"#] {
            let refused = try await agent.request("PUT", "/v1/config", body: ["text": .string(text)])
            #expect(refused.status == 400 && refused.body.objectValue?["error"]?.stringValue?.contains("left as it was") == true, "\(text)")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == #"{"repair_interval_seconds": 600}"#)
        #expect(try await agent.request("PUT", "/v1/config", body: ["txt": "{}"]).status == 400)
        let saved = try await agent.api("PUT", "/v1/config", ["text": "// a comment\n{\"repair_interval_seconds\": 77}\n"])
        #expect(saved.objectValue?["applied"] == .array(["repair_interval_seconds"]))
        // The test's agent runs with --listen and --api: the file's (default) addresses are not used.
        #expect(saved.objectValue?["overridden_by_flags"]?.arrayValue?.contains("api") == true, "\(saved)")
        #expect(try await agent.api("GET", "/v1/status").objectValue?["repair_interval_seconds"] == .int(77))
        let backup = try await agent.request("POST", "/v1/backups", body: [:])
        #expect(backup.status == 409 && backup.body.objectValue?["error"]?.stringValue?.contains("config.json") == true)
        #expect(try await agent.request("GET", "/v1/backups/snapshots").status == 409)

        // With a target: none yet, then Backup now's snapshot, listed and verified; only configured targets are read.
        let repo = "local:" + dir.path + "/repo-s"
        try await agent.api("PUT", "/v1/config", ["text": .string(#"{"backup": {"targets": ["\#(repo)"]}}"#)])
        let none = try await agent.api("GET", "/v1/backups/snapshots").objectValue?["targets"]?.arrayValue?.first?.objectValue
        #expect(none?["snapshots"] == .array([]) && none?["error"]?.stringValue?.contains("Backup now") == true, "\(String(describing: none))")
        let made = try await agent.api("POST", "/v1/backups", [:]).objectValue?["targets"]?.arrayValue?.first?.objectValue
        let snapshot = try #require(made?["snapshot"]?.stringValue)
        #expect(made?["warning"] == .null, "\(String(describing: made))")
        let listed = try await agent.api("GET", "/v1/backups/snapshots").objectValue?["targets"]?.arrayValue?.first?.objectValue
        #expect(listed?["snapshots"]?.arrayValue?.compactMap { $0.objectValue?["id"]?.stringValue } == [snapshot])
        // What a backup warns of reaches the one who asked for it, and status, not only the log.
        let repoID = try #require(try FileManager.default.contentsOfDirectory(atPath: d.data + "/backup-cache").first { !$0.contains(".") })
        try FileManager.default.createDirectory(atPath: d.data + "/backup-damage", withIntermediateDirectories: true)
        try "not a pack\n".write(toFile: d.data + "/backup-damage/" + repoID, atomically: true, encoding: .utf8)
        let warned = try await agent.api("POST", "/v1/backups", [:]).objectValue?["targets"]?.arrayValue?.first?.objectValue
        #expect(warned?["warning"]?.stringValue?.contains("has 1 line that is not a pack ID") == true, "\(String(describing: warned))")
        let status = try await agent.api("GET", "/v1/status").objectValue?["backup"]?.objectValue
        #expect(status?["warning"]?.stringValue?.contains("not a pack ID") == true, "\(String(describing: status))")
        // A pack this device found damaged earlier fails a verify that does not read it; one that reads it clears it.
        let packs = try #require(FileManager.default.enumerator(atPath: dir.path + "/repo-s/data")?.allObjects as? [String])
        let pack = try #require(packs.compactMap { $0.split(separator: "/").last.map(String.init) }.first { $0.count == 64 })
        try (pack + "\n").write(toFile: d.data + "/backup-damage/" + repoID, atomically: true, encoding: .utf8)
        let known = try await agent.api("POST", "/v1/backups/verify", ["target": .string(repo)]).objectValue
        #expect(known?["ok"] == .bool(false) && known?["problems"]?.arrayValue?.contains {
            $0.stringValue?.contains(pack) == true && $0.stringValue?.contains("not read again now") == true
        } == true, "\(String(describing: known))")
        let verified = try await agent.api("POST", "/v1/backups/verify", ["target": .string(repo), "read_data": true]).objectValue
        #expect(verified?["ok"] == .bool(true) && verified?["packs_read"] != .int(0))
        #expect(!FileManager.default.fileExists(atPath: d.data + "/backup-damage/" + repoID), "a verify that read every pack emptied the list")
        for body: Value in [["target": "local:/etc"], ["target": .string(repo), "read_data": "yes"], [:]] {
            #expect(try await agent.request("POST", "/v1/backups/verify", body: body).status == 400, "\(body)")
        }
        #expect(try await agent.api("GET", "/v1/backups/progress").objectValue?["running"] == .bool(false))
    }
}
