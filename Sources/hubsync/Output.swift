import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncAgent
import HubSyncBackup
import HubSyncBase
import HubSyncStore

/// Standard output through a buffer, so that long listings stream without a write per line.
struct OutputBuffer {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Prints one JSON value on its own line.
func printJSON(_ value: Value) {
    print(JSON.serialize(value))
}

/// A record for people: its key, then one line per field. IDs, field names and values pass
/// through ``printable(_:)``: nothing another device wrote reaches the terminal as a control.
func recordText(_ s: RecordState, limit: Int? = nil, devices: DeviceLabels? = nil) -> String {
    var lines = [printable("\(s.key)") + (s.isAlive ? "" : " (deleted)")]
    let fields = s.visibleFields
    for name in fields.keys.sorted(by: utf8Less) {
        lines.append(cut("  \(printable(name)): \(printable(JSON.serialize(fields[name]!)))", to: limit))
    }
    for field in s.conflictedFields {
        let reg = s.fields[field]!
        lines.append(printable("  ! conflict on \(field) (shown: the first); resolve with "
            + "`hubsync resolve \(s.key.collection) \(s.key.id) \(field) --value JSON`:"))
        for v in reg.versions {
            lines.append(cut("      device \(devices?.label(v.stamp.device) ?? v.stamp.device.short): \(printable(JSON.serialize(v.value)))", to: limit))
        }
    }
    return lines.joined(separator: "\n")
}

/// `text` safe to print to a terminal (``TerminalText``), so that no record ID, field name or
/// value can move the cursor, retitle the terminal, fake a line or reorder what follows it.
func printable(_ text: String) -> String { TerminalText.escaped(text) }

/// Progress of long work (backups, restores, imports): a line with an ETA on a terminal, JSON
/// events with `--json`, nothing otherwise (a cron job's log stays clean), nothing with `--quiet`;
/// at most a few per second.
final class ProgressReporter {
    let isTerminal = isatty(2) == 1
    let quiet: Bool
    let json: Bool
    var start = Date()
    var phase = ""
    var last = Date.distantPast

    init(quiet: Bool = Quiet.isOn, json: Bool = false) {
        self.quiet = quiet
        self.json = json
    }

    func report(_ phase: String, _ done: Int, _ total: Int) {
        guard !quiet, isTerminal || json else { return }
        if phase != self.phase { self.phase = phase; start = Date() }
        let now = Date()
        guard done >= total || now.timeIntervalSince(last) >= (isTerminal ? 0.2 : 0.5) else { return }
        last = now
        if isTerminal {
            let elapsed = now.timeIntervalSince(start)
            let eta = done > 0 ? elapsed / Double(done) * Double(max(0, total - done)) : 0
            let pct = total > 0 ? done * 100 / total : 100
            FileHandle.standardError.write(Data("\r\(phase) \(done)/\(total) (\(pct)%) ETA \(Int(eta.rounded())) s   ".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let event: Value = ["event": "progress", "phase": .string(phase), "done": .int(Int64(done)),
                                "total": .int(Int64(total)),
                                "elapsed_ms": .int(Int64(now.timeIntervalSince(start) * 1000))]
            FileHandle.standardError.write(Data((JSON.serialize(event) + "\n").utf8))
        }
    }

    var callback: BackupProgress { { [self] in report($0, $1, $2) } }
}

/// A duration for people, always with its unit: "45 s", "5 min", "1 h 30 min", "2 d 3 h".
func durationText(_ seconds: Int) -> String {
    let s = max(0, seconds)
    switch s {
    case ..<60: return "\(s) s"
    case ..<3600: return s % 60 == 0 ? "\(s / 60) min" : "\(s / 60) min \(s % 60) s"
    case ..<86_400: return s % 3600 / 60 == 0 ? "\(s / 3600) h" : "\(s / 3600) h \(s % 3600 / 60) min"
    default: return s % 86_400 / 3600 == 0 ? "\(s / 86_400) d" : "\(s / 86_400) d \(s % 86_400 / 3600) h"
    }
}

/// A device ID as people read it: its short form (the first group), which is unambiguous among
/// the few devices of a household; the full ID stays in `--json` output.
func shortID(_ text: String) -> String {
    (try? DeviceID(parsing: text))?.short ?? text
}

/// A device as ``DeviceLabels`` shows it, from an ID in text form and a name the agent verified
/// (nil when not known yet): `PBE2YMC "desk"`.
func namedID(_ id: String, _ name: String?) -> String {
    guard let name = name.flatMap(DeviceNames.displayable) else { return shortID(id) }
    return shortID(id) + " " + JSON.serialize(.string(name))
}

/// How devices appear to people: the ID (short, or whole when another device known here starts
/// alike), then the name the device gave itself, quoted, so that no name can pass for another
/// device's ID or for a note of ours: `PBE2YMC "laptop"`, `PBE2YMC "laptop" (this device)`.
struct DeviceLabels {
    /// Verified, cleaned names (DeviceNames), this device's own included.
    var names: [DeviceID: String]
    let own: DeviceID?
    /// Devices whose short IDs must stay apart.
    var known: Set<DeviceID>

    /// The names `store` holds, with this device's from `directory` (its `device.json`).
    init(store: Store?, directory: DataDirectory, own: DeviceID?, known: [DeviceID] = []) {
        names = store.map { DeviceNames.readNow(from: $0) } ?? [:]
        self.own = own
        if let own, let name = directory.deviceName.flatMap(DeviceNames.displayable) { names[own] = name }
        self.known = Set(known).union(names.keys)
        if let own { self.known.insert(own) }
    }

    /// The ID's first group, or the whole ID when another known device's starts the same.
    func short(_ device: DeviceID) -> String {
        let s = device.short
        return known.contains(where: { $0 != device && $0.short == s }) ? device.description : s
    }

    /// `ID "name"`, with " (this device)" for this one; `full` prints the whole ID.
    func label(_ device: DeviceID, full: Bool = false) -> String {
        var text = full ? device.description : short(device)
        if let name = names[device] { text += " " + JSON.serialize(.string(name)) }
        if device == own { text += " (this device)" }
        return text
    }

    /// ``label(_:full:)`` of an ID in text form (as the API sends it); other text is shown cleaned.
    func label(_ text: String, full: Bool = false) -> String {
        guard let device = try? DeviceID(parsing: text) else { return DeviceNames.displayable(text) ?? "?" }
        return label(device, full: full)
    }

    /// The name of `device` as JSON: a string, or null when it is not known.
    func json(_ device: DeviceID) -> Value { names[device].map { .string($0) } ?? .null }
}

/// How long a line of a listing may be: the terminal's width when standard output is one,
/// else 4,096 characters (a value of megabytes never floods a log); nil with `--full`.
func lineLimit(full: Bool) -> Int? {
    if full { return nil }
    guard isatty(1) == 1 else { return 4096 }
    var size = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
    if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 20 { return columns }
    return 80
}

/// `line` cut to `limit` terminal columns, ending in "…" and how much was left out, when wider
/// (a narrow terminal gets the short note, so that some of the value stays).
func cut(_ line: String, to limit: Int?) -> String {
    // No character is wider than its UTF-8 bytes: a line of at most `limit` bytes fits.
    guard let limit, line.utf8.count > limit else { return line }
    guard line.reduce(0, { $0 + columns($1) }) > limit else { return line }
    var note = "… (\(byteText(line.utf8.count)) in all; --full shows it)"
    if limit - note.count < limit / 2 { note = "… (--full)" }
    let keep = max(8, limit - note.count)
    var used = 0, kept = ""
    for character in line {
        let width = columns(character)
        if used + width > keep { break }
        used += width
        kept.append(character)
    }
    return kept + note
}

/// The terminal columns a character takes: 2 for East Asian wide and full-width characters and
/// emoji, 0 for a combining mark alone, else 1.
func columns(_ character: Character) -> Int {
    guard let first = character.unicodeScalars.first else { return 0 }
    if character.unicodeScalars.contains(where: { $0.properties.isEmojiPresentation }) { return 2 }
    switch first.value {
    case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
         0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x1F300...0x1F64F,
         0x1F900...0x1F9FF, 0x20000...0x3FFFD:
        return 2
    default:
        switch first.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: return 1
        }
    }
}

/// A table for people: a header and rows, each column as wide as its widest cell (counted in
/// characters), two spaces apart; columns in `rightAligned` (numbers) lined up on the right.
func tableText(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
    var text = ""
    for row in all {
        var cells: [String] = []
        for (column, width) in widths.enumerated() {
            let cell = row.indices.contains(column) ? row[column] : ""
            let pad = String(repeating: " ", count: width - cell.count)
            cells.append(rightAligned.contains(column) ? pad + cell : (column == widths.count - 1 ? cell : cell + pad))
        }
        text += cells.joined(separator: "  ") + "\n"
    }
    return text
}
