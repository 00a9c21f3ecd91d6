import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore

/// `hubsync dashboard`: a sign-in link to the dashboard the running agent serves.
struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard", abstract: "Print a one-time sign-in link to the dashboard the running agent serves.",
        discussion: """
            The agent serves the dashboard at / on its local API's address (loopback only). The link carries a \
            code that signs one browser in, once, within 2 minutes; the page trades it for a session cookie and \
            drops it from the address bar. Run the command again for another browser or after the agent restarts.
              hubsync dashboard --open
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Also open the link in the desktop's browser (with xdg-open).") var open = false

    func run() throws {
        let dir = common.directory
        _ = try dir.identity()
        guard let agent = dir.runningAgent() else {
            if let holder = WriterLock.holder(in: dir), holder.isAgent {
                throw dir.unreachable(holder, "so it cannot sign a browser in;")
            }
            throw CLIError.failure("no agent runs on \(dir.path); the agent serves the dashboard, so start it first "
                + "with `hubsync run --data \(dir.path)`")
        }
        let answer = try agent.call("POST", "/v1/dashboard/codes").objectValue ?? [:]
        guard let code = answer["code"]?.stringValue else { throw CLIError.failure("the agent's answer has no sign-in code") }
        let url = agent.client.baseURL + "/#code=" + code
        let expiresAt = answer["expires_at"] ?? .null
        if output.json {
            printJSON(["url": .string(url), "expires_at": expiresAt, "expires_in_seconds": answer["expires_in_seconds"] ?? .null])
        } else {
            print(url)
            if !Quiet.isOn {
                FileHandle.standardError.write(Data("The link signs one browser in, once, within 2 minutes.\n".utf8))
            }
        }
        if open { try Self.openInBrowser(url) }
    }

    /// Opens `url` with xdg-open; its failure says how to open the link by hand.
    static func openInBrowser(_ url: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xdg-open", url]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CLIError.failure("cannot run xdg-open (\(error.localizedDescription)); open the link above in a browser yourself")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CLIError.failure("xdg-open could not open the link (status \(process.terminationStatus): no desktop browser "
                + "here?); open the link above in a browser on this computer yourself")
        }
    }
}
