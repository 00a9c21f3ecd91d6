import HubSyncCrypto
@testable import HubSyncNet
import Testing

/// Finding 8 of issue 10: strangers cost a bounded list and a bounded log.
@Suite struct RefusedDevicesTests {
    func device(_ n: UInt64) -> DeviceID { DeviceID(words: (n, n &* 3, n &* 5, n &* 7)) }

    @Test func theListKeepsTheLatest64() {
        var list = RefusedDevices()
        for n in 0..<20_000 as Range<UInt64> { _ = list.record(device(n), at: 1_000 + n) }
        #expect(list.entries.count == RefusedDevices.capacity)
        #expect(Set(list.entries.keys) == Set((20_000 - 64..<20_000).map(device)))
        list.remove(device(19_999))
        #expect(list.entries.count == 63)
    }

    @Test func oneLogLinePerIntervalCountsTheRefusalsSinceTheLast() {
        var list = RefusedDevices()
        #expect(list.record(device(1), at: 0) == 1)
        var logged: [Int] = []
        for n in 1...1_000 as ClosedRange<UInt64> {
            if let count = list.record(device(n), at: n * 25) { logged.append(count) } // 1,000 in 25 s
        }
        #expect(logged.count == 2) // at 10 s and 20 s
        #expect(logged.allSatisfy { $0 == 400 })
        #expect(list.record(device(5), at: 40_000) == 201) // what waited since 20 s, and this one
    }
}
