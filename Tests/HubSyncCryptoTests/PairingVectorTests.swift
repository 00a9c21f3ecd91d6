import Testing
@testable import HubSyncCrypto
import HubSyncHousehold

/// protocol/vectors/pairing.json, written by protocol/vectors/generate_pairing.py (pure Python
/// ristretto255 and Ed25519, no libsodium), reproduced by the libsodium-based Swift code.
@Suite struct PairingVectorTests {
    static func cpace() throws -> [String: Any] { try PairingFixture.vectors()["cpace"] as! [String: Any] }
    static func secure(_ text: String) -> SecureBytes { SecureBytes(copying: bytes(hex: text)) }

    @Test func cpaceStepsMatch() throws {
        let v = try Self.cpace()
        let secret = SecureBytes(copying: Array((v["secret"] as! String).utf8))
        let name = Array((v["invite_name"] as! String).utf8)
        let sid = bytes(hex: v["session_id"] as! String)
        let g = CPace.generator(password: secret, channelID: name, sessionID: sid)
        #expect(g.withUnsafeBytes { hex(Array($0)) } == v["generator"] as! String)
        let yJ = Self.secure(v["joiner_scalar"] as! String), yI = Self.secure(v["inviter_scalar"] as! String)
        let shareJ = CPace.publicShare(scalar: yJ, generator: g)
        let shareI = CPace.publicShare(scalar: yI, generator: g)
        #expect(hex(shareJ) == v["joiner_share"] as! String)
        #expect(hex(shareI) == v["inviter_share"] as! String)
        let k = try #require(CPace.sharedPoint(scalar: yJ, peerShare: shareI))
        #expect(k.withUnsafeBytes { hex(Array($0)) } == v["shared_point"] as! String)
        let isk = CPace.intermediateSessionKey(
            sessionID: sid, sharedPoint: k, joinerShare: shareJ, joinerData: [], inviterShare: shareI, inviterData: [])
        #expect(isk.withUnsafeBytes { hex(Array($0)) } == v["isk"] as! String)
        let keys = Pairing.Keys(isk: isk)
        #expect(hex(keys.inviterConfirmation) == v["inviter_confirmation"] as! String)
        #expect(hex(keys.joinerConfirmation) == v["joiner_confirmation"] as! String)
        #expect(keys.inviterToJoiner.withUnsafeBytes { hex(Array($0)) } == v["key_i2j"] as! String)
        #expect(keys.joinerToInviter.withUnsafeBytes { hex(Array($0)) } == v["key_j2i"] as! String)

        let wrong = CPace.generator(password: SecureBytes(copying: Array((v["wrong_secret"] as! String).utf8)),
                                    channelID: name, sessionID: sid)
        #expect(hex(CPace.publicShare(scalar: yJ, generator: wrong)) == v["wrong_joiner_share"] as! String)
    }

    @Test func stateMachinesReproduceMessagesOneAndTwo() throws {
        let v = try Self.cpace()
        let code = try InviteCode(parsing: v["code"] as! String)
        var joiner = PairingJoiner(
            identity: try SigningKey(seed: Self.secure(v["joiner_seed"] as! String)), code: code, details: .init(),
            scalar: Self.secure(v["joiner_scalar"] as! String), sessionID: bytes(hex: v["session_id"] as! String))
        var inviter = PairingInviter(
            identity: try SigningKey(seed: Self.secure(v["inviter_seed"] as! String)), code: code,
            attemptsLeft: v["attempts_left"] as! Int, scalar: Self.secure(v["inviter_scalar"] as! String))
        let m1 = joiner.start()
        #expect(hex(m1) == v["message1"] as! String)
        let m2 = try inviter.receive(m1)
        #expect(hex(m2) == v["message2"] as! String)
        let m3 = try joiner.receive(m2)
        #expect(hex(Array(m3[0..<32])) == v["joiner_confirmation"] as! String)
        #expect(try inviter.receiveConfirmation(m3).joinerKey.description == v["joiner_key"] as! String)
        // Finding 9 of issue 10: neither identity key travels outside the PAKE's key.
        for key in [v["joiner_key"] as! String, v["inviter_key"] as! String] {
            for message in [m1, m2, m3] { #expect(!hex(message).contains(key)) }
        }
    }

    @Test func membershipStatementsMatch() throws {
        let v = try PairingFixture.vectors()["membership"] as! [String: Any]
        let founder = try SigningKey(seed: Self.secure(v["founder_seed"] as! String))
        let genesis = try MembershipStatement(encoded: bytes(hex: v["genesis"] as! String))
        let add = try MembershipStatement(encoded: bytes(hex: v["add"] as! String))
        #expect(genesis.isSignatureValid && add.isSignatureValid)
        #expect(hex(genesis.groupID) == v["group_id"] as! String)
        #expect(hex(genesis.hash) == v["genesis_hash"] as! String)
        #expect(hex(add.hash) == v["add_hash"] as! String)
        // Ed25519 is deterministic: signing the same facts here gives the same bytes.
        let again = MembershipStatement.genesis(founder: founder, time: genesis.time, nonce: genesis.nonce)
        #expect(again.encoded() == genesis.encoded())
        let addAgain = MembershipStatement.add(add.subject, by: founder, credential: genesis, time: add.time, nonce: add.nonce)
        #expect(addAgain.encoded() == add.encoded())
        let state = MembershipState(groupID: genesis.groupID, statements: [add, genesis])
        #expect(state.members.count == 2)
    }

    @Test func theReferenceRejectsWhatLibsodiumRejects() throws {
        let invalid = try PairingFixture.vectors()["invalid_points"] as! [[String: Any]]
        for case_ in invalid {
            let point = bytes(hex: case_["hex"] as! String)
            #expect(CPace.sharedPoint(scalar: CPace.randomScalar(), peerShare: point) == nil, "\(case_["why"]!)")
        }
    }
}
