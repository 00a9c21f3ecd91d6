import Foundation
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
        let deadline = ContinuousClock.now + .seconds(10)
        while discovery.state == .starting, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
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
