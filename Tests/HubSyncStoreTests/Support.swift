@_exported import HubSyncTestSupport
import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Synchronization

// `TemporaryDirectory` comes from HubSyncTestSupport, re-exported above to every file of this target.

/// A wall clock that tests move by hand.
final class ManualClock: Sendable {
    let now = Mutex<UInt64>(1_800_000_000_000)
    var read: @Sendable () -> UInt64 { { [self] in now.withLock { $0 } } }
    func set(_ v: UInt64) { now.withLock { $0 = v } }
}

func device(_ n: UInt64) -> DeviceID { DeviceID(words: (n, n, n, n)) }

func key(_ c: String, _ id: String) -> RecordKey { RecordKey(collection: c, id: id) }

/// A store for one test device in a fresh directory.
func makeStore(_ dir: TemporaryDirectory, name: String = "a", device n: UInt64 = 1,
               clock: ManualClock? = nil) throws -> Store {
    try Store(path: "\(dir.path)/\(name).sqlite", device: device(n), wallClock: clock?.read ?? Store.systemClock)
}
