import Foundation
import HubSyncAgent
import HubSyncCore
import Testing

/// `GET /metrics` scraped from real agents: every metric is there, and each moves when its
/// cause happens (a put, a sync, a conflict, a backup, an error).
@Suite(.timeLimit(.minutes(10))) struct MetricsTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    func scrape(_ agent: AgentProcess) async throws -> String {
        let (status, text) = try await agent.client.text("/metrics")
        #expect(status == 200, "\(text)")
        return text
    }

    @Test func everyMetricIsThereAndMovesWithItsCause() async throws {
        let a = try await AgentProcess(device("a"))
        var b = try await AgentProcess(device("b"))
        try await pair(a, b)
        let short = String(b.id.prefix(7))
        let first = try await scrape(a)
        for series in ["hubsync_peers_connected 1", "hubsync_peers_trusted 1", "hubsync_conflicts 0",
                       "hubsync_change_propagation_seconds_count", "hubsync_change_propagation_seconds_bucket{le=\"0.005\"}",
                       "hubsync_repair_rounds_total", "hubsync_repair_bytes_total{direction=\"sent\"}",
                       "hubsync_errors_total{kind=\"api_unauthorized\"}", "hubsync_errors_total{kind=\"backup\"}",
                       "hubsync_errors_total{kind=\"audit_refused\"}",
                       "hubsync_peer_sent_bytes_total{peer=\"\(short)\"}", "hubsync_peer_received_bytes_total{peer=\"\(short)\"}"] {
            #expect(first.contains(series), "missing \(series) in:\n\(first)")
        }
        // A put: the record count.
        #expect(metricValue(first, "hubsync_records{collection=\"memories\"}") ?? 0 == 0)
        try await a.api("PATCH", "/v1/records/memories/m1", ["text": "on a"])
        #expect(try await metric(a, "hubsync_records{collection=\"memories\"}") == 1)

        // A sync: B's change arrives at A, timed from B's clock, and its bytes count for B.
        // (Pairing brings B's membership and audit records too, written when B was set up: on a
        // busy machine some are more than a minute old, and may still be arriving here.)
        let fast = "hubsync_change_propagation_seconds_bucket{le=\"60.0\"}"
        let fastBefore = try await metric(a, fast) ?? 0
        let receivedBefore = try await metric(a, "hubsync_peer_received_bytes_total{peer=\"\(short)\"}") ?? 0
        try await b.api("PATCH", "/v1/records/memories/m2", ["text": "on b"])
        // Timed, and fast: B's change reaches A within the smaller buckets (loopback).
        try await waitUntil("B's change on A, timed within a minute", timeout: 15) {
            let records = try await metric(a, "hubsync_records{collection=\"memories\"}")
            let timed = try await metric(a, fast) ?? 0
            return records == 2 && timed > fastBefore
        }
        #expect((try await metric(a, "hubsync_peer_received_bytes_total{peer=\"\(short)\"}") ?? 0) > receivedBefore)

        // A conflict: both write one field while apart; B's agent, started again, brings it to A.
        await b.stop()
        try await a.api("PATCH", "/v1/records/memories/c", ["text": "a's"])
        try await b.device.ok("put", "memories", "c", "--json", #"{"text": "b's"}"#)
        b = try await AgentProcess(device("b"))
        try await waitUntil("the conflict counted on A", timeout: 30) {
            (try await metric(a, "hubsync_conflicts") ?? 0) == 1
        }
        // Repair rounds ran after each fast path, on the side that dialed.
        try await waitUntil("a repair round counted", timeout: 30) {
            let rounds = (try await metric(a, "hubsync_repair_rounds_total") ?? 0) + (try await metric(b, "hubsync_repair_rounds_total") ?? 0)
            return rounds >= 1
        }

        // A backup: its time, duration and the repository's size, by target.
        let repo = "local:" + dir.path + "/repo"
        let target = "hubsync_backup_last_success_timestamp_seconds{target=\"\(repo)\"}"
        #expect(try await metric(a, target) == nil)
        try await a.device.ok("backup", "now", "--repo", repo)
        let time = try #require(try await metric(a, target))
        #expect(abs(time - Date().timeIntervalSince1970) < 120)
        #expect((try await metric(a, "hubsync_backup_repository_bytes{target=\"\(repo)\"}") ?? 0) > 0)
        #expect(try await metric(a, "hubsync_backup_duration_seconds{target=\"\(repo)\"}") != nil)

        // Errors, by kind: a wrong token, a bad write.
        let unauthorized = try await metric(a, "hubsync_errors_total{kind=\"api_unauthorized\"}") ?? 0
        let answer = try rawRequest(port: a.client.port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 401"), "\(answer)")
        #expect(!answer.contains("hubsync_records"))
        #expect(try await metric(a, "hubsync_errors_total{kind=\"api_unauthorized\"}") == unauthorized + 1)
        let bad = try await metric(a, "hubsync_errors_total{kind=\"api_bad_request\"}") ?? 0
        #expect(try await a.request("PATCH", "/v1/records/nowhere/x", body: ["text": "x"]).status == 400)
        #expect(try await metric(a, "hubsync_errors_total{kind=\"api_bad_request\"}") == bad + 1)

        // The metrics token (what Prometheus is given) reads /metrics and nothing else.
        let metricsToken = try String(contentsOfFile: a.device.data + "/metrics.token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var mode = stat()
        #expect(stat(a.device.data + "/metrics.token", &mode) == 0 && mode.st_mode & 0o777 == 0o600)
        let scraped = try rawRequest(port: a.client.port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(metricsToken)\r\nConnection: close\r\n\r\n")
        #expect(scraped.hasPrefix("HTTP/1.1 200") && scraped.contains("hubsync_records"), "\(scraped.prefix(300))")
        for request in ["GET /v1/status", "GET /v1/records/memories", "POST /v1/pairing/invites"] {
            let refused = try rawRequest(port: a.client.port, "\(request) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(metricsToken)\r\n"
                + "Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            #expect(refused.hasPrefix("HTTP/1.1 401") && refused.contains("metrics token"), "\(request): \(refused.prefix(300))")
        }
    }
}
