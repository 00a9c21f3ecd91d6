import Foundation
import HubSyncCrypto
import HubSyncNet
import Logging
import Synchronization
import Testing

/// Which invite names the agent's advert offers (`i=`), on a desk with a hand-moved clock.
@Suite struct PairingDeskAdvertTests {
    final class Clock: Sendable {
        let now = Atomic<UInt64>(1_000_000)
    }

    func desk(_ clock: Clock) -> PairingDesk {
        PairingDesk(identity: SigningKey.generate(), logger: Logger(label: "test"), clock: { clock.now.load(ordering: .relaxed) }) { _, _ in
            throw PairingError(code: .io, message: "not used")
        }
    }

    @Test func openInvitesAreOfferedAndClosedOnesLingerThenGo() async {
        let clock = Clock()
        let d = desk(clock)
        #expect(d.advertisedInviteNames().isEmpty)
        let first = d.open(ttlMillis: 10_000, attempts: 3)
        let second = d.open(ttlMillis: 60_000, attempts: 3)
        #expect(d.advertisedInviteNames() == [first.code.name, second.code.name].sorted())

        // The first expires: still named for the linger time after it was seen closed, then gone.
        clock.now.add(10_000, ordering: .relaxed)
        #expect(d.advertisedInviteNames(lingerMillis: 5_000).contains(first.code.name))
        clock.now.add(4_999, ordering: .relaxed)
        #expect(d.advertisedInviteNames(lingerMillis: 5_000).contains(first.code.name))
        clock.now.add(1, ordering: .relaxed)
        #expect(d.advertisedInviteNames(lingerMillis: 5_000) == [second.code.name])

        // A withdrawn invite goes at once.
        d.cancel(named: second.code.name)
        #expect(d.advertisedInviteNames(lingerMillis: 5_000).isEmpty)
    }
}
