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

    @Test func killedImportsLoseNothingReportedAndLeaveASoundStore() throws {
        let d = Device(data: dir.path + "/d")
        try d.ok("init")
        var rng = SystemRandomNumberGenerator()
        for round in 0..<8 {
            let prefix = "r\(round)"
            let file = try plainFile(prefix: prefix, count: 4_000)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: hubsyncPath)
            p.arguments = ["import", file, "--batch", "250", "--data", d.data]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            // Wait for a random number of committed batches, reading the progress events.
            let killAfter = Int.random(in: 1...10, using: &rng)
            var reported = 0, events = 0, buffer = Data()
            let reader = err.fileHandleForReading
            readLoop: while events < killAfter {
                let chunk = reader.availableData
                if chunk.isEmpty { break } // the import finished first
                buffer.append(chunk)
                while let nl = buffer.firstIndex(of: 10) {
                    let line = buffer[buffer.startIndex..<nl]
                    buffer = Data(buffer[buffer.index(after: nl)...])
                    if case .int(let done) = (try? JSON.parse([UInt8](line)))?.objectValue?["done"] ?? .null {
                        reported = Int(done)
                        events += 1
                        if events >= killAfter { break readLoop }
                    }
                }
            }
            // Then kill at a random moment inside the next batch.
            usleep(UInt32.random(in: 0...30_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()

            let doctor = try #require(try d.ok("doctor", "--json").json?.objectValue)
            #expect(doctor["store"]?.objectValue?["ok"] == true, "round \(round): \(doctor)")
            let listed = try #require(try d.ok("list", "memories", "--json").json?.arrayValue)
            let ids = Set(listed.compactMap { $0.objectValue?["id"]?.stringValue }.filter { $0.hasPrefix(prefix + "-") })
            // Every record reported done is there: the file's first `reported` records.
            let missing = (0..<reported).map { "\(prefix)-\(String(format: "%05d", $0))" }.filter { !ids.contains($0) }
            #expect(missing.isEmpty, "round \(round): \(missing.count) reported records missing")
            #expect(ids.count >= reported)
        }
        // The store still takes writes, and a re-import completes what was cut short.
        try d.ok("import", try plainFile(prefix: "r0", count: 4_000))
        #expect(try d.ok("get", "memories", "r0-03999", "--json").json?.objectValue?["id"] == "r0-03999")
    }

    @Test func tenThousandPlainRecordsImportAndASecondImportChangesNothing() throws {
        let d = Device(data: dir.path + "/d")
        try d.ok("init")
        let file = try plainFile(prefix: "bulk", count: 10_000)
        let first = try #require(try d.ok("import", file, "--json").json?.objectValue)
        #expect(first["written"] == 10_000)
        let second = try #require(try d.ok("import", file, "--json").json?.objectValue)
        #expect(second["written"] == 0)
        #expect(second["unchanged"] == 10_000)
        #expect(try d.ok("list", "memories", "--json").json?.arrayValue?.count == 10_000)
    }
}
