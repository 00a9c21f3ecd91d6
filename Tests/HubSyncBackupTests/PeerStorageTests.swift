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
        let f = Fixture(quota: 1000, quarantine: 0)
        #expect(f.put("data/aa/a", [UInt8](repeating: 1, count: 900)) == [0])
        let over = f.put("data/aa/b", [UInt8](repeating: 2, count: 200))
        #expect(over.first == PeerProtocol.Status.overQuota.rawValue)
        #expect(String(decoding: over.dropFirst(), as: UTF8.self).contains("over quota"))
        #expect(f.get("data/aa/a").count == 901)
        // Moved into quarantine that lasts 0 s: the next usage request frees it.
        #expect(f.prune(["data/aa/a"]).first == 0)
        let usage = try PeerProtocol.Usage.decode(Array(f.ask(PeerProtocol.Request(.usage)).dropFirst()))
        #expect(usage.quarantined == 0 && usage.used < 100 && usage.quota == 1000)
        #expect(f.put("data/aa/b", [UInt8](repeating: 2, count: 200)) == [0])
    }
}
