import Testing
@testable import HubSyncCrypto

/// The worked example of protocol/SPEC.md 2.6, computed independently (Python composition
/// over libsodium primitives) and reproduced here by the state machines.
@Suite struct HandshakeVectorTests {
    static let initiatorSeed = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    static let responderSeed = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    static let initiatorEphemeral = "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    static let responderEphemeral = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"

    static let msg1 = "0179a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"
    static let transcriptHash = "df618f79185b32c57de5c132e0d19db9d3a910e52268be77e17e0bafcd87b940"
    static let kxR2I = "658ab5697c8d05d86c4c2c7cf86f4fe59b039cb1a1c0d626ab54245a90d62f6a"
    static let kxI2R = "4053daef6960b133a632efc172a5b4b07c77481f0be540edffc57fe2369c5c0e"
    static let hsR2I = "fe6a290a7fe64738f9cb3e23976b64643c291ac3adc8624ca724dc0667d4b55e"
    static let hsI2R = "e6a849cfbfe1816e06eab07acd8ab75f69f74ee9e7daf6e5fee289088b940ec1"
    static let appR2I = "6da47cea1428cb249a03e5d0009d8286026ae46c3b14b812614eb35bb71ef49e"
    static let appI2R = "2f71b30112c0b715d5e82b61616d16cfc82c4b306d17fd11fe36a04293be4cbb"
    static let msg2 = "675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f"
        + "fcf7ce7b6b9226ae9f543b0b36b8f675ae9d6c9afcac2414f6fa4ec5a99e88553b1eca61d59a7fdb81b767ec2adf5872"
        + "26381515b4a393504d78045b7ab2c28f9c896a7fad62226370ca237a07f7b3d7bde1cbe0da451b06d1c55053ba9d3961"
        + "4142350e2f47534aaa733a97df39196b"
    static let msg3 = "697a69a503ae7164a98a8bda496e28897f526c73caffac2d23f7fcb1797650334bd4896d825300be197ca81f649686e0"
        + "48d47f7ea186c2ed46875fc9b56a850c27eb2c1ac607325d1d766ac359f043413d773fd415df641d56872c4e971715e4"
        + "1b9fde25476719787a6076fd6db7877e"
    static let initiatorDevice = "9d24e2eeaf27c2a088a564a32fc03a882dcd9804dbc0d03a119491e54ba0c933"
    static let responderDevice = "25843b3a196efcefbf5b1390d78db52babc290f100cb8455508ebcfb9923ba58"

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
        #expect(hex(msg2) == Self.msg2)
        let (device, msg3, initiatorResult) = try initiator.receive(msg2)
        #expect(hex(msg3) == Self.msg3)
        #expect(device.hex == Self.responderDevice)
        let responderResult = try responder.receiveFinish(msg3)
        #expect(responderResult.peerDevice.hex == Self.initiatorDevice)

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
