import Foundation
import HubSyncCore
import Testing

/// A writer killed with SIGKILL at any moment leaves a store that opens, passes SQLite's
/// integrity check, and holds every write the CLI had reported done.
@Suite struct CrashSafetyTests {
    let dir = TemporaryDirectory()

    /// Writes `count` plain memory records with IDs `prefix-00000`… to a file.
    func plainFile(prefix: String, count: Int) throws -> String {
        let path = "\(dir.path)/\(prefix).jsonl"
        let text = String(repeating: "x", count: 900)
        var out = ""
        for i in 0..<count {
            out += #"{"collection":"memories","id":"\#(prefix)-\#(String(format: "%05d", i))","fields":{"text":"\#(text) \#(i)","tags":["t\#(i % 7)"]}}"#
            out += "\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func killedImportsLoseNothingReportedAndLeaveASoundStore() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        var rng = SystemRandomNumberGenerator()
        for round in 0..<8 {
            let prefix = "r\(round)"
            let file = try plainFile(prefix: prefix, count: 4_000)
            let progress = "\(dir.path)/\(prefix).progress"
            let p = try ChildProcess(hubsyncPath, ["import", file, "--batch", "250", "--json", "--data", d.data], stderr: progress)
            // Wait for a random number of committed batches, reading the progress events.
            let killAfter = Int.random(in: 1...10, using: &rng)
            var reported = 0, events = 0
            try await waitUntil("\(killAfter) progress events of import \(prefix)", timeout: 60, interval: 0.001) {
                let running = p.isRunning // before reading, so a finished import's last events are read
                let text = String(decoding: FileManager.default.contents(atPath: progress) ?? Data(), as: UTF8.self)
                events = 0
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                    if case .int(let done) = (try? JSON.parse(String(line)))?.objectValue?["done"] ?? .null {
                        reported = Int(done)
                        events += 1
                        if events >= killAfter { return true }
                    }
                }
                return !running // the import finished first
            }
            // Then kill at a random moment inside the next batch.
            try await Task.sleep(for: .microseconds(Int.random(in: 0...30_000, using: &rng)))
            await p.stop(SIGKILL)

            let doctor = try #require(try await d.ok("doctor", "--json").json?.objectValue)
            #expect(doctor["store"]?.objectValue?["ok"] == true && doctor["store"]?.objectValue?["level"] == "ok", "round \(round): \(doctor)")
            let listed = try #require(try await d.ok("list", "memories", "--json").json?.arrayValue)
            let ids = Set(listed.compactMap { $0.objectValue?["id"]?.stringValue }.filter { $0.hasPrefix(prefix + "-") })
            // Every record reported done is there: the file's first `reported` records.
            let missing = (0..<reported).map { "\(prefix)-\(String(format: "%05d", $0))" }.filter { !ids.contains($0) }
            #expect(missing.isEmpty, "round \(round): \(missing.count) reported records missing")
            #expect(ids.count >= reported)
        }
        // The store still takes writes, and a re-import completes what was cut short.
        try await d.ok("import", try plainFile(prefix: "r0", count: 4_000))
        #expect(try await d.ok("get", "memories", "r0-03999", "--json").json?.objectValue?["id"] == "r0-03999")
    }

    @Test func tenThousandPlainRecordsImportAndASecondImportChangesNothing() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let file = try plainFile(prefix: "bulk", count: 10_000)
        let first = try #require(try await d.ok("import", file, "--json").json?.objectValue)
        #expect(first["written"] == 10_000)
        let second = try #require(try await d.ok("import", file, "--json").json?.objectValue)
        #expect(second["written"] == 0)
        #expect(second["unchanged"] == 10_000)
        #expect(try await d.ok("list", "memories", "--json").json?.arrayValue?.count == 10_000)
    }
}
