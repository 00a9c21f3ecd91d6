import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

/// This build's version, shown by `hubsync version` and `hubsync --version`.
enum HubSyncVersion {
    static let text = HubSyncRelease.version
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print HubSync's version and the versions of the libraries it uses.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        let parts: [(String, String)] = [("hubsync", HubSyncVersion.text),
                                         ("libsodium", Sodium.versionString), ("sqlite", Store.sqliteVersion)]
        if output.json {
            printJSON(.object(Dictionary(uniqueKeysWithValues: parts.map { ($0.0, Value.string($0.1)) })))
        } else {
            print("hubsync \(HubSyncVersion.text)")
            for (name, version) in parts.dropFirst() { print("  \(name) \(version)") }
        }
    }
}

/// `hubsync man`: the manual page, in roff, made from the argument parser's own help texts, so it
/// never disagrees with `--help`. `make install` writes it to PREFIX/share/man/man1/hubsync.1.
struct ManCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "man", abstract: "Print the manual page (roff), made from every command's help.",
        discussion: "  hubsync man > hubsync.1 && man ./hubsync.1")

    func run() throws {
        var out = """
            .TH HUBSYNC 1 "" "hubsync \(HubSyncVersion.text)" "User Commands"
            .SH NAME
            hubsync \\- \(roff(HubSync.configuration.abstract))
            .SH SYNOPSIS
            .B hubsync
            .I COMMAND
            [\\fIOPTIONS\\fR]
            .SH DESCRIPTION
            \(roff(HubSync.configuration.discussion))
            .SH COMMANDS

            """
        for (path, command) in Self.commands(HubSync.self, path: ["hubsync"]) where path.count > 1 {
            out += ".SS \"\(path.joined(separator: " "))\"\n"
            out += ".nf\n" + roff(HubSync.helpMessage(for: command, columns: 78)) + "\n.fi\n"
        }
        out += """
            .SH EXIT STATUS
            0 done, 1 failed (the message says why), 2 bad usage or input.
            .SH ENVIRONMENT
            .TP
            .B HUBSYNC_DATA
            The data directory when --data is not given (default ~/.local/share/hubsync).
            .TP
            .B HUBSYNC_AGENT_TIMEOUT
            How long a command waits for the running agent to answer: whole seconds from 1 to 3600
            (default 60); any other value is refused (exit 2).
            .SH SEE ALSO
            The README of HubSync; shell completions: \\fBhubsync --generate-completion-script bash|zsh|fish\\fR.

            """
        print(out, terminator: "")
    }

    /// Every command under `root`, depth first, with the words that name it.
    static func commands(_ root: any ParsableCommand.Type, path: [String]) -> [([String], any ParsableCommand.Type)] {
        var all = [(path, root)]
        for sub in root.configuration.subcommands where sub.configuration.shouldDisplay {
            let name = sub.configuration.commandName ?? String(describing: sub).lowercased()
            all += commands(sub, path: path + [name])
        }
        return all
    }

    /// Text safe in roff: backslashes doubled, a leading dot or quote escaped.
    func roff(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\e").split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix(".") || line.hasPrefix("'") ? "\\&" + line : String(line)
        }.joined(separator: "\n")
    }
}
