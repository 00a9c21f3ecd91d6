import Foundation
import HubSyncCore
import Testing

/// Bad input: a clear message, exit 2 (usage) or 1 (failure), and the store unchanged.
@Suite struct BadInputTests {
    let dir = TemporaryDirectory()

    func seeded() async throws -> Device {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("put", "personas", "ada", "--json", #"{"name": "Ada"}"#)
        return d
    }

    func snapshot(_ d: Device) async throws -> String {
        try await d.ok("export", "-").stdout.split(separator: "\n").dropFirst().joined(separator: "\n")
    }

    @Test(arguments: [
        (["put", "personas", "ada", "--json", "{bad"], Int32(2), "invalid JSON"),
        (["put", "personas", "ada", "--json", "[1]"], 2, "must be a JSON object"),
        (["put", "widgets", "w", "--json", "{}"], 2, "unknown collection"),
        (["list", "devices"], 2, "`hubsync peers` lists the devices"),
        (["get", "audit", "x"], 2, "`hubsync audit` shows it"),
        (["put", "personas", "ada", "--json", #"{"name": 5}"#], 2, "must be a string"),
        (["put", "personas", "bob", "--json", #"{"style": "x"}"#], 2, "needs the field \"name\""),
        (["put", "personas", "ada", "--json", #"{"name": null}"#], 2, "cannot be removed"),
        (["get", "personas", "nobody"], 2, "no record personas/nobody"),
        (["delete", "personas", "nobody"], 2, "no record"),
        (["resolve", "personas", "ada", "name", "--value", #""x""#], 2, "no conflict"),
        (["resolve", "personas", "ada", "name", "--value", "not json"], 2, "invalid JSON"),
        (["add", "personas", "ada", "name", "x"], 2, "not a set"),
        (["list", "memories", "--limit", "-3"], 2, "--limit"),
        (["put", "personas", "ada"], 2, "Missing expected argument"),
        (["frobnicate"], 2, "Unknown option"),
        (["peers", "add", "AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA", "--address", "127.0.0.1:99999"],
         2, "port of 1–65535"),
        (["import", "/tmp"], 2, "is a folder"),
        (["put", "personas", "ada", "--json", #"{"name": "A"}"#, "--frob"], 2, "Unknown option"),
    ])
    func refusedWithAMessageAndNothingChanged(args: [String], status: Int32, message: String) async throws {
        let d = try await seeded()
        let before = try await snapshot(d)
        let r = try await hubsync(args + ["--data", d.data])
        #expect(r.status == status, "\(args): \(r.stderr)")
        #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        #expect(try await snapshot(d) == before)
    }

    @Test func aCorruptExportLineImportsNothing() async throws {
        let d = try await seeded()
        let other = Device(data: dir.path + "/other")
        try await other.ok("init")
        try await other.ok("put", "memories", "m1", "--json", #"{"text": "one"}"#)
        try await other.ok("put", "memories", "m2", "--json", #"{"text": "two"}"#)
        var lines = try await other.ok("export", "-").stdout.split(separator: "\n").map(String.init)
        let two = try #require(lines.firstIndex { $0.contains(#""two""#) })
        lines[two] = lines[two].replacingOccurrences(of: "two", with: "tvo") // damaged in transit
        let file = dir.path + "/damaged.jsonl"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let before = try await snapshot(d)
        let r = try await d.run("import", file)
        #expect(r.status == 2) // bad input, as the README's exit statuses say
        #expect(r.stderr.contains("damaged.jsonl:\(two + 1)"), "\(r.stderr)")
        #expect(r.stderr.contains("does not match its digest"))
        #expect(r.stderr.contains("nothing was imported"))
        #expect(try await snapshot(d) == before)
        // A line that is not JSON at all, in a file of plain records.
        try "{\"collection\":\"memories\",\"id\":\"a\",\"fields\":{\"text\":\"x\"}}\n{oops\n".write(toFile: file, atomically: true, encoding: .utf8)
        let r2 = try await d.run("import", file)
        #expect(r2.status == 2)
        #expect(r2.stderr.contains("damaged.jsonl:2: invalid JSON"))
        #expect(try await snapshot(d) == before)
    }

    /// Another household's export: its devices and audit records are left out, counted under
    /// one name that covers both (a helper saw audit records counted as membership records).
    @Test func anotherHouseholdsMembershipAndAuditRecordsAreLeftOut() async throws {
        let d = try await seeded()
        let other = Device(data: dir.path + "/elsewhere")
        try await other.ok("init")
        try await other.ok("put", "memories", "far", "--json", #"{"text": "from elsewhere"}"#)
        // A backup writes an entry into the household's audit journal.
        try await other.ok("backup", "now", "--repo", "local:" + dir.path + "/elsewhere-repo")
        let file = dir.path + "/elsewhere.jsonl"
        try await other.ok("export", file)
        let exported = try String(contentsOfFile: file, encoding: .utf8)
        #expect(exported.contains(#""collection":"audit""#), "the export holds the other household's audit entries")
        let r = try await d.ok("import", file)
        #expect(r.stdout.contains("membership or audit record") && r.stdout.contains("of another household"), "\(r.stdout)")
        #expect(try await d.ok("get", "memories", "far").stdout.contains("from elsewhere"))
    }

    /// Records are checked against the store a window at a time: the first bad record in the
    /// file is still the one named, whether a later line is bad too or the bad one lies past the
    /// first window, and nothing of the file is imported.
    @Test func theFirstBadRecordOfALongFileIsNamed() async throws {
        let d = try await seeded()
        let before = try await snapshot(d)
        func line(_ i: Int, _ fields: String) -> String { #"{"collection":"personas","id":"p\#(i)","fields":\#(fields)}"# }
        let good = #"{"name":"P"}"#
        // Line 3 lacks a new persona's name (found when its window is checked); line 5 is not JSON.
        var lines = (1...700).map { line($0, good) }
        lines[2] = line(3, #"{"style":"x"}"#)
        lines[4] = "{oops"
        let file = dir.path + "/long.jsonl"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try await d.run("import", file)
        #expect(r.status == 2)
        #expect(r.stderr.contains("long.jsonl:3: new record personas/p3 needs the field \"name\""), "\(r.stderr)")
        // Past the first window of records: line 650.
        lines = (1...700).map { line($0, good) }
        lines[649] = line(650, #"{"style":"x"}"#)
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r2 = try await d.run("import", file)
        #expect(r2.status == 2)
        #expect(r2.stderr.contains("long.jsonl:650: new record personas/p650 needs the field \"name\""), "\(r2.stderr)")
        #expect(try await snapshot(d) == before)
        // The same file made whole imports every record.
        lines[649] = line(650, good)
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r3 = try await d.run("import", file, "--json")
        #expect(r3.status == 0, "\(r3.stderr)")
        #expect(try JSON.parse(r3.stdout).objectValue?["create"] == 700)
    }

    /// The file is parsed on a second thread, in chunks of 256 lines: a refused record in one
    /// chunk is still named before a line that is not JSON in a later one.
    @Test func aRefusedRecordIsNamedBeforeALaterLineThatIsNotJSON() async throws {
        let d = try await seeded()
        let before = try await snapshot(d)
        func line(_ i: Int, _ fields: String) -> String { #"{"collection":"personas","id":"p\#(i)","fields":\#(fields)}"# }
        var lines = (1...700).map { line($0, #"{"name":"P"}"#) }
        lines[299] = line(300, #"{"style":"x"}"#)
        lines[599] = "{oops"
        let file = dir.path + "/chunks.jsonl"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try await d.run("import", file)
        #expect(r.status == 2)
        #expect(r.stderr.contains("chunks.jsonl:300: new record personas/p300 needs the field \"name\""), "\(r.stderr)")
        #expect(try await snapshot(d) == before)
    }

    /// Puts on one record that pass one by one but not together: the check measures each
    /// against the record as the lines before it left it, so the file is refused whole, not cut
    /// off by the store after its first batches were written.
    @Test func repeatedPutsOnOneRecordAreMeasuredTogether() async throws {
        let d = try await seeded()
        let before = try await snapshot(d)
        let big = String(repeating: "x", count: 300 * 1024)
        var lines = (1...1_499).map { #"{"collection":"memories","id":"m\#($0)","fields":{"text":"t"}}"# }
        for (n, field) in ["a", "b", "c"].enumerated() {
            lines.insert(#"{"collection":"memories","id":"cum","fields":{"text":"t","\#(field)":"\#(big)"}}"#, at: 500 * (n + 1))
        }
        let file = dir.path + "/repeated.jsonl"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try await d.run("import", file)
        #expect(r.status == 2, "\(r.stderr)")
        // The third put (line 1,501) is the one that passes the limit.
        #expect(r.stderr.contains("repeated.jsonl:1501: memories/cum would be"), "\(r.stderr)")
        #expect(r.stderr.contains("over the 768 KiB"), "\(r.stderr)")
        #expect(r.stderr.contains("nothing was imported"), "\(r.stderr)")
        #expect(try await snapshot(d) == before)
    }

    /// A line that gives a record the file gave before, with the same fields, changes nothing:
    /// the dry run says so, as the import does, and a line that does change it is an update.
    @Test func aDryRunCountsARepeatedLineAsTheImportDoes() async throws {
        let d = try await seeded()
        let file = dir.path + "/again.jsonl"
        try [#"{"collection":"memories","id":"twice","fields":{"text":"same","tags":["a"]}}"#,
             #"{"collection":"memories","id":"twice","fields":{"text":"same","tags":["a"]}}"#,
             #"{"collection":"memories","id":"thrice","fields":{"text":"one"}}"#,
             #"{"collection":"memories","id":"thrice","fields":{"text":"two"}}"#,
             #"{"collection":"memories","id":"thrice","fields":{"text":"two"}}"#].joined(separator: "\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let dry = try #require(try await d.ok("import", file, "--dry-run", "--json").json?.objectValue)
        #expect(dry["create"] == 2 && dry["update"] == 1 && dry["unchanged"] == 2, "\(dry)")
        let done = try #require(try await d.ok("import", file, "--json").json?.objectValue)
        #expect(done["written"] == 3 && done["unchanged"] == 2, "\(done)")
        #expect(try await d.ok("get", "memories", "thrice", "--json").json?.objectValue?["fields"]?.objectValue?["text"] == "two")
        // A set field is what the line gives (not the elements of every line so far), in any order;
        // a record the store holds is where its lines start.
        try await d.ok("put", "memories", "held", "--json", #"{"text": "x", "tags": ["a", "b"]}"#)
        func line(_ id: String, _ tags: String) -> String { #"{"collection":"memories","id":"\#(id)","fields":{"text":"x","tags":\#(tags)}}"# }
        for (lines, updated, unchanged) in [([line("s1", #"["a","b"]"#), line("s1", #"["a"]"#), line("s1", #"["b","a"]"#)], 2, 0),
                                            ([line("s2", #"["a","b"]"#), line("s2", #"["a"]"#), line("s2", #"["a"]"#)], 1, 1),
                                            ([line("held", #"["a"]"#), line("held", #"["a"]"#)], 1, 1)] {
            try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let plan = try #require(try await d.ok("import", file, "--dry-run", "--json").json?.objectValue)
            let created = lines[0].contains("held") ? 0 : 1
            #expect(plan["create"] == .int(Int64(created)) && plan["update"] == .int(Int64(updated))
                    && plan["unchanged"] == .int(Int64(unchanged)), "\(lines) \(plan)")
            let real = try #require(try await d.ok("import", file, "--json").json?.objectValue)
            #expect(real["written"] == .int(Int64(created + updated)) && real["unchanged"] == .int(Int64(unchanged)), "\(lines) \(real)")
        }
        // An exported state given twice: the second changes nothing, in the plan and in the import
        // (whatever the batch size).
        let exported = try #require(try await d.ok("export", "-").stdout.split(separator: "\n").first { $0.contains(#""id":"thrice""#) })
        let fresh = Device(data: dir.path + "/fresh")
        try await fresh.ok("init")
        try [String(exported), String(exported)].joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let plan = try #require(try await fresh.ok("import", file, "--dry-run", "--json").json?.objectValue)
        #expect(plan["create"] == 1 && plan["unchanged"] == 1, "\(plan)")
        let merged = try #require(try await fresh.ok("import", file, "--json").json?.objectValue)
        #expect(merged["merged"] == 1 && merged["unchanged"] == 1, "\(merged)")
    }

    @Test func initNeverOverwritesAnIdentity() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let first = try await d.ok("id").stdout
        let keyBefore = try Data(contentsOf: URL(fileURLWithPath: d.data + "/identity.key"))
        let r = try await d.run("init")
        #expect(r.status == 1)
        #expect(r.stderr.contains("already has an identity"))
        #expect(try await d.ok("id").stdout == first)
        #expect(try Data(contentsOf: URL(fileURLWithPath: d.data + "/identity.key")) == keyBefore)
    }

    @Test func anIdentityKeyReadableByOthersIsRefused() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        chmod(d.data + "/identity.key", 0o644)
        let r = try await d.run("get", "personas", "x")
        #expect(r.status == 1)
        #expect(r.stderr.contains("chmod 600"))
    }

    @Test func commandsWithoutADeviceSayHowToCreateOne() async throws {
        let r = try await hubsync(["list", "memories", "--data", dir.path + "/none"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("hubsync init"))
    }

    @Test(arguments: ["init", "id", "put", "get", "list", "delete", "undelete", "add", "remove", "conflicts",
                      "resolve", "export", "import", "doctor", "run", "status"])
    func everyCommandHasHelp(command: String) async throws {
        let r = try await hubsync([command, "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("--data"))
        #expect(r.stdout.contains("USAGE"))
    }
}

@Suite struct PeerCommandHelpTests {
    @Test(arguments: [["peers", "add"], ["peers", "remove"], ["peers", "list"]])
    func peerCommandsHaveHelp(command: [String]) async throws {
        let r = try await hubsync(command + ["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("--data"))
    }

    @Test func aMistypedDeviceIDIsRefusedWithAHint() async throws {
        let dir = TemporaryDirectory()
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let r = try await d.run("peers", "add", "AAAAAAA-BBBBBBB")
        #expect(r.status == 2)
        #expect(r.stderr.contains("56"))
    }
}
