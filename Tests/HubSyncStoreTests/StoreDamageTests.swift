import Foundation
import HubSyncCore
import HubSyncStore
import Synchronization
import Testing

/// A store file damaged under the process that has it open: the first call that meets the
/// damage latches it, every write from then on is refused with it before it starts (even one
/// that would touch no damaged page), reads go on, and the handlers hear it once.
@Suite struct StoreDamageTests {
    let dir = TemporaryDirectory()

    @Test func damageFoundOnceRefusesEveryLaterWriteAndIsToldOnce() throws {
        do {
            // Written by another handle, closed again: every page is in the main file, none in a WAL.
            let first = try makeStore(dir)
            let text = String(repeating: "tea and a walk ", count: 70)
            for start in stride(from: 0, to: 3_000, by: 500) {
                try first.apply((start..<start + 500).map { RecordOperation.put(key("memories", "m\($0)"), ["text": .string(text)]) })
            }
        }
        let store = try makeStore(dir)
        let told = Mutex<[StoreError]>([])
        store.onDamage { error in told.withLock { $0.append(error) } }
        #expect(store.damageFound == nil)
        // Healthy so far: writes go in, and a refused write (bad input) is no damage.
        #expect(throws: StoreError.self) { try store.apply(.put(key("widgets", "w"), ["x": 1])) }
        #expect(store.damageFound == nil)

        let path = dir.path + "/a.sqlite"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(truncate(path, off_t(size / 2)) == 0)
        // A full read meets the pages cut off.
        let read = #expect(throws: StoreError.self) { _ = try store.verifyDigests() }
        #expect(read?.code == .damaged || read?.code == .io, "\(String(describing: read))")
        let found = try #require(store.damageFound)
        #expect(found.message.contains("hubsync repair") || found.message.contains("I/O error"), "\(found.message)")

        // Every write is refused with it, also one of the peers table only.
        let refused = #expect(throws: StoreError.self) { _ = try store.addPeer(device(7), address: "127.0.0.1:7400") }
        #expect(refused?.message == found.message)
        #expect(throws: StoreError.self) { try store.apply(.put(key("memories", "after"), ["text": "x"])) }
        _ = try? store.verifyDigests()
        #expect(told.withLock { $0.count } == 1)
        // A handler added later hears of it at once.
        let late = Mutex(false)
        store.onDamage { _ in late.withLock { $0 = true } }
        #expect(late.withLock { $0 })
    }
}
