import HubSyncBase
import HubSyncCore
import Testing

/// The release a hello names (protocol/SPEC.md 3.1), and how releases without it read it.
@Suite struct HelloReleaseTests {
    let clock = Timestamp(millis: 1_700_000_000_000, counter: 0)

    @Test func theReleaseFollowsTheClockAndNewerBytesFollowIt() throws {
        let hello = Hello(schemaVersion: 1, capabilities: ["fastpath"], logEpoch: "ab", clock: clock,
                          release: HubSyncRelease.version, unknown: [0xAA, 0xBB])
        let bytes = SyncMessage.hello(hello).encoded()
        let head = SyncMessage.hello(Hello(schemaVersion: 1, capabilities: ["fastpath"], logEpoch: "ab", clock: clock)).encoded()
        #expect(bytes == head + [0, 0, 0, 5] + Array("0.2.0".utf8) + [0xAA, 0xBB])
        #expect(try SyncMessage.decode(bytes) == .hello(hello))
        #expect(HubSyncRelease.version == "0.2.0")
    }

    /// Release 0.1.0 sends nothing after the clock: no release. Bytes after the clock that are
    /// not a release's string (too long, control characters, too short for a length) stay unknown.
    @Test(arguments: [[UInt8](), [0xAA], [0, 0, 0, 2, 0x0A, 0x0B], [0, 0, 0, 65] + [UInt8](repeating: 0x41, count: 65), [0, 0, 0, 0]])
    func bytesThatAreNoReleaseAreKeptAsTheyAre(after: [UInt8]) throws {
        let head = SyncMessage.hello(Hello(schemaVersion: 1, capabilities: [], logEpoch: "", clock: clock)).encoded()
        guard case .hello(let hello) = try SyncMessage.decode(head + after) else { Issue.record("not a hello"); return }
        #expect(hello.release == nil)
        #expect(hello.unknown == after)
        #expect(SyncMessage.hello(hello).encoded() == head + after)
    }
}
