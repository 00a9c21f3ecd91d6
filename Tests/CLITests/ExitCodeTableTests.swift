import Foundation
import HubSyncCore
import Testing

/// One rule for every command: 0 done, 1 failed, 2 bad usage or input; each failure a sentence
/// on standard error that says what happened, never a library's text.
///
/// `$D` is a device with one record, `$NONE` a directory with no device, `$FILE` a file of
/// plain text (which `import` reads as Markdown memories unless told another format), `$TMP` the test's temporary directory. Every subcommand `hubsync --help` lists
/// (and every subcommand of the groups) must have a row: ``everySubcommandHasARow``.
@Suite struct ExitCodeTableTests {
    static let someID = "AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA"

    static let table: [(args: [String], status: Int32, message: String)] = [
        (["init", "--data", "$D"], 1, "already has an identity"),
        (["init", "--name"], 2, "Missing value"),
        (["init", "--name", "red\u{1B}[31m", "--data", "$TMP/named"], 2, "plain text"),
        (["init", "--name", String(repeating: "n", count: 65), "--data", "$TMP/named"], 2, "at most 64 characters"),
        (["id", "--data", "$NONE"], 1, "hubsync init"),
        (["name", "--data", "$NONE"], 1, "hubsync init"),
        (["name", "  ", "--data", "$D"], 2, "cannot be empty"),
        (["name", "a\u{202E}b", "--data", "$D"], 2, "plain text"),
        (["name", "a", "b", "--data", "$D"], 2, "Unexpected argument"),
        (["id", "extra", "--data", "$D"], 2, "Unexpected argument"),
        (["put", "personas", "ada", "--json", "{bad", "--data", "$D"], 2, "invalid JSON"),
        (["put", "memories", "e0", "--json", "{}", "--data", "$D"], 2, "does not exist"),
        (["put", "widgets", "w", "--json", "{}", "--data", "$D"], 2, "unknown collection"),
        (["put", "personas", "ada", "--json", #"{"name": "A"}"#, "--data", "$NONE"], 1, "hubsync init"),
        // Hostile input: an ID of 10,000 characters, JSON nested 20,000 deep.
        (["put", "memories", String(repeating: "x", count: 10_000), "--json", #"{"text": "t"}"#, "--data", "$D"], 2, "ID"),
        (["put", "memories", "deep", "--json", String(repeating: "[", count: 20_000), "--data", "$D"], 2, "invalid JSON"),
        (["get", "personas", "nobody", "--data", "$D"], 2, "no record personas/nobody"),
        (["get", "widgets", "x", "--data", "$D"], 2, "unknown collection"),
        (["list", "memories", "--limit", "-3", "--data", "$D"], 2, "--limit"),
        (["list", "widgets", "--data", "$D"], 2, "unknown collection"),
        (["list", "memories", "--data", "$NONE"], 1, "hubsync init"),
        (["delete", "personas", "nobody", "--data", "$D"], 2, "no record"),
        (["delete", "personas", "--data", "$D"], 2, "Missing expected argument"),
        (["undelete", "personas", "nobody", "--data", "$D"], 2, "no record"),
        (["add", "personas", "ada", "name", "x", "--data", "$D"], 2, "not a set"),
        (["add", "memories", "new", "tags", "x", "--data", "$D"], 2, "does not exist; create it first"),
        (["remove", "memories", "nobody", "tags", "x", "--data", "$D"], 2, "no record"),
        (["remove", "personas", "ada", "name", "x", "--data", "$D"], 2, "not a set"),
        (["conflicts", "--data", "$NONE"], 1, "hubsync init"),
        (["conflicts", "--frob", "--data", "$D"], 2, "Unknown option"),
        (["resolve", "personas", "ada", "name", "--value", #""x""#, "--data", "$D"], 2, "`hubsync conflicts` lists"),
        (["resolve", "personas", "ada", "name", "--value", "not json", "--data", "$D"], 2, "invalid JSON"),
        (["resolve", "personas", "nobody", "name", "--value", #""x""#, "--data", "$D"], 2, "no record"),
        (["export", "$TMP/no/such/folder/out.jsonl", "--data", "$D"], 2, "does not exist"),
        (["export", "--data", "$D"], 2, "Missing expected argument"),
        (["import", "$TMP", "--data", "$D"], 2, "is a folder"),
        (["import", "$TMP/missing.jsonl", "--data", "$D"], 2, "no such file"),
        (["import", "$FILE", "--format", "hubsync", "--data", "$D"], 2, "invalid JSON"),
        (["import", "$FILE", "--format", "card", "--data", "$D"], 2, "notes.txt"),
        (["export-card", "nobody", "--out", "$TMP/card.json", "--data", "$D"], 2, "no persona"),
        (["export-card", "nobody", "--out", "$TMP/card.gif", "--data", "$D"], 2, ".json, .png or .charx"),
        (["run", "--listen", "127.0.0.1:99999", "--data", "$D"], 2, "port of 0–65535"),
        (["run", "--api", "0.0.0.0:0", "--data", "$D"], 2, "loopback"),
        (["run", "--api", "127.0.0.1:-1", "--data", "$D"], 2, "HOST:PORT"),
        (["run", "--repair-interval", "0", "--data", "$D"], 2, "--repair-interval"),
        (["run", "--listen", "999.1.1.1:0", "--data", "$D"], 2, "IP address"),
        (["run", "--listen", "nosuch.invalid:0", "--data", "$D"], 2, "IP address"),
        (["run", "--log-level", "bogus", "--data", "$D"], 2, "--log-level must be one of"),
        (["run", "--data", "$NONE"], 1, "hubsync init"),
        (["peers", "--data", "$NONE"], 1, "hubsync init"),
        (["peers", "list", "--data", "$NONE"], 1, "hubsync init"),
        (["peers", "add", "AAAAAAA-BBBBBBB", "--data", "$D"], 2, "56"),
        (["peers", "add", someID, "--address", "127.0.0.1:99999", "--data", "$D"], 2, "port of 1–65535"),
        (["peers", "remove", "not-an-id", "--data", "$D"], 2, "device ID"),
        (["peers", "remove", someID, "--data", "$D"], 2, "not a trusted peer"),
        (["pair", "invite", "--data", "$D"], 1, "no agent runs"),
        (["pair", "invite", "--attempts", "0", "--data", "$D"], 2, "--attempts"),
        (["pair", "join", "???", "--data", "$D"], 2, "invite code"),
        (["pair", "join", "ABCD-1234-5678", "--host", "127.0.0.1:99999", "--data", "$D"], 2, "--host"),
        (["pair", "household", "--data", "$NONE"], 1, "hubsync init"),
        (["pair", "remove", "not-an-id", "--data", "$D"], 2, "device ID"),
        (["status", "--data", "$NONE"], 1, "hubsync init"),
        (["status", "--frob"], 2, "Unknown option"),
        (["doctor", "--data", "$NONE"], 1, "FAIL"),
        (["repair", "--data", "$NONE"], 1, "hubsync init"),
        (["repair", "--data", "$D"], 1, "not damaged"),
        (["repair", "--recovery-key", "x", "--data", "$D"], 2, "--from-backup"),
        (["repair", "--force", "--from-backup", "bogus", "--data", "$D"], 2, "(e.g. --from-backup local:"),
        (["backup", "list", "--repo", "local:$TMP/none", "--recovery-key", "AAAAAAA", "--data", "$D"], 2,
         "a recovery key has 56 characters (8 groups of 7, as `hubsync init` printed it); this one has 7"),
        (["backup", "--data", "$D"], 2, "Unknown option"),
        (["backup", "init", "--data", "$D"], 2, "no repository given"),
        (["backup", "now", "--data", "$D"], 2, "no repository given"),
        (["backup", "list", "--repo", "local:$TMP/none", "--data", "$D"], 2, "backup init --repo local:"),
        (["backup", "verify", "--repo", "local:$TMP/none", "--data", "$D"], 2, "no backup repository"),
        (["backup", "verify", "--repo", "local:$TMP", "--data", "$D"], 2, "no backup repository"), // a folder, not a repository
        (["backup", "restore", "latest", "--data", "$D"], 2, "exactly one of"),
        (["backup", "forget", "--repo", "local:$TMP/none", "--data", "$D"], 2, "--keep"),
        (["backup", "forget", "--keep-last", "-1", "--repo", "local:$TMP/none", "--data", "$D"], 2, "must be 0 or more"),
        (["backup", "forget", "--keep-daily", "-0", "--repo", "local:$TMP/none", "--data", "$D"], 2, "without a sign (e.g. --keep-daily 7); got \"-0\""),
        (["backup", "forget", "--keep-last", "0", "--keep-daily", "0", "--repo", "local:$TMP/none", "--data", "$D"], 2,
         "every --keep-* rule given keeps nothing"),
        (["backup", "forget", "--keep-last", "99999999999999999999", "--repo", "local:$TMP/none", "--data", "$D"], 2,
         "at most 1000000"),
        (["backup", "forget", "--keep-weekly", "two", "--repo", "local:$TMP/none", "--data", "$D"], 2, "whole numbers of 0 or more"),
        (["backup", "forget", "--keep-within", "-7d", "--repo", "local:$TMP/none", "--data", "$D"], 2, "--keep-within takes a duration"),
        (["backup", "prune", "--repo", "local:$TMP/none", "--data", "$D"], 2, "no backup repository"),
        (["export", "$TMP", "--data", "$D"], 2, "is a folder; give a file name"),
        (["backup", "now", "--repo", "local:$D/backups-here", "--data", "$D"], 2, "inside the HubSync data directory"),
        (["backup", "init", "--repo", "local:$D", "--data", "$D"], 2, "is a HubSync data directory"),
        (["backup", "init", "--repo", "local:$TMP", "--data", "$D"], 2, "holds other files"),
        (["backup", "init", "--repo", "local:relative/repo", "--data", "$D"], 2, "absolute path"),
        (["backup", "drill", "--repo", "local:$TMP/none", "--data", "$D"], 2, "no backup repository"),
        (["audit", "--data", "$NONE"], 1, "hubsync init"),
        (["audit", "--since", "yesterday", "--data", "$D"], 2, "RFC 3339"),
        (["audit", "--device", "nobody", "--data", "$D"], 2, "--device"),
        (["dashboard", "--data", "$D"], 1, "no agent runs"),
        (["dashboard", "--data", "$NONE"], 1, "hubsync init"),
        (["dashboard", "--open", "extra", "--data", "$D"], 2, "Unexpected argument"),
        (["version", "--frob"], 2, "Unknown option"),
        (["man", "extra"], 2, "Unexpected argument"),
        (["frobnicate"], 2, "Unexpected argument"),
    ]

    /// A device with one record, a directory without one, a plain text file.
    struct Fixture {
        let dir = TemporaryDirectory()
        var device: Device { Device(data: dir.path + "/d") }

        func substitute(_ args: [String]) -> [String] {
            args.map {
                $0.replacingOccurrences(of: "$D", with: dir.path + "/d").replacingOccurrences(of: "$NONE", with: dir.path + "/none")
                    .replacingOccurrences(of: "$FILE", with: dir.path + "/notes.txt").replacingOccurrences(of: "$TMP", with: dir.path)
            }
        }
    }

    static func fixture() async throws -> Fixture {
        let f = Fixture()
        try await f.device.ok("init", "--name", "table")
        try await f.device.ok("put", "personas", "ada", "--json", #"{"name": "Ada"}"#)
        try "just some notes\n".write(toFile: f.dir.path + "/notes.txt", atomically: true, encoding: .utf8)
        return f
    }

    @Test func everyRowHasItsExitStatusAndAClearMessage() async throws {
        let f = try await Self.fixture()
        let before = try await f.device.ok("export", "-").stdout.split(separator: "\n").dropFirst()
        var wrong: [String] = []
        for row in Self.table {
            let r = try await hubsync(f.substitute(row.args), stdin: "")
            let problems = [
                r.status == row.status ? nil : "exit \(r.status), expected \(row.status)",
                (r.stderr + r.stdout).contains(row.message) ? nil : "no \"\(row.message)\" in the message",
                Self.libraryText(in: r.stderr).map { "library text \"\($0)\" reaches a person" },
            ].compactMap { $0 }
            if !problems.isEmpty {
                wrong.append("hubsync \(row.args.joined(separator: " ")): \(problems.joined(separator: "; "))\n    \(r.stderr)")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(Self.table.count) rows:\n\(wrong.joined(separator: "\n"))")
        // Nothing in the table changed the store.
        #expect(try await f.device.ok("export", "-").stdout.split(separator: "\n").dropFirst() == before)
    }

    /// Through a running agent, a missing record and a field without a conflict are input too:
    /// the same exit status 2 as without one, not the agent's HTTP refusal turned into a failure.
    @Test func throughTheAgentAMissingRecordAndNoConflictAreInput() async throws {
        let f = try await Self.fixture()
        let a = try await AgentProcess(f.device)
        for args in [["get", "personas", "nobody"], ["delete", "personas", "nobody"],
                     ["resolve", "personas", "nobody", "name", "--value", #""x""#],
                     ["resolve", "personas", "ada", "name", "--value", #""x""#],
                     ["export-card", "nobody", "--out", f.dir.path + "/card.json"]] {
            let r = try await hubsync(args + ["--data", f.device.data])
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("no record") || r.stderr.contains("no persona")
                    || r.stderr.contains("has no conflict on \"name\"") && r.stderr.contains("`hubsync conflicts` lists"),
                    "\(args): \(r.stderr)")
        }
        await a.stop()
    }

    /// `HUBSYNC_AGENT_TIMEOUT` that is not whole seconds of 1–3600 is refused by name, never
    /// silently replaced by the default.
    @Test func anAgentTimeoutThatIsNotWholeSecondsIsRefused() async throws {
        let f = try await Self.fixture()
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "HUBSYNC_DATA")
        for (value, status) in [("abc", Int32(2)), ("-5", 2), ("0", 2), ("1.5", 2), ("3601", 2), ("120", 0)] {
            environment["HUBSYNC_AGENT_TIMEOUT"] = value
            let r = try await runProgram(hubsyncPath, ["get", "personas", "ada", "--data", f.device.data], environment: environment)
            #expect(r.status == status, "\(value): \(r.stderr)")
            if status == 2 {
                #expect(r.stderr.contains("HUBSYNC_AGENT_TIMEOUT is \"\(value)\"") && r.stderr.contains("whole seconds from 1 to 3600"),
                        "\(value): \(r.stderr)")
            }
        }
    }

    /// Text that only a library writes: errno numbers, Swift type dumps, SQLite's codes.
    static func libraryText(in text: String) -> String? {
        for marker in ["errno", "SQLite error", "Error(", "Failure(", "NIO", "(code:", "descriptor"] where text.contains(marker) {
            return marker
        }
        return nil
    }

    /// Every subcommand `--help` lists, at every level, has a row in the table.
    @Test func everySubcommandHasARow() async throws {
        func subcommands(_ path: [String]) async throws -> [String] {
            let help = try await hubsync(path + ["--help"]).stdout
            guard let range = help.range(of: "SUBCOMMANDS:") else { return [] }
            var words: [String] = []
            for line in help[range.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst() {
                if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
                guard line.hasPrefix("  "), line.dropFirst(2).first?.isLetter == true else { continue }
                words.append(String(line.dropFirst(2).prefix { $0 != " " }))
            }
            return words
        }
        var paths: [[String]] = []
        for command in try await subcommands([]) {
            let nested = try await subcommands([command])
            paths.append([command])
            paths += nested.map { [command, $0] }
        }
        #expect(paths.count > 20, "\(paths)")
        let covered = Self.table.map(\.args)
        for path in paths {
            #expect(covered.contains { Array($0.prefix(path.count)) == path }, "no row for hubsync \(path.joined(separator: " "))")
        }
    }

    @Test func aPortInUseIsASentenceNotTheSocketsText() async throws {
        let f = try await Self.fixture()
        let a = try await AgentProcess(Device(data: f.dir.path + "/a"))
        for (option, value) in [("--listen", a.listen), ("--api", "\(a.client.host):\(a.client.port)")] {
            let other = Device(data: f.dir.path + "/other-\(option.dropFirst(2))")
            try await other.ok("init")
            var args = ["run", "--no-mdns", option, value, "--data", other.data]
            args += option == "--listen" ? ["--api", "127.0.0.1:0"] : ["--listen", "127.0.0.1:0"]
            let r = try await hubsync(args)
            #expect(r.status == 1, "\(option): \(r.stderr)")
            #expect(r.stderr.contains("another program uses that port") && r.stderr.contains(option), "\(option): \(r.stderr)")
            #expect(Self.libraryText(in: r.stderr) == nil, "\(option): \(r.stderr)")
        }
        await a.stop()
    }

    @Test func invalidUTF8IsRefusedWithItsOffsetAndNothingIsWritten() async throws {
        let f = try await Self.fixture()
        let bin = hubsyncPath, data = f.dir.path + "/d"
        // An ID, a field name and a value, each with the byte 0xFF after "ab".
        for args in [#"put memories "$(printf 'ab\377')" --json '{"text": "t"}'"#,
                     #"put memories m1 --json "$(printf '{"text": "ab\377"}')""#,
                     #"put memories m1 --json "$(printf '{"ab\377": "t"}')""#] {
            let r = try await runProgram("/bin/sh", ["-c", "'\(bin)' \(args) --data '\(data)'"])
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("UTF-8") && r.stderr.contains("byte"), "\(args): \(r.stderr)")
        }
        // The same from standard input and from an import file.
        let file = f.dir.path + "/bad.jsonl"
        FileManager.default.createFile(atPath: file, contents: Data(#"{"collection":"memories","id":"m2","fields":{"text":"ab"#.utf8) + Data([0xFF]) + Data("\"}}\n".utf8))
        let piped = try await runProgram("/bin/sh", ["-c", "'\(bin)' put memories m1 --json - --data '\(data)' < '\(file)'"])
        #expect(piped.status == 2, "\(piped.stderr)")
        #expect(piped.stderr.contains("UTF-8"), "\(piped.stderr)")
        let imported = try await f.device.run("import", file)
        #expect(imported.status == 2, "\(imported.stderr)")
        #expect(imported.stderr.contains("UTF-8") && imported.stderr.contains("bad.jsonl:1"), "\(imported.stderr)")
        let list = try await f.device.ok("list", "memories", "--deleted").stdout
        #expect(list.isEmpty, "\(list)")
    }
}
