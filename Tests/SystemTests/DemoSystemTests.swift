import Foundation
import Testing

/// `make demo` as root: the household demo runs end to end in namespaces and leaves nothing behind.
@Suite(.disabled(if: Testbed.unavailableReason != nil,
                 "needs root and network namespaces (unshare --net); CI runs these as root"),
       .timeLimit(.minutes(2)))
struct DemoSystemTests {
    /// scripts/demo.sh of this checkout: found upwards from the hubsync binary, else from here.
    static var demoScript: String? {
        var dir = URL(fileURLWithPath: hubsyncPath).deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("scripts/demo.sh").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        let here = FileManager.default.currentDirectoryPath + "/scripts/demo.sh"
        return FileManager.default.fileExists(atPath: here) ? here : nil
    }

    @Test func theHouseholdDemoRunsAndCleansUp() async throws {
        let script = try #require(Self.demoScript, "scripts/demo.sh not found from \(hubsyncPath)")
        let r = try await runProgram("/usr/bin/env", ["HUBSYNC=\(hubsyncPath)", "bash", script])
        #expect(r.status == 0, "demo exited \(r.status): \(r.stderr)\n\(r.stdout)")
        #expect(!r.stderr.contains("loopback demo"), "it fell back: \(r.stderr)")
        // Both joins found their inviter over mDNS, with no address typed.
        #expect(r.stderr.components(separatedBy: "Found invite").count == 3, "\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "Joined the household through").count == 3, "\(r.stdout)")
        // The persona written on the phone, read on the laptop; three members there.
        #expect(r.stdout.contains("laptop$ hubsync get personas ada\npersonas/ada\n  name: \"Ada\""), "\(r.stdout)")
        #expect(r.stdout.components(separatedBy: "  member  ").count == 4, "\(r.stdout)")
        // Torn down: no namespace of the demo is left.
        let left = try await runProgram("/usr/sbin/ip", ["netns", "list"]).stdout
        #expect(!left.contains("hsdemo"), "left behind: \(left)")
    }
}
