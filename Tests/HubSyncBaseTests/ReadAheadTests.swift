import Foundation
import HubSyncBase
import Synchronization
import Testing

/// Imports, backups and restores read ahead on a second thread (ReadAhead): every item arrives
/// in order and the producer's result comes back, the producer never runs more than the window
/// ahead, a producer's error comes after everything made before it, and a consumer's error stops
/// the producer.
@Suite struct ReadAheadTests {
    struct Bad: Error, Equatable { let at: Int }

    @Test func everyItemArrivesInOrder() throws {
        var seen: [Int] = []
        let made = try ReadAhead.run(chunk: 7, depth: 2, produce: { emit in
            for i in 0..<10_000 { try emit(i) }
            return "made 10000"
        }, consume: { seen.append($0) })
        #expect(seen == Array(0..<10_000))
        #expect(made == "made 10000")
    }

    @Test func theProducerStaysWithinTheWindow() throws {
        let made = Atomic<Int>(0)
        var worst = 0
        try ReadAhead.run(chunk: 10, depth: 3, produce: { emit in
            for i in 0..<2_000 {
                made.add(1, ordering: .sequentiallyConsistent)
                try emit(i)
            }
        }, consume: { i in worst = max(worst, made.load(ordering: .sequentiallyConsistent) - i) })
        // Held: the chunks waiting (3), the one being consumed and the one being filled.
        #expect(worst <= 10 * 5 + 1)
    }

    @Test func aProducersErrorComesAfterWhatItMadeBefore() {
        var seen: [Int] = []
        #expect(throws: Bad(at: 1234)) {
            try ReadAhead.run(chunk: 100, depth: 2, produce: { emit in
                for i in 0..<1234 { try emit(i) }
                throw Bad(at: 1234)
            }, consume: { seen.append($0) })
        }
        #expect(seen == Array(0..<1234))
    }

    @Test func aConsumersErrorStopsTheProducer() {
        let made = Atomic<Int>(0)
        let ended = Atomic<Bool>(false)
        #expect(throws: Bad(at: 50)) {
            try ReadAhead.run(chunk: 10, depth: 2, produce: { emit in
                defer { ended.store(true, ordering: .sequentiallyConsistent) }
                for i in 0..<1_000_000 {
                    made.add(1, ordering: .sequentiallyConsistent)
                    try emit(i)
                }
            }, consume: { i in if i == 50 { throw Bad(at: 50) } })
        }
        // run returned after the producer ended, which stopped within a window of the failure.
        let hasEnded = ended.load(ordering: .sequentiallyConsistent)
        let count = made.load(ordering: .sequentiallyConsistent)
        #expect(hasEnded)
        #expect(count < 200)
    }

    @Test func aConsumersErrorComesBeforeALaterErrorOfTheProducer() {
        #expect(throws: Bad(at: 20)) {
            try ReadAhead.run(chunk: 8, depth: 2, produce: { emit in
                for i in 0..<100 { try emit(i) }
                throw Bad(at: 100)
            }, consume: { i in if i == 20 { throw Bad(at: 20) } })
        }
    }

    /// How many items were freed, and how many of them on the producing thread.
    final class FreeCounts: Sendable {
        let freed = Atomic<Int>(0)
        let byProducer = Atomic<Int>(0)
        /// The producing thread (pthread_self), once it has started.
        let producer = Atomic<UInt>(0)
    }

    /// An item that notes where it is freed.
    final class Noted: Sendable {
        let counts: FreeCounts
        init(_ counts: FreeCounts) { self.counts = counts }
        deinit {
            counts.freed.add(1, ordering: .relaxed)
            if counts.producer.load(ordering: .relaxed) == UInt(pthread_self()) { counts.byProducer.add(1, ordering: .relaxed) }
        }
    }

    /// Consumed chunks go back to the producing thread, which frees them (what it allocated): an
    /// import's writer no longer waits for the producer's malloc arena to free each item. Every
    /// item is freed once the run is over, the last ones by whoever ends it.
    @Test func theProducerFreesWhatWasConsumed() throws {
        let counts = FreeCounts()
        var consumed = 0
        try ReadAhead.run(chunk: 16, depth: 2, produce: { emit in
            counts.producer.store(UInt(pthread_self()), ordering: .relaxed)
            for _ in 0..<4_000 { try emit(Noted(counts)) }
        }, consume: { _ in consumed += 1 })
        #expect(consumed == 4_000)
        // All but the chunks consumed after the producer's last hand-over (freed as the
        // producing thread lets go of the pipe, a moment after the run returns).
        #expect(counts.freed.load(ordering: .relaxed) >= 4_000 - 16 * 4)
        let byProducer = counts.byProducer.load(ordering: .relaxed)
        #expect(byProducer >= 4_000 - 16 * 4, "\(byProducer) freed by the producer")
    }
}
