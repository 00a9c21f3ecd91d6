import Foundation
import HubSyncStore
import Testing

@Suite struct WakeSignalTests {
    @Test func aSignalBeforeTheWaitIsKeptAndSignalsCoalesce() async {
        let signal = WakeSignal()
        signal.signal()
        signal.signal()
        #expect(await signal.wait())
        // The two signals were one wake-up: the next wait times out.
        #expect(await signal.wait(until: .now + .milliseconds(20)) == .timedOut)
    }

    @Test func aWaitingTaskIsWokenByAnotherTask() async {
        let signal = WakeSignal()
        async let woken = signal.wait()
        // Signal until the waiter has been woken: a signal before it waits is kept as well.
        signal.signal()
        #expect(await woken)
    }

    @Test func finishEndsTheWaitAndCancellationLeavesTheSignalUsable() async {
        let signal = WakeSignal()
        let waiter = Task { await signal.wait() }
        waiter.cancel()
        #expect(await waiter.value == false)
        signal.signal()
        #expect(await signal.wait(until: .now + .seconds(5)) == .signalled)
        signal.finish()
        #expect(await signal.wait() == false)
        #expect(await signal.wait(until: .now + .seconds(5)) == .ended)
    }

    @Test func aBroadcastWakesEverySubscriber() async {
        let broadcast = WakeBroadcast()
        let a = broadcast.subscribe(), b = broadcast.subscribe()
        broadcast.signal()
        #expect(await a.wait())
        #expect(await b.wait())
        broadcast.unsubscribe(a)
        #expect(await a.wait() == false)
    }
}

@Suite struct ChangeFeedStoreTests {
    let dir = TemporaryDirectory()

    @Test func aFeedFarBehindReadsEveryChangeFromTheLog() async throws {
        let store = try makeStore(dir)
        let feed = try store.changeFeed(after: nil, pageSize: 100)
        for b in 0..<30 {
            try store.apply((0..<1000).map { .put(key("memories", "m\(b)-\($0)"), ["text": "x"]) })
        }
        var sequences: [Int64] = []
        for try await e in feed {
            sequences.append(e.sequence)
            if sequences.count == 30_000 { break }
        }
        #expect(sequences == Array(1...30_000))
    }
}
