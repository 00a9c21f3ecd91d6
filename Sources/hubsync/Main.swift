import ArgumentParser
import Foundation

/// `hubsync`: the command-line face of a HubSync device.
@main
struct HubSync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hubsync",
        abstract: "Keep the AI Hub's personas, memories, preferences and conversations in step on every device.",
        discussion: """
            Every command works on one data directory: --data DIR, else $HUBSYNC_DATA, \
            else ~/.local/share/hubsync. Add --json for machine-readable output.
            Exit status: 0 done, 1 failed (the message says why), 2 bad usage or input.
            """,
        version: "0.1.0",
        subcommands: [
            InitCommand.self, IdCommand.self, PutCommand.self, GetCommand.self, ListCommand.self,
            DeleteCommand.self, UndeleteCommand.self, AddCommand.self, RemoveCommand.self,
            ConflictsCommand.self, ResolveCommand.self, ExportCommand.self, ImportCommand.self,
            RunCommand.self, PeersCommand.self, PairCommand.self, StatusCommand.self, DoctorCommand.self, BackupCommand.self,
        ]
    )

    /// Runs the command, mapping every failure to a message on standard error and exit status
    /// 1 (failed) or 2 (bad usage or input).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let e as CLIError {
            FileHandle.standardError.write(Data("hubsync: \(e.message)\n".utf8))
            Foundation.exit(e.status)
        } catch {
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                print(text)
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("\(text)\n".utf8))
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}
