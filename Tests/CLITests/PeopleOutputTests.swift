import Foundation
import HubSyncCore
import Testing

/// Output for people: cut values, right plurals, one time format, quiet when asked, progress
/// only where someone watches, and a version, a manual page and completions from the parser.
@Suite struct PeopleOutputTests {
    let dir = TemporaryDirectory()

    @Test func versionManPageAndCompletionsComeFromTheParser() async throws {
        let version = try await hubsync(["version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("hubsync "), "\(version.stdout)")
        #expect(try await hubsync(["version", "--json"]).json?.objectValue?["hubsync"]?.stringValue?.isEmpty == false)
        #expect(try await hubsync(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                == version.stdout.split(separator: "\n")[0].dropFirst("hubsync ".count).description)
        let man = try await hubsync(["man"])
        #expect(man.status == 0)
        for expected in [".TH HUBSYNC 1", ".SH EXIT STATUS", #".SS "hubsync repair""#, #".SS "hubsync backup restore""#,
                         #".SS "hubsync peers add""#, "--from-backup"] {
            #expect(man.stdout.contains(expected), "no \(expected) in the manual page")
        }
        for shell in ["bash", "zsh", "fish"] {
            let script = try await hubsync(["--generate-completion-script", shell])
            #expect(script.status == 0 && script.stdout.contains("repair") && script.stdout.contains("backup"), "\(shell)")
        }
    }

    @Test func longValuesAreCutUnlessFullAndCountsHaveTheirNoun() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init", "--name", "laptop")
        let long = String(repeating: "tea ", count: 5_000)
        try await d.ok("put", "memories", "m1", "--json", #"{"text": "\#(long)"}"#)
        for args in [["list", "memories"], ["get", "memories", "m1"]] {
            let cut = try await hubsync(args + ["--data", d.data]).stdout
            #expect(cut.count < 4_200 && cut.contains("--full shows it"), "\(args): \(cut.count) characters")
            let full = try await hubsync(args + ["--full", "--data", d.data]).stdout
            #expect(full.contains(long), "\(args) --full")
        }
        // Wide characters count two columns: a line of them is cut to half as many characters.
        try await d.ok("put", "memories", "wide", "--json", #"{"text": "\#(String(repeating: "漢字", count: 3_000))"}"#)
        let wide = try await hubsync(["get", "memories", "wide", "--data", d.data]).stdout
        let line = try #require(wide.split(separator: "\n").first { $0.contains("漢字") })
        #expect(line.count < 2_100 && line.contains("--full shows it"), "\(line.count) characters")
        let export = try await d.ok("export", dir.path + "/one.jsonl").stdout
        #expect(export.contains("Exported 1 record ") || (export.contains(" records") && !export.contains("Exported 1 records")), "\(export)")
        // --quiet: a write confirms nothing; data asked for still prints.
        let quiet = try await d.ok("put", "memories", "m2", "--json", #"{"text": "x"}"#, "--quiet")
        #expect(quiet.stdout.isEmpty, "\(quiet.stdout)")
        #expect(try await d.ok("get", "memories", "m2", "-q").stdout.contains("x"))
    }

    /// A trusted peer without an address is shown in the one form a household member without one is.
    @Test func aPeerWithoutAnAddressHasOneForm() async throws {
        let d = Device(data: dir.path + "/d"), other = Device(data: dir.path + "/other")
        try await d.ok("init")
        try await other.ok("init")
        let id = try await other.ok("id").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await d.ok("peers", "add", id)
        let line = try #require(try await d.ok("peers").stdout.split(separator: "\n").first { $0.contains(id) })
        #expect(line.hasSuffix("(no address known: found over mDNS, or give one with `hubsync peers add \(id) --address HOST:PORT`)"),
                "\(line)")
    }

    @Test func conflictsAreCutAndNameThisDevice() async throws {
        let a = Device(data: dir.path + "/a"), b = Device(data: dir.path + "/b")
        try await a.ok("init", "--name", "laptop")
        try await b.ok("init", "--name", "desk")
        try await a.ok("put", "memories", "m1", "--json", #"{"text": "start"}"#)
        try await a.ok("export", dir.path + "/a0.jsonl")
        try await b.ok("import", dir.path + "/a0.jsonl")
        try await a.ok("put", "memories", "m1", "--json", #"{"text": "\#(String(repeating: "a", count: 9_000))"}"#)
        try await b.ok("put", "memories", "m1", "--json", #"{"text": "\#(String(repeating: "b", count: 9_000))"}"#)
        try await b.ok("export", dir.path + "/b1.jsonl")
        try await a.ok("import", dir.path + "/b1.jsonl")
        let text = try await a.ok("conflicts").stdout
        #expect(text.hasPrefix("1 conflict:"), "\(text)")
        #expect(text.contains("\"laptop\" (this device)") && text.contains("--full shows it"), "\(text)")
        // The other device by its name too: its signed name record came with its export.
        #expect(text.contains("\"desk\","), "\(text)")
        #expect(text.count < 10_000, "\(text.count) characters")
        #expect(try await a.ok("conflicts", "--full").stdout.contains(String(repeating: "b", count: 9_000)))
        // JSON times: RFC 3339 with milliseconds; the HLC reading in fields named so.
        let record = try #require(try await a.ok("get", "memories", "m1", "--json").json?.objectValue)
        let updated = try #require(record["updated"]?.stringValue)
        #expect(updated.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(updated)")
        #expect(record["updated_hlc"]?.stringValue?.contains(":") == true)
        let version = try #require(record["conflicts"]?.arrayValue?.first?.objectValue?["versions"]?.arrayValue?.first?.objectValue)
        #expect(version["hlc"] != nil && version["written"]?.stringValue?.hasSuffix("Z") == true, "\(version)")
    }

    @Test func progressIsJSONOnlyWithJSONAndNothingInALog() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        var lines = ""
        for i in 0..<3_000 { lines += #"{"collection":"memories","id":"m\#(i)","fields":{"text":"note \#(i)"}}"# + "\n" }
        let file = dir.path + "/many.jsonl"
        try lines.write(toFile: file, atomically: true, encoding: .utf8)
        let plain = try await d.ok("import", file)
        #expect(!plain.stderr.contains("\"event\""), "\(plain.stderr)")
        #expect(plain.stdout.contains("Imported 3000 records"), "\(plain.stdout)")
        let json = try await d.ok("import", file, "--json")
        #expect(json.stderr.contains(#""event":"progress""#), "\(json.stderr)")
    }

    @Test func failuresUnderJSONAreJSONUsageErrorsIncluded() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let rows: [([String], Int32, String)] = [
            (["status", "--json", "--bogus"], 2, "--bogus"),
            (["peers", "add", "nonsense", "--json"], 2, "device ID"),
            (["name", "a\u{1B}b", "--json"], 2, "plain text"),
            (["put", "memories", "m1", "--json", "{bad", "--format", "json"], 2, "invalid JSON"),
            (["id", "--json", "--data", dir.path + "/none"], 1, "hubsync init"),
        ]
        for (args, status, message) in rows {
            let r = try await hubsync(args.contains("--data") ? args : args + ["--data", d.data])
            #expect(r.status == status, "\(args): \(r.status) \(r.stderr)")
            let error = try? JSON.parse(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)).objectValue
            #expect(error?["exit_status"] == .int(Int64(status)), "\(args): \(r.stderr)")
            #expect(error?["error"]?.stringValue?.contains(message) == true, "\(args): \(r.stderr)")
        }
        // Without --json (put's --json is its input), the message stays text.
        let text = try await d.run("put", "memories", "m1", "--json", "{bad")
        #expect(text.status == 2 && text.stderr.hasPrefix("hubsync: "), "\(text.stderr)")
    }

    @Test func backupListLinesUpItsColumns() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init", "--name", "laptop")
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("put", "memories", "m1", "--json", #"{"text": "one"}"#)
        try await d.ok("backup", "now", "--repo", repo)
        var lines = ""
        for i in 0..<120 { lines += #"{"collection":"memories","id":"n\#(i)","fields":{"text":"note"}}"# + "\n" }
        try lines.write(toFile: dir.path + "/more.jsonl", atomically: true, encoding: .utf8)
        try await d.ok("import", dir.path + "/more.jsonl")
        try await d.ok("backup", "now", "--repo", repo)
        let table = try await d.ok("backup", "list", "--repo", repo).stdout.split(separator: "\n").map { Array($0) }
        #expect(table.count == 3, "\(table)")
        // Every column starts where its header does; numbers (the last columns) end where their header ends.
        let header = try #require(table.first)
        let starts = header.indices.filter { $0 > 0 && header[$0] != " " && header[$0 - 1] == " " }
        #expect(starts.count == 4, "\(String(header))")
        for row in table.dropFirst() {
            #expect(row.count == header.count, "rows of different lengths:\n\(table.map { String($0) }.joined(separator: "\n"))")
            for start in starts.prefix(2) { #expect(row[start - 1] == " " && row[start] != " ", "\(String(row))") }
            #expect(String(row).contains("\"laptop\""), "\(String(row))")
        }
    }

    @Test func controlsInIDsFieldNamesAndValuesNeverReachTheTerminal() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        // A field name with an escape sequence and a line break, a value with a C1 CSI, an ID with a bidi override.
        try await d.ok("put", "memories", "bidi\u{202E}gnp.exe", "--json", #"{"text": "x\u009b31m", "\u001b[32mfield": "v", "x\n  text": "FAKE"}"#)
        for args in [["get", "memories", "bidi\u{202E}gnp.exe"], ["list", "memories"]] {
            let out = try await hubsync(args + ["--data", d.data])
            #expect(out.status == 0, "\(args): \(out.stderr)")
            for bad in ["\u{1B}", "\u{9B}", "\u{202E}"] { #expect(!out.stdout.contains(bad), "\(args): \(out.stdout.debugDescription)") }
            #expect(!out.stdout.contains("\n  text: \"FAKE\""), "\(args): a field name faked a line: \(out.stdout)")
            #expect(out.stdout.contains("\\u001b[32mfield") || out.stdout.contains("\\u001b"), "\(args): \(out.stdout)")
        }
        let c1 = try await d.run("put", "memories", "c1\u{9B}31m", "--json", #"{"text": "x"}"#)
        #expect(c1.status == 2 && c1.stderr.contains("control character (U+009B at byte 2)"), "\(c1.stderr)")
    }
}
