import Foundation
import HubSyncCrypto
@testable import HubSyncDiscovery
import Testing

@Suite struct TXTRecordTests {
    @Test func advertWithoutAGroupKeyHasOnlyTheVersion() {
        #expect(Discovery.txt(groupKey: nil) == ["v": "1"])
    }

    @Test func advertWithAGroupKeyCarriesTodaysTag() {
        let key = SymmetricKey.random()
        let now = Date(timeIntervalSince1970: 1_764_650_000)
        let txt = Discovery.txt(groupKey: key, at: now)
        #expect(txt["v"] == "1")
        #expect(txt["g"] == GroupTag.tag(groupKey: key, epoch: 20_424))
        // No device identity in the advert.
        #expect(Set(txt.keys) == ["v", "g"])
    }

    @Test func openInvitesAreOfferedByName() {
        let txt = Discovery.txt(groupKey: nil, invites: ["ABCD", "KQRT"])
        #expect(txt == ["v": "1", "i": "ABCD,KQRT"])
        #expect(Discovery.invites(in: txt) == ["ABCD", "KQRT"])
        #expect(Discovery.invites(in: ["v": "1", "i": " abcd ,,"]) == ["ABCD"])
        #expect(Discovery.invites(in: ["v": "1"]) == [])
        // With no invite open the advert has no `i` at all.
        #expect(Discovery.txt(groupKey: nil, invites: []).keys.contains("i") == false)
    }

    @Test func parsesKeyValueEntries() {
        let entries: [[UInt8]] = [Array("v=1".utf8), Array("G=abc".utf8), Array("flag".utf8), Array("v=2".utf8),
                                  [], Array("=x".utf8), Array("e=a=b".utf8)]
        #expect(TXTRecord.parse(entries) == ["v": "1", "g": "abc", "flag": "", "e": "a=b"])
    }

    @Test func encodesSortedByKey() {
        #expect(TXTRecord.encode(["v": "1", "g": "ab"]) == ["g=ab", "v=1"])
    }

    @Test func serviceNamesAreRandomAndCarryNoIdentity() {
        let names = Set((0..<50).map { _ in Discovery.randomServiceName() })
        #expect(names.count == 50)
        #expect(names.allSatisfy { $0.hasPrefix("hubsync-") && $0.count == 16 })
    }

    @Test func endpointBracketsIPv6() {
        #expect(DiscoveredService(name: "n", address: "10.77.0.1", port: 7400, txt: [:]).endpoint == "10.77.0.1:7400")
        #expect(DiscoveredService(name: "n", address: "fe80::1%eth0", port: 7400, txt: [:]).endpoint == "[fe80::1%eth0]:7400")
    }
}
