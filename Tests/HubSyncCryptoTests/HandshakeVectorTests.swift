import Foundation
import Testing
@testable import HubSyncCrypto

/// The worked example of protocol/SPEC.md 2.6 (protocol/vectors/handshake.json), computed
/// independently by protocol/vectors/generate_handshake.py (a Python composition over
/// libsodium primitives) and reproduced here by the state machines.
@Suite struct HandshakeVectorTests {
    static let vectors: [String: String] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("protocol/vectors/handshake.json")
        let object = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return object.compactMapValues { $0 as? String }
    }()
    static func v(_ name: String) -> String { vectors[name]! }
    static var initiatorSeed: String { v("initiator_seed") }
    static var responderSeed: String { v("responder_seed") }
    static var initiatorEphemeral: String { v("initiator_ephemeral_secret") }
    static var responderEphemeral: String { v("responder_ephemeral_secret") }
    static var msg1: String { v("message1") }
    static var transcriptHash: String { v("transcript_hash") }
    static var kxR2I: String { v("k_r2i") }
    static var kxI2R: String { v("k_i2r") }
    static var hsR2I: String { v("hs_r2i") }
    static var hsI2R: String { v("hs_i2r") }
    static var appR2I: String { v("app_r2i") }
    static var appI2R: String { v("app_i2r") }
    static var initiatorDevice: String { v("initiator_device") }
    static var responderDevice: String { v("responder_device") }

    static func key(_ text: String) -> SecureBytes { SecureBytes(copying: bytes(hex: text)) }

    @Test func stateMachinesReproduceTheVector() throws {
        var initiator = HandshakeInitiator(
            identity: try SigningKey(seed: Self.key(Self.initiatorSeed)),
            ephemeral: .init(secretKey: Self.key(Self.initiatorEphemeral)))
        var responder = HandshakeResponder(
            identity: try SigningKey(seed: Self.key(Self.responderSeed)),
            ephemeral: .init(secretKey: Self.key(Self.responderEphemeral)))

        let msg1 = initiator.start()
        #expect(hex(msg1) == Self.msg1)
        let msg2 = try responder.receive(msg1)
        #expect(hex(msg2) == Self.v("message2"))
        let msg3 = try initiator.receive(msg2)
        #expect(hex(msg3) == Self.v("message3"))
        let (device, msg4, responderResult) = try responder.receiveIdentity(msg3)
        #expect(hex(msg4) == Self.v("message4"))
        #expect(device.hex == Self.initiatorDevice)
        let initiatorResult = try initiator.receiveFinish(msg4)
        #expect(initiatorResult.peerDevice.hex == Self.responderDevice)

        #expect(hex(initiatorResult.transcriptHash) == Self.transcriptHash)
        #expect(hex(HandshakeFixture.bytes(of: initiatorResult.sendKey)) == Self.appI2R)
        #expect(hex(HandshakeFixture.bytes(of: initiatorResult.receiveKey)) == Self.appR2I)
        #expect(hex(HandshakeFixture.bytes(of: responderResult.sendKey)) == Self.appR2I)
        #expect(hex(HandshakeFixture.bytes(of: responderResult.receiveKey)) == Self.appI2R)
    }

    @Test func keyScheduleMatchesTheVector() throws {
        let initiatorEphemeral = Handshake.EphemeralKeyPair(secretKey: Self.key(Self.initiatorEphemeral))
        let responderEphemeral = Handshake.EphemeralKeyPair(secretKey: Self.key(Self.responderEphemeral))
        let fromInitiator = try Handshake.sessionKeys(
            role: .initiator, ephemeral: initiatorEphemeral, peerPublicKey: responderEphemeral.publicKey)
        let fromResponder = try Handshake.sessionKeys(
            role: .responder, ephemeral: responderEphemeral, peerPublicKey: initiatorEphemeral.publicKey)
        for keys in [fromInitiator, fromResponder] {
            #expect(hex(HandshakeFixture.bytes(of: keys.responderToInitiator)) == Self.kxR2I)
            #expect(hex(HandshakeFixture.bytes(of: keys.initiatorToResponder)) == Self.kxI2R)
        }
        let th = Handshake.transcriptHash(message1: bytes(hex: Self.msg1), responderEphemeralKey: responderEphemeral.publicKey)
        #expect(hex(th) == Self.transcriptHash)
        let derived = Handshake.DerivedKeys(sessionKeys: fromInitiator, transcriptHash: th)
        #expect(hex(HandshakeFixture.bytes(of: derived.handshakeResponderToInitiator)) == Self.hsR2I)
        #expect(hex(HandshakeFixture.bytes(of: derived.handshakeInitiatorToResponder)) == Self.hsI2R)
        #expect(hex(HandshakeFixture.bytes(of: derived.trafficResponderToInitiator)) == Self.appR2I)
        #expect(hex(HandshakeFixture.bytes(of: derived.trafficInitiatorToResponder)) == Self.appI2R)
    }
}
