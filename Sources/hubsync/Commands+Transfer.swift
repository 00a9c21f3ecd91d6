import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncAgent
import HubSyncStore

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every record's full sync state to a file (JSON Lines).",
        discussion: """
            Importing the file on another device merges it there: an offline sync, conflicts included. \
            Deleted records are exported too, so deletes travel. FILE - writes to standard output. \
            The file holds every record in plain text: it is written readable by this user only (mode 0600).
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The file to write (replaced if it exists), or -.") var file: String

    func run() throws {
        let dir = common.directory
        let identity = try dir.identity()
        let store = try dir.openStore()
        let toStdout = file == "-"
        var isFolder: ObjCBool = false
        if !toStdout, FileManager.default.fileExists(atPath: file, isDirectory: &isFolder), isFolder.boolValue {
            throw CLIError.usage("\(file) is a folder; give a file name, such as \((file as NSString).appendingPathComponent("hubsync-export.jsonl")); nothing was written")
        }
        let parent = (URL(fileURLWithPath: file).deletingLastPathComponent().path)
        if !toStdout, !FileManager.default.fileExists(atPath: parent, isDirectory: &isFolder) || !isFolder.boolValue {
            throw CLIError.usage("\(parent), the folder \(file) would go in, does not exist; create it first or give another path; nothing was written")
        }
        // A file appears only when complete (an interrupted export leaves the old one, if any).
        let target = toStdout ? nil : try guarded { try AtomicFile(path: file, mode: 0o600) }
        // The one writer of the format, which the dashboard's download uses too.
        let count = try guarded {
            // `created` is the store's last clock reading (SPEC 1.10): what the file's states can be
            // dated up to, even when the wall clock was set back since.
            let n = try ExportFormat.write(store, device: identity.deviceID.description, created: store.now.millis) { bytes in
                if let target { try target.write(bytes) } else { try FileHandle.standardOutput.write(contentsOf: bytes) }
            }
            try target?.commit()
            return n
        }
        if toStdout { return }
        if output.json {
            printJSON(["file": .string(file), "records": .int(Int64(count))])
        } else if !Quiet.isOn {
            print("Exported \(plural(count, "record")) to \(file)")
        }
    }
}
