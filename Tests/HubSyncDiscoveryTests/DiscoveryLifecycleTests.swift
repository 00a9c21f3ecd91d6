import Foundation
import HubSyncTestSupport
@testable import HubSyncDiscovery
import Testing

/// The avahi engine in this process: it starts, settles on a state that explains itself
/// whether or not this machine runs avahi-daemon, and stops cleanly. Discovery across real
/// daemons is in Tests/SystemTests.
@Suite struct DiscoveryLifecycleTests {
    @Test func startsSettlesAndStops() async throws {
        var configuration = DiscoveryConfiguration(port: 7400, txt: Discovery.txt(groupKey: nil))
        configuration.retryInterval = .milliseconds(200)
        let discovery = Discovery(configuration)
        try discovery.start()
        // Still starting after 10 s shows as an unexpected state below.
        try? await waitUntil("discovery to settle", timeout: 10, interval: 0.02) { discovery.state != .starting }
        switch discovery.state {
        case .running, .collisionRenamed: break
        case .daemonUnavailable(let reason): #expect(reason.hasPrefix("avahi-daemon is not running"), "\(reason)")
        case let other: Issue.record("unexpected state \(other)")
        }
        #expect(discovery.serviceName.hasPrefix("hubsync-"))
        discovery.stop()
        #expect(discovery.state == .stopped)
        // The event stream ends after stop, after whatever was buffered.
        var count = 0
        for await _ in discovery.events { count += 1 }
        #expect(count < 1000)
        discovery.stop() // idempotent
    }

    @Test func stopBeforeStartIsHarmless() {
        let discovery = Discovery(DiscoveryConfiguration(port: 1, txt: [:]))
        discovery.stop()
        #expect(discovery.state == .stopped)
        #expect(throws: Never.self) { try discovery.start() } // after stop: does nothing
    }
}
