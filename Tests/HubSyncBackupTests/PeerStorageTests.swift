import Foundation
@testable import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import Testing

/// The peer target's wire encodings against protocol/vectors/peer_backup.json, and the storing
/// side's rules: append-only, signed prune plans, quarantine (protocol/SPEC.md 5.12).
@Suite struct PeerStorageTests {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/vectors/peer_backup.json")

    func bytes(_ v: Value?) throws -> [UInt8] { try #require(v?.stringValue.flatMap(hexDecode)) }

    @Test func vectorsMatch() throws {
        let v = try #require(try JSON.parse([UInt8](Data(contentsOf: Self.url))).objectValue)
        let key = try SigningKey(seed: SecureBytes(copying: try bytes(v["signer_seed"])))
        #expect(key.publicKey.rawRepresentation == (try bytes(v["signer_public_key"])))
        let server = try DeviceID(bytes: try bytes(v["server_device_id"]))
        guard case .int(let time) = v["time"] ?? .null else { Issue.record("time"); return }
        let names = try #require(v["names"]?.arrayValue).compactMap(\.stringValue)
        let plan = PrunePlan(signer: key.publicKey, server: server, time: UInt64(time), names: names)
        let signed = try bytes(v["signed_plan"])
        #expect(plan.signed(by: key) == signed) // Ed25519 is deterministic
        let read = try PrunePlan.verify(signed)
        #expect(read.names == names && read.server == server && read.time == UInt64(time))
        for r in try #require(v["requests"]?.arrayValue).compactMap(\.objectValue) {
            let encoded = try bytes(r["encoded"])
            let decoded = try PeerProtocol.Request.decode(encoded)
            #expect(decoded.encoded() == encoded)
            #expect(decoded.name == r["name"]?.stringValue)
            if r["op"] == "put" {
                #expect(decoded.data == (try bytes(r["data"])))
                #expect(decoded.replacing == (r["replacing"] == .bool(true)))
            }
            if r["op"] == "range", case .int(let o) = r["offset"] ?? .null { #expect(decoded.offset == UInt64(o)) }
        }
    }

    /// A storage, a client, and the answer helpers.
    struct Fixture {
        let dir = TemporaryDirectory()
        let storage: PeerStorage
        let client = device(7), server = device(9)
        let member = SigningKey.generate()
        init(quota: Int = 1 << 20, quarantine: Int = 3600) {
            storage = PeerStorage(dataDirectory: dir.path, quota: quota, quarantineSeconds: quarantine)
        }
        func ask(_ q: PeerProtocol.Request, members: Set<PublicSigningKey>? = nil) -> [UInt8] {
            storage.handle(q, from: client, server: server, isMember: { (members ?? [member.publicKey]).contains($0) })
        }
        func put(_ name: String, _ data: [UInt8], replacing: Bool = false) -> [UInt8] {
            var q = PeerProtocol.Request(.put, name)
            q.data = data
            q.replacing = replacing
            return ask(q)
        }
        func get(_ name: String) -> [UInt8] { ask(PeerProtocol.Request(.get, name)) }
        func prune(_ names: [String], by key: SigningKey? = nil, server: DeviceID? = nil) -> [UInt8] {
            let k = key ?? member
            var q = PeerProtocol.Request(.prune)
            q.data = PrunePlan(signer: k.publicKey, server: server ?? self.server, time: 1, names: names).signed(by: k)
            return ask(q)
        }
        var repo: String { dir.path + "/backups/" + client.hex + "/repo" }
    }

    @Test func filesAreAddedOnceAndNeverReplacedOrDeletedOutsideLeases() {
        let f = Fixture()
        #expect(f.put("data/aa/x", [1, 2, 3]) == [0])
        #expect(f.put("data/aa/x", [9, 9, 9]) == [0]) // accepted, changes nothing
        #expect(f.get("data/aa/x") == [0, 1, 2, 3])
        #expect(f.put("data/aa/x", [9], replacing: true).first == PeerProtocol.Status.refused.rawValue)
        #expect(f.ask(PeerProtocol.Request(.delete, "data/aa/x")).first == PeerProtocol.Status.refused.rawValue)
        #expect(f.get("data/aa/x") == [0, 1, 2, 3])
        // Leases are replaced and deleted.
        #expect(f.put("locks/l1", [1]) == [0])
        #expect(f.put("locks/l1", [2], replacing: true) == [0])
        #expect(f.get("locks/l1") == [0, 2])
        #expect(f.ask(PeerProtocol.Request(.delete, "locks/l1")) == [0])
        #expect(f.get("locks/l1").first == PeerProtocol.Status.notFound.rawValue)
        // Names that leave the area are refused.
        for bad in ["../x", "/etc/passwd", "data/../../x", "data//x", "a b", "data/.tmp-1"] {
            #expect(f.put(bad, [1]).first == PeerProtocol.Status.invalid.rawValue, "\(bad)")
        }
    }

    @Test func pruneNeedsAMembersValidPlanForThisPeerAndMovesIntoQuarantine() throws {
        let f = Fixture()
        _ = f.put("snapshots/s1", [1]); _ = f.put("data/aa/p1", [2, 2])
        let refused = PeerProtocol.Status.refused.rawValue
        #expect(f.prune(["snapshots/s1"], by: SigningKey.generate()).first == refused) // not a member
        #expect(f.prune(["snapshots/s1"], server: device(3)).first == refused) // another peer's plan
        var tampered = PeerProtocol.Request(.prune)
        tampered.data = PrunePlan(signer: f.member.publicKey, server: f.server, time: 1, names: ["data/aa/p1"]).signed(by: f.member)
        tampered.data[tampered.data.count - 70] ^= 1
        #expect(f.ask(tampered).first == refused)
        #expect(f.prune(["locks/x"]).first == PeerProtocol.Status.invalid.rawValue)
        #expect(f.get("snapshots/s1") == [0, 1])

        let answer = f.prune(["snapshots/s1", "data/aa/p1", "data/aa/missing"])
        #expect(answer.first == 0)
        let moved = try PeerProtocol.decodeMoved(Array(answer.dropFirst()))
        #expect(moved.names == ["snapshots/s1", "data/aa/p1"])
        #expect(f.get("snapshots/s1").first == PeerProtocol.Status.notFound.rawValue)
        let quarantine = f.dir.path + "/backups/" + f.client.hex + "/quarantine"
        let folders = try FileManager.default.contentsOfDirectory(atPath: quarantine)
        #expect(folders.count == 1)
        #expect(FileManager.default.contents(atPath: quarantine + "/" + folders[0] + "/files/data/aa/p1") == Data([2, 2]))
        #expect(FileManager.default.fileExists(atPath: quarantine + "/" + folders[0] + "/plan"))
    }

    @Test func quotaCountsQuarantineAndExpiredQuarantineIsFreed() throws {
        // data/aa/a costs 30,000 bytes and three new folders (repo, data, aa) of 4,096 each.
        let f = Fixture(quota: 80_000, quarantine: 0)
        #expect(f.put("data/aa/a", [UInt8](repeating: 1, count: 30_000)) == [0])
        let over = f.put("data/aa/b", [UInt8](repeating: 2, count: 40_000))
        #expect(over.first == PeerProtocol.Status.overQuota.rawValue)
        #expect(String(decoding: over.dropFirst(), as: UTF8.self).contains("over quota"))
        #expect(f.get("data/aa/a").count == 30_001)
        // Moved into quarantine that lasts 0 s: the next usage request frees it.
        #expect(f.prune(["data/aa/a"]).first == 0)
        let usage = try PeerProtocol.Usage.decode(Array(f.ask(PeerProtocol.Request(.usage)).dropFirst()))
        #expect(usage.quarantined == 0 && usage.used < 20_000 && usage.quota == 80_000)
        #expect(f.put("data/aa/b", [UInt8](repeating: 2, count: 40_000)) == [0])
    }

    /// Finding 7 of issue 10: empty files under new folders and prune plans were free.
    @Test func emptyFilesFoldersAndPrunePlansCountAgainstTheQuota() throws {
        let f = Fixture(quota: 100_000, quarantine: 3600)
        var stored = 0
        for i in 0..<200 where f.put("data/\(String(format: "%02x", i))/x", []) == [0] { stored += 1 }
        // Each costs a 4,096-byte file and a new folder: about 11 fit, never 200.
        #expect(stored > 0 && stored < 15)
        let usage = try PeerProtocol.Usage.decode(Array(f.ask(PeerProtocol.Request(.usage)).dropFirst()))
        #expect(usage.used <= 100_000 && usage.used >= stored * 2 * PeerStorage.entryCost)
        // Plans of 61 KB each: refused once they would pass the quota (plus an eighth), nothing moved.
        let names = (0..<4000).map { String(format: "data/zz/%011d", $0) }
        var accepted = 0
        for _ in 0..<20 where f.prune(names).first == 0 { accepted += 1 }
        #expect(accepted == 0)
        #expect(f.prune(names).first == PeerProtocol.Status.overQuota.rawValue)
        let after = try PeerProtocol.Usage.decode(Array(f.ask(PeerProtocol.Request(.usage)).dropFirst()))
        #expect(after.used <= 100_000 + 100_000 / 8)
    }

    /// Review 2 of issue 10, G4: at a small quota the eighth was less than any plan costs, so a
    /// full repository could never be pruned.
    @Test func aFullRepositoryUnderASmallQuotaCanStillBePruned() throws {
        let f = Fixture(quota: 100_000, quarantine: 3600)
        var stored: [String] = []
        for i in 0..<100 {
            let name = "data/e0/\(String(format: "%04d", i))"
            guard f.put(name, [UInt8](repeating: 7, count: 8_000)) == [0] else { break }
            stored.append(name)
        }
        #expect(stored.count >= 5)
        #expect(f.put("data/e0/more", [UInt8](repeating: 7, count: 8_000)).first == PeerProtocol.Status.overQuota.rawValue)
        #expect(f.prune([stored[0]]).first == 0, "a one-file plan fits the allowance")
    }

    @Test func namesDeeperThanFourPartsAreRefused() {
        let f = Fixture()
        #expect(f.put("data/aa/bb/cc", [1]) == [0])
        let deep = f.put("data/a/b/c/d", [1])
        #expect(deep.first == PeerProtocol.Status.invalid.rawValue)
        #expect(f.prune(["a/b/c/d/e"]).first == PeerProtocol.Status.invalid.rawValue)
        #expect(f.get("data/aa").first == PeerProtocol.Status.notFound.rawValue, "a folder is not found, not an I/O failure")
    }

    /// Finding 6 of issue 10: a range past the end trapped, a huge one zero-filled 4 GiB.
    static let outside: [(UInt64, UInt32)] = [(.max, 1), (0, .max), (5, 10), (11, 0), (UInt64(Int.max), 1), (1 << 63, 1 << 31)]
    @Test(arguments: outside)
    func rangesOutsideTheFileAreRefused(offset: UInt64, length: UInt32) {
        let f = Fixture()
        #expect(f.put("data/aa/a", Array(0..<10)) == [0])
        var q = PeerProtocol.Request(.range, "data/aa/a")
        q.offset = offset
        q.length = length
        let answer = f.ask(q)
        #expect(answer.first == PeerProtocol.Status.invalid.rawValue, "\(answer.prefix(200))")
        #expect(answer.count < 1000)
    }

    @Test func rangesInsideTheFileAreAnswered() {
        let f = Fixture()
        #expect(f.put("data/aa/a", Array(0..<10)) == [0])
        var q = PeerProtocol.Request(.range, "data/aa/a")
        (q.offset, q.length) = (3, 7)
        #expect(f.ask(q) == [0] + Array(3..<10))
        (q.offset, q.length) = (10, 0)
        #expect(f.ask(q) == [0])
        q.name = "data/aa/missing"
        #expect(f.ask(q).first == PeerProtocol.Status.notFound.rawValue)
    }

    /// Any bytes a trusted peer sends as a request get an answer; none traps (a bounded fuzz run,
    /// seeded so a failure repeats).
    @Test func fuzzedRequestsAreAnsweredAndNeverTrap() throws {
        let f = Fixture(quota: 1 << 20)
        #expect(f.put("data/aa/a", Array(0..<100)) == [0])
        var random = SeededRandom(seed: 0x10b)
        let seeds: [[UInt8]] = [
            PeerProtocol.Request(.get, "data/aa/a").encoded(),
            { var q = PeerProtocol.Request(.range, "data/aa/a"); q.offset = 5; q.length = 10; return q.encoded() }(),
            { var q = PeerProtocol.Request(.put, "data/bb/b"); q.data = [1, 2, 3]; return q.encoded() }(),
            PeerProtocol.Request(.list, "data").encoded(),
            PeerProtocol.Request(.exists, "config").encoded(),
            PeerProtocol.Request(.delete, "locks/x").encoded(),
            PeerProtocol.Request(.usage).encoded(),
            { var q = PeerProtocol.Request(.prune); q.data = PrunePlan(signer: f.member.publicKey, server: f.server, time: 1,
                                                                        names: ["data/aa/a"]).signed(by: f.member); return q.encoded() }(),
        ]
        for round in 0..<3000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<Int(random.next() % 4) + 1 {
                let at = Int(random.next() % UInt64(bytes.count + 1))
                switch random.next() % 4 {
                case 0 where at < bytes.count: bytes[at] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.insert(contentsOf: (0..<Int(random.next() % 9)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
                case 2 where at < bytes.count: bytes.removeSubrange(at..<min(bytes.count, at + Int(random.next() % 8) + 1))
                default: if !bytes.isEmpty { bytes[at % bytes.count] = 0xff } // lengths and offsets to their maximum
                }
            }
            do {
                let answer = f.ask(try PeerProtocol.Request.decode(bytes))
                #expect(answer.first.map { $0 <= PeerProtocol.Status.invalid.rawValue } == true && answer.count <= 200_000)
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }
}
