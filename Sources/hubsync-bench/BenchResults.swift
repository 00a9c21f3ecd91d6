import Foundation
import HubSyncCore

/// The figures the plots need, gathered while the bench runs and written as JSON for
/// scripts/bench-plots.py (`--plots DIR`): the raw propagation latencies, full-sync times by
/// record count for HubSync and Syncthing, and the backup figures beside restic's.
final class BenchResults {
    var values: [String: Value] = [:]

    func set(_ key: String, _ value: Value) { values[key] = value }

    func append(_ key: String, _ value: Value) {
        var list = values[key]?.arrayValue ?? []
        list.append(value)
        values[key] = .array(list)
    }

    /// Writes `DIR/results.json` and has /usr/bin/python3 (Debian's, with python3-matplotlib)
    /// draw the PNG files beside it; says so and goes on when matplotlib is missing.
    func write(to dir: String, scripts: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/results.json"
        try Data(JSON.serialize(.object(values)).utf8).write(to: URL(fileURLWithPath: path))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [scripts + "/bench-plots.py", path, dir]
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            FileHandle.standardError.write(Data("hubsync-bench: no plots drawn (scripts/bench-plots.py exited \(p.terminationStatus)); the figures are in \(path)\n".utf8))
        }
    }
}
