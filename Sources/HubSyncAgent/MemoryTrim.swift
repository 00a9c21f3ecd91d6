import CHubMalloc
import Foundation
import HubSyncStore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a quiet agent gives back: the pages of program code it mapped while working and no
/// longer runs, and the heap it freed.
///
/// The kernel maps a program's code into a process page by page as it first runs (and the
/// pages around each, "fault-around"); they stay mapped, and counted in its resident memory
/// (VmRSS), long after the work that ran them. An agent that started, answered a request or
/// merged a full sync keeps tens of megabytes of such pages of its own binary and of the Swift
/// and Foundation libraries, while the code it runs when quiet fits in one or two.
enum MemoryTrim {
    /// What ``releaseUnused()`` gave back.
    struct Outcome: Sendable, Equatable {
        /// Resident code pages dropped from this process's mappings, in bytes.
        var codeBytes: Int
        /// Code mappings dropped.
        var mappings: Int
        /// Whether glibc returned freed heap memory to the kernel (`malloc_trim`).
        var heapReleased: Bool
    }

    /// Drops this process's resident code pages and returns freed heap memory to the kernel.
    ///
    /// Only mappings that are private, readable and executable, not writable, backed by a file
    /// and never written (smaps shows no anonymous pages in them, and none swapped out: a written
    /// page that went to swap is counted there, not as anonymous) are dropped: their pages are
    /// the file's own, so `MADV_DONTNEED` only unmaps them here, the page cache keeps them, and
    /// the next instruction fetched from one maps it again, unchanged. Read-only data is left
    /// alone: the dynamic loader writes relocations into part of it before making it read-only.
    static func releaseUnused() -> Outcome {
        var outcome = Outcome(codeBytes: 0, mappings: 0, heapReleased: false)
        #if canImport(Glibc)
        for mapping in codeMappings() {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 {
                outcome.codeBytes += mapping.residentBytes
                outcome.mappings += 1
            }
        }
        outcome.heapReleased = malloc_trim(0) == 1
        #endif
        return outcome
    }

    /// The whole of a file read until its end: a /proc file states no size, and a read sized
    /// by one stops short.
    static func readToEnd(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// A mapping of program code that ``releaseUnused()`` drops.
    struct CodeMapping: Equatable {
        var start: UInt
        var end: UInt
        var residentBytes: Int
        var path: String
    }

    /// The droppable code mappings of this process, from `/proc/self/smaps`.
    static func codeMappings(smaps: String? = nil) -> [CodeMapping] {
        guard let text = smaps ?? readToEnd("/proc/self/smaps") else { return [] }
        var found: [CodeMapping] = []
        var current: CodeMapping?
        var written = 0
        func close() {
            if let c = current, written == 0 { found.append(c) }
            current = nil
            written = 0
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains("-"), !first.hasSuffix(":") {
                // A mapping's header: "start-end perms offset dev inode [path]".
                close()
                let bounds = first.split(separator: "-")
                guard fields.count >= 6, fields[1] == "r-xp", fields[5].hasPrefix("/"), bounds.count == 2,
                      let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), end > start else { continue }
                current = CodeMapping(start: start, end: end, residentBytes: 0,
                                      path: fields[5...].joined(separator: " "))
            } else if current != nil, fields.count >= 2, let kB = Int(fields[1]) {
                if first == "Rss:" { current?.residentBytes = kB * 1024 }
                // Pages the process wrote: resident ones are anonymous, the others are in swap.
                if first == "Anonymous:" || first == "Swap:" { written += kB }
            }
        }
        close()
        return found
    }
}

/// Notes the agent's activity (store commits, API answers) for the one task that waits for a
/// quiet stretch (``MemoryTrimService``), which also takes the process's CPU time into account. Noting is one atomic add, plus a wake-up only when
/// that task is parked waiting for activity; while the agent is busy, the waiting task wakes
/// once per quiet period to see whether anything happened.
final class ActivityWatch: Sendable {
    private let count = Atomic<UInt64>(0)
    private let parked = Atomic<Bool>(false)
    private let wake = WakeSignal()

    init() {}

    /// Notes that something happened.
    func note() {
        count.add(1, ordering: .sequentiallyConsistent)
        if parked.load(ordering: .sequentiallyConsistent), parked.exchange(false, ordering: .sequentiallyConsistent) {
            wake.signal()
        }
    }

    /// Whether a task waits in ``waitForActivity(after:)``.
    var isParked: Bool { parked.load(ordering: .sequentiallyConsistent) }

    /// How much has been noted so far.
    var noted: UInt64 { count.load(ordering: .sequentiallyConsistent) }

    /// Returns once `quiet` has passed with nothing noted and under `maxCPU` of the process's
    /// CPU time used, with the count then; nil when the task is cancelled. The CPU time catches
    /// work that neither commits nor answers the API: a full sync this agent sends, a backup.
    func waitForQuiet(_ quiet: Duration, maxCPU: Duration = .milliseconds(50),
                      cpuTime: () -> Duration = ActivityWatch.processCPUTime) async -> UInt64? {
        var seen = noted
        var used = cpuTime()
        while true {
            do { try await Task.sleep(for: quiet) } catch { return nil }
            let now = noted, cpu = cpuTime()
            if now == seen, cpu - used < maxCPU { return now }
            seen = now
            used = cpu
        }
    }

    /// The CPU time this process has used, all its threads.
    static func processCPUTime() -> Duration {
        var t = timespec()
        guard clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) == 0 else { return .zero }
        return .seconds(t.tv_sec) + .nanoseconds(t.tv_nsec)
    }

    /// Returns once something is noted after the count was `seen` (at once if it already was);
    /// false when the task is cancelled. No timer runs while it waits.
    func waitForActivity(after seen: UInt64) async -> Bool {
        parked.store(true, ordering: .sequentiallyConsistent)
        if noted != seen {
            // A note() that came in after the flag was raised took it and signals: that wake-up
            // is for this call, so it is taken here, or the next wait would return at once.
            if !parked.exchange(false, ordering: .sequentiallyConsistent) { _ = await wake.wait() }
            return true
        }
        return await wake.wait()
    }

    /// Whether a wake-up is waiting to be taken (none should be once a wait returned and every
    /// note() has).
    var hasPendingWake: Bool { wake.isPending }
}
