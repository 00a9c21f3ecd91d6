@_exported import HubSyncTestSupport
import HubSyncCore
import HubSyncCrypto

// The seeded generator (`SplitMix64`) comes from HubSyncTestSupport, re-exported above to every
// file of this target.

func device(_ n: UInt64) -> DeviceID { DeviceID(words: (n &* 0x0101_0101, n, ~n, 7)) }

let testKey = RecordKey(collection: "personas", id: "p1")

/// A replica in a simulated household: its own device, clock and copy of one record.
struct Replica {
    var device: DeviceID
    var clock = HybridLogicalClock()
    var state = RecordState(key: testKey)
    var wall: UInt64 = 1_700_000_000_000

    init(device: DeviceID) { self.device = device }

    mutating func stamp(_ rng: inout SplitMix64) -> Stamp {
        // Wall clocks that drift and sometimes stand still, so counters and ties get exercised.
        wall += UInt64.random(in: 0...2, using: &rng)
        return Stamp(time: clock.tick(wallMillis: wall), device: device)
    }

    /// One random local operation.
    mutating func randomOperation(_ rng: inout SplitMix64) {
        let fields = ["name", "style", "bio"]
        let values: [Value] = ["a", "b", 1, 2.5, true, .null, ["k": "v"], [1, 2]]
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<5:
            state.write(field: fields.randomElement(using: &rng)!, value: values.randomElement(using: &rng)!,
                        stamp: stamp(&rng))
        case 5, 6:
            state.insert([["x", "y", "z"].randomElement(using: &rng)!], into: "traits", stamp: stamp(&rng))
        case 7:
            state.remove([["x", "y", "z"].randomElement(using: &rng)!], from: "traits", stamp: stamp(&rng))
        case 8:
            state.delete(stamp: stamp(&rng))
        default:
            state.undelete(stamp: stamp(&rng))
        }
    }

    mutating func receive(_ other: RecordState) {
        try? clock.observe(other.greatestTime, wallMillis: .max / 2)
        state = RecordState.merge(state, other)
    }
}

/// Runs a random household of `replicaCount` devices for `steps` steps; returns every state
/// any replica held after an operation, and the replicas at the end.
func simulate(seed: UInt64, replicaCount: Int = 3, steps: Int = 30) -> (snapshots: [RecordState], replicas: [Replica]) {
    var rng = SplitMix64(seed: seed)
    var replicas = (0..<replicaCount).map { Replica(device: device(UInt64($0) + 1)) }
    var snapshots: [RecordState] = []
    for _ in 0..<steps {
        let i = Int.random(in: 0..<replicaCount, using: &rng)
        if Int.random(in: 0..<4, using: &rng) == 0 {
            let j = Int.random(in: 0..<replicaCount, using: &rng)
            replicas[i].receive(replicas[j].state)
        } else {
            replicas[i].randomOperation(&rng)
            snapshots.append(replicas[i].state)
        }
    }
    return (snapshots, replicas)
}

/// The conflicts of a state, as comparable data: field → competing values, winner first.
func conflictSummary(_ s: RecordState) -> [String: [Value]] {
    var out: [String: [Value]] = [:]
    for f in s.conflictedFields { out[f] = s.fields[f]!.versions.map(\.value) }
    return out
}
