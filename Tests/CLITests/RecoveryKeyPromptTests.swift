import Foundation
import HubSyncCore
import Testing

/// The recovery key typed at a prompt (`--recovery-key -` at a terminal), through a real
/// pseudo-terminal: what the terminal shows must not include the key (issue 10, files and secrets).
@Suite(.timeLimit(.minutes(10))) struct RecoveryKeyPromptTests {
    let dir = TemporaryDirectory()

    /// What a person at a terminal sees: `argv` runs on a pseudo-terminal (Python's `pty.fork`,
    /// so it is the controlling terminal of the command and its standard input, output and error);
    /// `typed` is typed once `prompt` shows. The whole screen, as the terminal's other end reads it.
    func atTerminal(_ argv: [String], prompt: String, typed: String) async throws -> (status: Int, screen: String) {
        let script = """
            import json, os, pty, select, sys, time
            argv, prompt, typed = sys.argv[1:-2], sys.argv[-2].encode(), sys.argv[-1].encode()
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(argv[0], argv)
            screen, sent, deadline = b"", False, time.monotonic() + 60
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 1.0)
                if ready:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:  # EIO: the command ended and closed the terminal
                        break
                    if not chunk:
                        break
                    screen += chunk
                if not sent and prompt in screen:
                    os.write(fd, typed)
                    sent = True
            if time.monotonic() >= deadline:  # still waiting for input: the screen so far is the answer
                os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
            print(json.dumps({"status": os.waitstatus_to_exitcode(status), "screen": screen.decode(errors="replace")}))
            """
        let r = try await runProgram("/usr/bin/python3", ["-c", script] + argv + [prompt, typed], timeout: 180)
        let result = try #require(try? JSON.parse(r.stdout).objectValue, "\(r.stdout)\(r.stderr)")
        guard case .int(let status) = result["status"] else { throw CommandFailed(description: "no status in \(r.stdout)") }
        return (Int(status), result["screen"]?.stringValue ?? "")
    }

    /// A repository of one device's backups, and its recovery key.
    func repository() async throws -> (repo: String, key: String) {
        let d = Device(data: dir.path + "/d")
        let key = try #require(try await d.ok("init", "--json").json?.objectValue?["recovery_key"]?.stringValue)
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "now", "--repo", repo)
        return (repo, key)
    }

    /// The check below can fail: a terminal with echo on shows what is typed.
    @Test func aTerminalWithEchoShowsWhatIsTyped() async throws {
        let shown = try await atTerminal(["/bin/sh", "-c", "printf 'Recovery key: '; read line"],
                                         prompt: "Recovery key: ", typed: "SEEN-ON-SCREEN\n")
        #expect(shown.screen.contains("SEEN-ON-SCREEN"), "\(shown.screen)")
    }

    @Test func theKeyTypedAtThePromptIsNotEchoed() async throws {
        let (repo, key) = try await repository()
        let bare = dir.path + "/bare"
        let typed = try await atTerminal([hubsyncPath, "backup", "list", "--repo", repo, "--recovery-key", "-", "--json",
                                          "--data", bare], prompt: "Recovery key: ", typed: key + "\n")
        #expect(typed.status == 0, "\(typed.screen)")
        #expect(typed.screen.contains("Recovery key: "), "\(typed.screen)")
        #expect(typed.screen.contains("\"snapshot\"") || typed.screen.contains("\"id\""), "\(typed.screen)")
        // Neither the key nor any of its groups shows.
        for group in key.split(separator: "-") where group.count >= 4 {
            #expect(!typed.screen.contains(group), "the terminal showed \(group): \(typed.screen)")
        }
        #expect(!typed.screen.contains("process list"))
    }

    @Test func aWrongKeyAtThePromptIsAClearError() async throws {
        let (repo, _) = try await repository()
        let other = Device(data: dir.path + "/other")
        let otherKey = try #require(try await other.ok("init", "--json").json?.objectValue?["recovery_key"]?.stringValue)
        let wrong = try await atTerminal([hubsyncPath, "backup", "list", "--repo", repo, "--recovery-key", "-",
                                          "--data", dir.path + "/bare"], prompt: "Recovery key: ", typed: otherKey + "\n")
        #expect(wrong.status == 1 && wrong.screen.contains("recovery key does not open"), "\(wrong.status) \(wrong.screen)")
        #expect(!wrong.screen.contains(otherKey.prefix(7)), "\(wrong.screen)")

        // A mistyped one (a character changed) says which group to check.
        var chars = Array(otherKey)
        chars[1] = chars[1] == "A" ? "B" : "A"
        let typo = try await atTerminal([hubsyncPath, "backup", "list", "--repo", repo, "--recovery-key", "-",
                                         "--data", dir.path + "/bare"], prompt: "Recovery key: ", typed: String(chars) + "\n")
        #expect(typo.status == 2 && typo.screen.contains("--recovery-key"), "\(typo.status) \(typo.screen)")
    }

    @Test func anEmptyKeyAtThePromptIsRefused() async throws {
        let (repo, _) = try await repository()
        for typed in ["\n", "   \n"] {
            let empty = try await atTerminal([hubsyncPath, "backup", "list", "--repo", repo, "--recovery-key", "-",
                                              "--data", dir.path + "/bare"], prompt: "Recovery key: ", typed: typed)
            #expect(empty.status == 2 && empty.screen.contains("the key was empty"), "\(empty.status) \(empty.screen)")
        }
        // The end of input (Ctrl-D) at the prompt: nothing was read.
        let ended = try await atTerminal([hubsyncPath, "backup", "list", "--repo", repo, "--recovery-key", "-",
                                          "--data", dir.path + "/bare"], prompt: "Recovery key: ", typed: "\u{4}")
        #expect(ended.status == 2 && ended.screen.contains("nothing was read"), "\(ended.status) \(ended.screen)")
    }

    /// `--recovery-key-file <(…)` (a password manager's output) is a pipe with no size: it is read
    /// to its end, and a file that holds too much is refused, not read forever.
    @Test func aRecoveryKeyFileThatIsAPipeIsRead() async throws {
        let (repo, key) = try await repository()
        let bare = dir.path + "/bare"
        let piped = try await runProgram("/bin/bash", ["-c", "\"$0\" backup list --repo \"$1\" --recovery-key-file <(printf '%s\\n' \"$2\") "
            + "--json --data \"$3\"", hubsyncPath, repo, key, bare])
        #expect(piped.status == 0, "\(piped.stdout)\(piped.stderr)")
        #expect(piped.json?.arrayValue?.count == 1, "\(piped.stdout)")
        #expect(!piped.stderr.contains("can be read by other users"), "\(piped.stderr)")
        let endless = try await runProgram(hubsyncPath, ["backup", "list", "--repo", repo, "--recovery-key-file", "/dev/zero",
                                                         "--data", bare], timeout: 60)
        #expect(endless.status == 2 && endless.stderr.contains("over 64 KiB"), "\(endless.status) \(endless.stderr)")
        // Empty input, bytes that are not UTF-8 and characters that do not show are said as such;
        // a byte-order mark before the key (a file saved by some editors) is skipped.
        func withFile(_ bytes: [UInt8]) async throws -> RunResult {
            let file = dir.path + "/key-\(UUID().uuidString)"
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            chmod(file, 0o600)
            return try await runProgram(hubsyncPath, ["backup", "list", "--repo", repo, "--recovery-key-file", file, "--data", bare])
        }
        let empty = try await withFile(Array("\n".utf8))
        #expect(empty.status == 2 && empty.stderr.contains("it is empty"), "\(empty.stderr)")
        let latin1 = try await withFile(Array(key.utf8.prefix(10)) + [0xE9] + Array(key.utf8.dropFirst(10)))
        #expect(latin1.status == 2 && latin1.stderr.contains("not UTF-8 text (at byte 10)") && !latin1.stderr.contains("\u{FFFD}"),
                "\(latin1.stderr)")
        let nul = try await withFile(Array(key.utf8.prefix(10)) + [0] + Array(key.utf8.dropFirst(10)))
        #expect(nul.status == 2 && nul.stderr.contains("U+0000") && !nul.stderr.contains("\0"), "\(nul.stderr)")
        let bom = try await withFile([0xEF, 0xBB, 0xBF] + Array(key.utf8) + [0x0A])
        #expect(bom.status == 0, "\(bom.stderr)")
    }

    /// A named pipe no program has written into yet: the command says it waits for the key (a
    /// JSON event with --json), then reads it once it comes.
    @Test func aNamedPipeWithNoWriterYetIsAWaitThatIsSaid() async throws {
        let (repo, key) = try await repository()
        let fifo = dir.path + "/key.fifo", err = dir.path + "/stderr"
        #expect(mkfifo(fifo, 0o600) == 0)
        // The key is written only once the command has said it waits (bounded: 30 s).
        let script = "\"$0\" backup list --repo \"$1\" --recovery-key-file \"$2\" --json --data \"$3\" 2>\"$4\" & pid=$!; "
            + "for i in $(seq 300); do grep -q waiting \"$4\" && break; sleep 0.1; done; "
            + "printf '%s\\n' \"$5\" > \"$2\"; wait $pid; status=$?; cat \"$4\" >&2; exit $status"
        let run = try await runProgram("/bin/bash", ["-c", script, hubsyncPath, repo, fifo, dir.path + "/bare", err, key], timeout: 90)
        #expect(run.status == 0 && run.json?.arrayValue?.count == 1, "\(run.status) \(run.stdout) \(run.stderr)")
        let event = try #require(run.stderr.split(separator: "\n").first.flatMap { try? JSON.parse(String($0)) }?.objectValue,
                                 "\(run.stderr)")
        #expect(event["event"] == "waiting" && event["file"]?.stringValue == fifo, "\(event)")
        #expect(event["message"]?.stringValue?.contains("is a pipe") == true)
    }
}
