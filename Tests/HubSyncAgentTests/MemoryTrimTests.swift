import Foundation
import Synchronization
@testable import HubSyncAgent
import HubSyncTestSupport
import Testing

/// Giving back a quiet process's code pages and freed heap (MemoryTrim.swift).
@Suite struct MemoryTrimTests {
    @Test func onlyCodeMappingsNeverWrittenAreChosen() {
        let smaps = """
            55d0a0000000-55d0a0400000 r-xp 00001000 08:01 1234 /usr/bin/program name
            Size:               4096 kB
            Rss:                1200 kB
            Anonymous:             0 kB
            VmFlags: rd ex mr mw me
            55d0a0400000-55d0a0500000 r--p 00401000 08:01 1234 /usr/bin/program name
            Rss:                 300 kB
            Anonymous:             0 kB
            55d0a0500000-55d0a0600000 rw-p 00501000 08:01 1234 /usr/bin/program name
            Rss:                 100 kB
            Anonymous:            40 kB
            7f0000000000-7f0000100000 r-xp 00000000 08:01 99 /usr/lib/libpatched.so
            Rss:                  64 kB
            Anonymous:             8 kB
            7f0000200000-7f0000300000 r-xp 00000000 00:00 0 [vdso]
            Rss:                   8 kB
            Anonymous:             0 kB
            7f0000300000-7f0000400000 r-xp 00000000 00:00 0
            Rss:                  12 kB
            Anonymous:            12 kB
            7f0000400000-7f0000480000 r-xp 00000000 08:01 7 /usr/lib/libc.so.6
            Rss:                 512 kB
            Anonymous:             0 kB
            Swap:                  0 kB
            7f0000500000-7f0000580000 r-xp 00000000 08:01 8 /usr/lib/libswapped.so
            Rss:                 100 kB
            Anonymous:             0 kB
            Swap:                  4 kB
            """
        #expect(MemoryTrim.codeMappings(smaps: smaps) == [
            .init(start: 0x55d0a0000000, end: 0x55d0a0400000, residentBytes: 1200 * 1024, path: "/usr/bin/program name"),
            .init(start: 0x7f0000400000, end: 0x7f0000480000, residentBytes: 512 * 1024, path: "/usr/lib/libc.so.6"),
        ], "read-only data, writable data, code the process wrote to (resident or swapped out), the vDSO and anonymous code stay")
    }

    @Test func thisProcessGivesBackCodePagesAndKeepsRunning() throws {
        let mappings = MemoryTrim.codeMappings()
        #expect(mappings.contains { $0.path.hasSuffix("/libc.so.6") }, "the C library's code is among this process's mappings")
        let before = try procStatusKB("RssFile")
        let outcome = MemoryTrim.releaseUnused()
        let after = try procStatusKB("RssFile")
        #expect(outcome.mappings >= 2)
        #expect(outcome.codeBytes > 1024 * 1024, "a test process has megabytes of code resident")
        // What runs between the two readings maps some pages again, far fewer than were dropped.
        #expect(after < before - outcome.codeBytes / 2048, "RssFile \(before) kB before, \(after) kB after; \(outcome.codeBytes / 1024) kB dropped")
        // The code runs on as before: its pages come back from the page cache when used.
        let digest = (0..<1000).reduce(into: [Int: String]()) { $0[$1] = String($1, radix: 7) }
        #expect(digest[999] == "2625")
        #expect(try JSONSerialization.jsonObject(with: Data("[1,2]".utf8)) as? [Int] == [1, 2])
    }

    @Test func activityWakesTheParkedWaiterAndQuietIsWaitedFor() async throws {
        let watch = ActivityWatch()
        #expect(await watch.waitForQuiet(.milliseconds(5)) == 0)
        // Busy without noting anything (CPU time used): not quiet until the CPU rests.
        let clock = Mutex<(reads: Int, cpu: Duration)>((0, .zero))
        let result = await watch.waitForQuiet(.milliseconds(1), maxCPU: .milliseconds(50)) {
            clock.withLock { c in
                c.reads += 1
                if c.reads <= 5 { c.cpu += .milliseconds(200) } else { c.cpu += .milliseconds(1) }
                return c.cpu
            }
        }
        #expect(result == 0)
        #expect(clock.withLock { $0.reads } == 6, "quiet once a period used under 50 ms of CPU")
        // Something noted before the wait starts: it returns at once.
        watch.note()
        #expect(await watch.waitForActivity(after: 0))
        // Parked, it wakes at the next activity.
        let seen = watch.noted
        let waiter = Task { await watch.waitForActivity(after: seen) }
        try await waitUntil("the waiter to park", timeout: 10) { watch.isParked }
        watch.note()
        #expect(await waiter.value)
        #expect(watch.noted == seen + 1)
        // Cancelled, the waits end.
        let cancelled = Task { await watch.waitForActivity(after: watch.noted) }
        try await waitUntil("the second waiter to park", timeout: 10) { watch.isParked }
        cancelled.cancel()
        #expect(await cancelled.value == false)
        let quiet = Task { await watch.waitForQuiet(.seconds(60)) }
        quiet.cancel()
        #expect(await quiet.value == nil)
    }

    /// A note() racing a wait that returns at once must not leave a wake-up behind for the next
    /// wait (which would then return with nothing noted).
    @Test func aWaitRacingANoteLeavesNoWakeUpBehind() async {
        let watch = ActivityWatch()
        for round in 0..<2000 {
            let seen = watch.noted
            let noted = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                watch.note()
                noted.signal()
            }
            #expect(await watch.waitForActivity(after: seen))
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    noted.wait()
                    done.resume()
                }
            }
            if watch.hasPendingWake || watch.isParked {
                Issue.record("round \(round): a wake-up was left behind (parked: \(watch.isParked))")
                return
            }
        }
    }
}
