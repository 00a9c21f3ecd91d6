import Foundation
import HubSyncBackup
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Hummingbird
import NIOCore

/// The dashboard's page and assets, embedded in the binary (Sources/HubSyncAgent/Dashboard/),
/// each served with its type and a Content-Security-Policy that allows nothing but this origin.
enum DashboardPage {
    /// Scripts, styles, images and connections only from this origin; no inline code, no frames.
    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    /// The files by the name they are served under (`/dashboard/NAME`; `/` is index.html).
    static let assets: [String: (type: String, bytes: [UInt8])] = [
        "index.html": ("text/html; charset=utf-8", PackageResources.index_html),
        "dashboard.css": ("text/css; charset=utf-8", PackageResources.dashboard_css),
        "app.js": ("text/javascript; charset=utf-8", PackageResources.app_js),
        "api.js": ("text/javascript; charset=utf-8", PackageResources.api_js),
        "tabs.js": ("text/javascript; charset=utf-8", PackageResources.tabs_js),
        "icon.svg": ("image/svg+xml", PackageResources.icon_svg),
    ]

    /// The headers every page and asset answer carries.
    static func headers(type: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.cacheControl] = "no-store"
        headers[HTTPFields.Element.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPFields.Element.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPFields.Element.Name("Referrer-Policy")!] = "no-referrer"
        return headers
    }

    static func asset(_ name: String) throws -> Response {
        guard let asset = assets[name] else {
            throw refusal(.notFound, "there is no file /dashboard/\(name); open the dashboard at /")
        }
        return Response(status: .ok, headers: headers(type: asset.type), body: ResponseBody(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }

    /// A refusal as a small HTML page (the page's routes are opened by people, in a browser).
    static func refusal(_ status: HTTPResponse.Status, _ message: String) -> PageError {
        PageError(status: status, message: message)
    }

    struct PageError: HTTPResponseError {
        let status: HTTPResponse.Status
        let message: String
        func response(from request: Request, context: some RequestContext) throws -> Response {
            let text = message.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            let html = """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>HubSync: refused</title>
                <meta name="viewport" content="width=device-width, initial-scale=1"></head>
                <body><h1>HubSync dashboard</h1><p id="refusal" role="alert">\(text)</p></body></html>

                """
            return Response(status: status, headers: DashboardPage.headers(type: "text/html; charset=utf-8"),
                            body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
        }
    }
}

extension Agent {
    /// The page, its assets, sign-in (`/v1/dashboard/...`), and the two actions the page has
    /// beside the record routes: `POST /v1/sync` and `POST /v1/backups`.
    func addDashboardRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in try DashboardPage.asset("index.html") }
        // HEAD of the page (a link checker, `curl -I`): its headers without the body.
        router.head("/") { _, _ in
            var response = try DashboardPage.asset("index.html")
            response.body = ResponseBody()
            return response
        }
        router.get("dashboard/:file") { _, context in try DashboardPage.asset(try context.parameters.require("file")) }
        // A one-time sign-in code; only with the bearer token (`hubsync dashboard`).
        router.post("v1/dashboard/codes") { [self] request, _ in
            guard request.headers[.authorization] != nil else {
                throw APIError(.forbidden, "sign-in codes are given to programs with the bearer token only (`hubsync dashboard`)")
            }
            let (code, expiry) = sessions.mintCode()
            let port = sessions.port.load(ordering: .relaxed)
            return json(["code": .string(code), "url": .string("http://127.0.0.1:\(port)/#code=\(code)"),
                         "expires_at": .string(isoTime(Timestamp(millis: expiry, counter: 0))),
                         "expires_in_seconds": .int(Int64(DashboardSessions.codeLifetime / 1000))], status: .created)
        }
        // The page exchanges its code for the session cookie and its CSRF token.
        router.post("v1/dashboard/session") { [self] request, _ in
            let body = try await bodyObject(request)
            guard let code = body["code"]?.stringValue, !code.isEmpty, code.count <= 128 else {
                throw APIError(.badRequest, "give the sign-in code as {\"code\": \"...\"}; `hubsync dashboard` prints a link with one")
            }
            let redeemed: (id: String, session: DashboardSessions.Session)
            do throws(DashboardSessions.Refusal) { redeemed = try sessions.redeem(code) } catch {
                throw APIError(.unauthorized, error.message)
            }
            var response = sessionJSON(redeemed.session)
            let maxAge = DashboardSessions.sessionLifetime / 1000
            response.headers[.setCookie] = "\(sessions.cookieName)=\(redeemed.id); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(maxAge)"
            response.status = .created
            return response
        }
        router.get("v1/dashboard/session") { [self] request, _ in
            guard let id = sessions.cookie(of: request), let session = sessions.session(id) else {
                throw APIError(.notFound, "this request has no dashboard session (programs use the bearer token)")
            }
            return sessionJSON(session)
        }
        router.delete("v1/dashboard/session") { [self] request, _ in
            if let id = sessions.cookie(of: request) { sessions.end(id) }
            var response = json(["signed_out": true])
            response.headers[.setCookie] = "\(sessions.cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
        router.post("v1/sync") { [self] request, _ in
            let body = try await bodyObject(request)
            var wait: Int64 = 30
            if let given = body["wait_seconds"] {
                guard case .int(let n) = given, (0...120).contains(n) else {
                    throw APIError(.badRequest, "\"wait_seconds\" must be a whole number of 0 to 120")
                }
                wait = n
            }
            return json(await syncNow(waitSeconds: Int(wait)))
        }
        router.post("v1/backups") { [self] _, _ in json(await backupNow(try configuredBackups())) }
        addBackupRoutes(to: router)
        addRestoreRoutes(to: router)
        addExportRoute(to: router)
        router.get("v1/backups/progress") { [self] _, _ in json(backupProgress.json) }
        addConfigRoutes(to: router)
        addEventRoutes(to: router)
    }

    /// `GET /v1/config`: config.json's text as it is (comments too); `PUT /v1/config`
    /// `{"text"}`: checked as the agent checks the file at start, written only when it passes,
    /// then applied as SIGHUP applies it.
    func addConfigRoutes(to router: Router<BasicRequestContext>) {
        let path = directory + "/" + AgentConfiguration.fileName
        router.get("v1/config") { _, _ in
            let data = try await BlockingIO.run { FileManager.default.contents(atPath: path) }
            return json(["path": .string(path), "exists": .bool(data != nil),
                         "text": .string(data.map { String(decoding: $0, as: UTF8.self) } ?? "")])
        }
        router.put("v1/config") { [self] request, _ in
            guard let text = try await bodyObject(request)["text"]?.stringValue else {
                throw APIError(.badRequest, "give the file's new text as {\"text\": \"...\"}")
            }
            do throws(ValidationFailure) { _ = try AgentConfiguration.parse(Data(text.utf8), path: AgentConfiguration.fileName) } catch {
                throw APIError(.badRequest, error.message + "; config.json was left as it was")
            }
            let directory = writerLock.directory
            do {
                try await BlockingIO.run { try directory.writeAtomically(Array(text.utf8), to: AgentConfiguration.fileName, mode: 0o600) }
            } catch {
                throw APIError(.internalServerError, "cannot write \(path): \(error); it was left as it was")
            }
            guard let (applied, restartOnly, overridden) = reloadConfiguration() else {
                throw APIError(.internalServerError, "config.json was written but did not load again; the agent's log says why")
            }
            return json(["saved": true, "applied": .array(applied.map { .string($0) }),
                         "after_restart": .array(restartOnly.map { .string($0) }),
                         "overridden_by_flags": .array(overridden.map { .string($0) })])
        }
    }

    private func sessionJSON(_ session: DashboardSessions.Session) -> Response {
        json(["csrf_token": .string(session.csrf), "csrf_header": .string(AccessMiddleware.csrfHeader.rawName),
              "expires_at": .string(isoTime(Timestamp(millis: session.expiresAt, counter: 0)))])
    }

    /// Runs a repair round with every connected peer, whichever side dialled the session (a
    /// session the peer dialled asks it for one), waits up to `waitSeconds` for each to finish,
    /// and answers each trusted peer: the round it ran, or why none ran.
    func syncNow(waitSeconds: Int) async -> Value {
        let before = Dictionary(node.status().map { ($0.device, $0.lastRepair) }, uniquingKeysWith: { a, _ in a })
        let started = Set(await node.repairAll(askingPeers: true))
        let deadline = ContinuousClock.now + .seconds(waitSeconds)
        // Each round reports its end in the node's status; polled, as the node has no signal for it.
        while ContinuousClock.now < deadline {
            let done = node.status().filter { started.contains($0.device) && $0.lastRepair > (before[$0.device] ?? 0) }
            if done.count == started.count { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        let status = await status()
        let peers: [Value] = status.peers.map { p in
            let device = (try? DeviceID(parsing: p.deviceID))
            var o: [String: Value] = ["device_id": .string(p.deviceID), "device_name": p.deviceName.map { .string($0) } ?? .null,
                                      "connected": .bool(p.connected)]
            let finished = device.map { d in started.contains(d) && node.status().contains { $0.device == d && $0.lastRepair > (before[d] ?? 0) } } ?? false
            if finished, let r = p.lastRepairRound {
                o["round"] = ["records_sent": .int(Int64(r.recordsSent)), "records_received": .int(Int64(r.recordsReceived)),
                              "round_trips": .int(Int64(r.roundTrips)), "bytes_sent": .int(Int64(r.bytesSent)),
                              "bytes_received": .int(Int64(r.bytesReceived)), "milliseconds": .int(Int64(r.milliseconds)),
                              "at": p.lastRepair.map { .string($0) } ?? .null]
            } else if !p.connected {
                o["reason"] = .string("not connected: " + (p.reason ?? "no session"))
            } else if let device, started.contains(device) {
                o["reason"] = .string("the round did not finish within \(waitSeconds) s; its result shows in status when it does")
            } else {
                o["reason"] = .string("the peer dialled this session and its HubSync is older than this one's: it cannot be asked for a "
                    + "round, and runs them itself (every \(status.repairIntervalSeconds) s); Sync now on that device runs one at once")
            }
            return .object(o)
        }
        let ran = peers.filter { $0.objectValue?["round"] != nil }.count
        return ["rounds": .int(Int64(ran)), "peers": .array(peers)]
    }

    /// `backup now` to every configured target, as the schedule takes it; answers each target's
    /// snapshot or why it failed.
    func backupNow(_ schedule: BackupSchedule) async -> Value {
        let results = await runScheduledBackups(schedule, manual: true)
        return ["targets": .array(results.map { target, result in
            switch result {
            case .success(let done):
                ["target": .string(target), "snapshot": .string(done.snapshot), "warning": done.warning.map { .string($0) } ?? .null]
            case .failure(let failure): ["target": .string(target), "error": .string(failure.message)]
            }
        }), "failed": .int(Int64(results.filter { if case .failure = $0.result { true } else { false } }.count))]
    }
}
