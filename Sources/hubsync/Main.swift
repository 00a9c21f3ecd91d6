import ArgumentParser
import Foundation
#if canImport(Glibc)
import CHubMalloc
#endif
import HubSyncAgent
import HubSyncBase
import HubSyncCore

/// `hubsync`: the command-line face of a HubSync device.
@main
struct HubSync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubsync",
        abstract: "Keep the AI Hub's personas, memories, preferences and conversations in step on every device.",
        discussion: """
            Every command works on one data directory: --data DIR, else $HUBSYNC_DATA, \
            else ~/.local/share/hubsync. Add --json for machine-readable output. \
            $HUBSYNC_AGENT_TIMEOUT (whole seconds, 1–3600, default 60) is how long a command waits \
            for the running agent to answer.
            Exit status: 0 done, 1 failed (the message says why), 2 bad usage or input.
            """,
        version: HubSyncVersion.text,
        subcommands: [
            InitCommand.self, IdCommand.self, NameCommand.self, PutCommand.self, GetCommand.self, ListCommand.self,
            DeleteCommand.self, UndeleteCommand.self, AddCommand.self, RemoveCommand.self,
            ConflictsCommand.self, ResolveCommand.self, ExportCommand.self, ImportCommand.self, ExportCardCommand.self,
            RunCommand.self, PeersCommand.self, PairCommand.self, StatusCommand.self, DoctorCommand.self,
            RepairCommand.self, BackupCommand.self, AuditCommand.self, DashboardCommand.self, VersionCommand.self, ManCommand.self,
        ]
    )

    /// Lets glibc's allocator keep up to `count` arenas from now on, unless $MALLOC_ARENA_MAX is set.
    static func allowMallocArenas(_ count: Int32) {
        #if canImport(Glibc)
        if ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil { mallopt(M_ARENA_MAX, count) }
        #endif
    }

    /// Runs the command, mapping every failure to a message on standard error and exit status
    /// 1 (failed) or 2 (bad usage or input).
    static func main() async {
        // Every file this process makes is its owner's alone (the store and its WAL hold every record).
        umask(0o077)
        #if canImport(Glibc)
        // glibc gives threads that allocate at once arenas of their own (up to eight per core) and
        // keeps what each frees: with two, the receiver of a 100k-record full sync held 89 MB
        // after it instead of 115, as fast (hubsync-bench --only sync). $MALLOC_ARENA_MAX, when set, wins.
        allowMallocArenas(2)
        #endif
        if let refusal = invalidArgument() { fail(refusal) }
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let e as CLIError {
            fail(e)
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch {
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                print(text)
                Foundation.exit(0)
            }
            if code == .validationFailure || isParserError(error) {
                if wantsJSON { fail(.usage(message(for: error))) }
                FileHandle.standardError.write(Data("\(text)\n".utf8))
                Foundation.exit(2)
            }
            // Anything else thrown out of a command: the same rule as every other failure.
            fail(CLIError(error))
        }
    }

    /// Prints the failure's message and exits with its status; a failure no one foresaw also
    /// has its detail written to the log (standard error, marked as such).
    static func fail(_ e: CLIError) -> Never {
        if wantsJSON {
            // Asked for JSON: the failure too, one object on standard error.
            var o: [String: Value] = ["error": .string(e.message), "exit_status": .int(Int64(e.status))]
            if e.isUnexpected, let cause = e.cause { o["detail"] = .string(String(reflecting: cause)) }
            FileHandle.standardError.write(Data((JSON.serialize(.object(o)) + "\n").utf8))
            Foundation.exit(e.status)
        }
        var text = "hubsync: \(e.message)\n"
        if e.isUnexpected, let cause = e.cause {
            text += "hubsync: this is not a failure HubSync knows how to explain; please report it with this detail:\n"
                + "hubsync: detail: \(String(reflecting: cause))\n"
        }
        FileHandle.standardError.write(Data(text.utf8))
        Foundation.exit(e.status)
    }

    /// Whether the command line asks for JSON output: `--json`, or `--format json` for the
    /// commands whose `--json` is their input (`put`, `delete`, …).
    static var wantsJSON: Bool {
        let args = Array(CommandLine.arguments.dropFirst().prefix { $0 != "--" })
        let inputIsJSON: Set = ["put", "delete", "undelete", "add", "remove", "resolve"]
        if let command = args.first(where: { !$0.hasPrefix("-") }), inputIsJSON.contains(command) {
            return args.contains("--format=json") || zip(args, args.dropFirst()).contains { $0 == "--format" && $1 == "json" }
        }
        return args.contains("--json")
    }

    /// Whether the argument parser raised `error` (a usage error: exit 2).
    static func isParserError(_ error: any Error) -> Bool {
        let name = String(reflecting: type(of: error))
        return name.hasPrefix("ArgumentParser.")
    }

    /// Refuses an argument that is not valid UTF-8, naming it and the byte offset: Swift would
    /// otherwise turn the bad bytes into U+FFFD and write that instead, with no warning.
    static func invalidArgument() -> CLIError? {
        for index in 1..<max(1, Int(CommandLine.argc)) {
            guard let pointer = CommandLine.unsafeArgv[index] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
                                            count: strlen(pointer))
            if let offset = invalidUTF8Offset(bytes) {
                return .usage("argument \(index) is not valid UTF-8 (at byte \(offset)); give IDs, field names and "
                    + "values as UTF-8 text (check the terminal's or the script's encoding)")
            }
        }
        // The environment the commands read is input too: a value it cannot use is refused, not ignored.
        if let raw = getenv("HUBSYNC_DATA"), !CommandLine.arguments.contains(where: { $0 == "--data" || $0.hasPrefix("--data=") }) {
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
            if let offset = invalidUTF8Offset(bytes) {
                return .usage("$HUBSYNC_DATA is not valid UTF-8 (at byte \(offset)); give the data directory's path as UTF-8 text, or pass --data DIR")
            }
        }
        if let problem = LocalAPIClient.timeoutProblem(in: ProcessInfo.processInfo.environment) { return .usage(problem) }
        return nil
    }
}

