import Foundation
import HubSyncCrypto
@testable import HubSyncDiscovery
import Testing

/// The blinded group tag against protocol/vectors/discovery.json (written by discovery.py from
/// the spec's text, not from this code).
@Suite struct GroupTagTests {
    struct Vectors: Decodable {
        struct Tag: Decodable { var group_key: String; var epoch: UInt64; var tag: String }
        struct EpochAt: Decodable { var unix_seconds: UInt64; var epoch: UInt64 }
        var epoch_seconds: UInt64
        var vectors: [Tag]
        var epochs_at: [EpochAt]
    }

    static func load() throws -> Vectors {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir.deleteLastPathComponent()
            try #require(dir.path != "/", "no Package.swift above \(#filePath)")
        }
        let data = try Data(contentsOf: dir.appendingPathComponent("protocol/vectors/discovery.json"))
        return try JSONDecoder().decode(Vectors.self, from: data)
    }

    @Test func tagsMatchTheVectors() throws {
        let file = try Self.load()
        #expect(file.vectors.count >= 5)
        for v in file.vectors {
            let key = SymmetricKey(copying: try #require(Hex.decode(v.group_key)))
            #expect(GroupTag.tag(groupKey: key, epoch: v.epoch) == v.tag, "epoch \(v.epoch)")
        }
    }

    @Test func epochsMatchTheVectors() throws {
        let file = try Self.load()
        #expect(GroupTag.defaultEpochSeconds == file.epoch_seconds)
        for v in file.epochs_at {
            #expect(GroupTag.epoch(at: Date(timeIntervalSince1970: Double(v.unix_seconds))) == v.epoch)
        }
    }

    @Test func aTagMatchesAroundItsDayOnlyAndOnlyForItsKey() {
        let key = SymmetricKey.random()
        let day = 20_424.0 * 86_400
        let tag = GroupTag.tag(groupKey: key, epoch: 20_424)
        #expect(GroupTag.matches(tag, groupKey: key, at: Date(timeIntervalSince1970: day + 3_600)))
        #expect(GroupTag.matches(tag.uppercased(), groupKey: key, at: Date(timeIntervalSince1970: day + 3_600)))
        // Clocks straddling midnight: yesterday's and tomorrow's tags still count.
        #expect(GroupTag.matches(tag, groupKey: key, at: Date(timeIntervalSince1970: day - 60)))
        #expect(GroupTag.matches(tag, groupKey: key, at: Date(timeIntervalSince1970: day + 86_400 + 60)))
        #expect(!GroupTag.matches(tag, groupKey: key, at: Date(timeIntervalSince1970: day + 2 * 86_400 + 60)))
        #expect(!GroupTag.matches(tag, groupKey: SymmetricKey.random(), at: Date(timeIntervalSince1970: day)))
    }

    @Test func tagsOfOneGroupDifferFromDayToDay() {
        let key = SymmetricKey.random()
        let tags = Set((20_000..<20_030).map { GroupTag.tag(groupKey: key, epoch: UInt64($0)) })
        #expect(tags.count == 30)
        #expect(tags.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }
}
