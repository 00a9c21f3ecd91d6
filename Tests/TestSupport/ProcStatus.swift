import Foundation

/// A field of a process's `/proc/PID/status` in kB (`VmRSS`, `RssFile`, ...); `pid` nil reads
/// this process's own.
public func procStatusKB(_ field: String, pid: pid_t? = nil) throws -> Int {
    let path = "/proc/\(pid.map(String.init) ?? "self")/status"
    // A /proc file states no size: read to its end.
    guard let handle = FileHandle(forReadingAtPath: path) else { throw CommandFailed(description: "cannot open \(path)") }
    defer { try? handle.close() }
    let text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
          let kB = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
        throw CommandFailed(description: "no \(field) in \(path)")
    }
    return kB
}
