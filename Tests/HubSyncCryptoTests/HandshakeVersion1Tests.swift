import Testing
@testable import HubSyncCrypto

/// The version 1 initiator (protocol/SPEC.md 2.4.2), against release v0.1.0's worked example and
/// against the version 1 responder below, kept for these tests only: this release never answers
/// version 1.
@Suite struct HandshakeVersion1Tests {
    /// Release v0.1.0's SPEC 2.6 worked example (`git show v0.1.0:protocol/SPEC.md`, computed there
    /// by an independent Python script): the same seeds and ephemeral secrets as version 2's.
    enum Vector {
        static let initiatorSeed = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        static let responderSeed = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        static let initiatorEphemeral = "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        static let responderEphemeral = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        static let msg1 = "0179a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"
        static let transcriptHash = "df618f79185b32c57de5c132e0d19db9d3a910e52268be77e17e0bafcd87b940"
        static let appR2I = "6da47cea1428cb249a03e5d0009d8286026ae46c3b14b812614eb35bb71ef49e"
        static let appI2R = "2f71b30112c0b715d5e82b61616d16cfc82c4b306d17fd11fe36a04293be4cbb"
        static let msg2 = "675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f"
            + "fcf7ce7b6b9226ae9f543b0b36b8f675ae9d6c9afcac2414f6fa4ec5a99e88553b1eca61d59a7fdb81b767ec2adf5872"
            + "26381515b4a393504d78045b7ab2c28f9c896a7fad62226370ca237a07f7b3d7bde1cbe0da451b06d1c55053ba9d3961"
            + "4142350e2f47534aaa733a97df39196b"
        static let msg3 = "697a69a503ae7164a98a8bda496e28897f526c73caffac2d23f7fcb1797650334bd4896d825300be197ca81f649686e0"
            + "48d47f7ea186c2ed46875fc9b56a850c27eb2c1ac607325d1d766ac359f043413d773fd415df641d56872c4e971715e4"
            + "1b9fde25476719787a6076fd6db7877e"
        static let responderDevice = "25843b3a196efcefbf5b1390d78db52babc290f100cb8455508ebcfb9923ba58"

        static func key(_ text: String) -> SecureBytes { SecureBytes(copying: bytes(hex: text)) }
    }

    /// Release v0.1.0's responder, rebuilt from this module's key schedule: msg2 is its ephemeral
    /// key and sealed identity; msg3 authenticates the initiator.
    struct ResponderV1 {
        let identity: SigningKey
        let ephemeral: Handshake.EphemeralKeyPair
        var keys: Handshake.DerivedKeys?

        init(identity: SigningKey, ephemeral: Handshake.EphemeralKeyPair = .generate()) {
            self.identity = identity
            self.ephemeral = ephemeral
        }

        mutating func receive(_ msg1: [UInt8]) throws -> [UInt8] {
            guard msg1.count == 33, msg1[0] == 1 else { throw HandshakeError(code: .versionMismatch, message: "not version 1") }
            let keys = try Handshake.DerivedKeys(role: .responder, ephemeral: ephemeral, peerPublicKey: Array(msg1[1...]),
                                                 message1: msg1, transcriptLabel: "hubsync-handshake-v1")
            self.keys = keys
            return ephemeral.publicKey + Handshake.sealIdentity(
                identity, role: .responder, key: keys.handshakeResponderToInitiator, transcriptHash: keys.transcriptHash)
        }

        func receiveFinish(_ msg3: [UInt8]) throws -> PublicSigningKey {
            let keys = try #require(keys)
            return try Handshake.openIdentity(msg3, role: .initiator, key: keys.handshakeInitiatorToResponder,
                                              transcriptHash: keys.transcriptHash)
        }
    }

    @Test func reproducesTheVersion1Vector() throws {
        var initiator = HandshakeInitiatorV1(
            identity: try SigningKey(seed: Vector.key(Vector.initiatorSeed)),
            ephemeral: .init(secretKey: Vector.key(Vector.initiatorEphemeral)))
        #expect(hex(initiator.start()) == Vector.msg1)
        let (device, msg3, result) = try initiator.receive(bytes(hex: Vector.msg2))
        #expect(device.hex == Vector.responderDevice)
        #expect(hex(msg3) == Vector.msg3)
        #expect(hex(result.transcriptHash) == Vector.transcriptHash)
        #expect(hex(HandshakeFixture.bytes(of: result.sendKey)) == Vector.appI2R)
        #expect(hex(HandshakeFixture.bytes(of: result.receiveKey)) == Vector.appR2I)
        // The rebuilt responder gives the same msg2, so the round trip below tests v0.1.0's bytes.
        var responder = ResponderV1(identity: try SigningKey(seed: Vector.key(Vector.responderSeed)),
                                    ephemeral: .init(secretKey: Vector.key(Vector.responderEphemeral)))
        #expect(hex(try responder.receive(bytes(hex: Vector.msg1))) == Vector.msg2)
    }

    @Test func completesWithAVersion1Responder() throws {
        let (me, them) = (SigningKey.generate(), SigningKey.generate())
        var initiator = HandshakeInitiatorV1(identity: me)
        var responder = ResponderV1(identity: them)
        let msg2 = try responder.receive(initiator.start())
        let (device, msg3, result) = try initiator.receive(msg2)
        #expect(device == DeviceID(publicKey: them.publicKey))
        #expect(try responder.receiveFinish(msg3) == me.publicKey)
        // Traffic keys match across the two sides: what one seals the other opens.
        let keys = try #require(responder.keys)
        #expect(HandshakeFixture.bytes(of: result.sendKey) == HandshakeFixture.bytes(of: keys.trafficInitiatorToResponder))
        #expect(HandshakeFixture.bytes(of: result.receiveKey) == HandshakeFixture.bytes(of: keys.trafficResponderToInitiator))
        #expect { try initiator.receive(msg2) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
    }

    @Test func refusesAForgedOrMisshapenMessage2() throws {
        var responder = ResponderV1(identity: .generate())
        var honest = HandshakeInitiatorV1(identity: .generate())
        let msg2 = try responder.receive(honest.start())
        // A flipped bit in the sealed identity, or in the ephemeral key (another TH): decrypt fails.
        for index in [Handshake.ephemeralKeyByteCount + 5, 3] {
            var initiator = honest
            var forged = msg2
            forged[index] ^= 1
            #expect { try initiator.receive(forged) } throws: { ($0 as? HandshakeError)?.code == .decryptFailed }
        }
        // Version 2's msg2 (an ephemeral key alone) and other lengths are malformed.
        for bad in [Array(msg2.prefix(32)), msg2 + [0], []] {
            var initiator = honest
            #expect { try initiator.receive(bad) } throws: { error in
                let error = error as? HandshakeError
                return error?.code == .malformed && error?.message.contains("version 1") == true
            }
        }
        // A responder that signs with a key other than the one it presents is refused.
        let (presented, signer) = (SigningKey.generate(), SigningKey.generate())
        var initiator = HandshakeInitiatorV1(identity: .generate())
        let msg1 = initiator.start()
        var other = ResponderV1(identity: signer)
        let real = try other.receive(msg1)
        let keys = try #require(other.keys)
        let signature = signer.signature(for: Handshake.signedMessage(role: .responder, transcriptHash: keys.transcriptHash))
        let mixed = Array(real.prefix(32)) + Handshake.seal(presented.publicKey.rawRepresentation + signature,
                                                             key: keys.handshakeResponderToInitiator,
                                                             transcriptHash: keys.transcriptHash)
        #expect { try initiator.receive(mixed) } throws: { ($0 as? HandshakeError)?.code == .badSignature }
        // The untouched message still completes.
        #expect(try honest.receive(msg2).peerDevice == DeviceID(publicKey: responder.identity.publicKey))
    }

    @Test func aVersion2ResponderRefusesVersion1() throws {
        var initiator = HandshakeInitiatorV1(identity: .generate())
        let msg1 = initiator.start()
        #expect(msg1.count == 33 && msg1[0] == 1)
        var responder = HandshakeResponder(identity: .generate())
        #expect { try responder.receive(msg1) } throws: { error in
            let error = error as? HandshakeError
            return error?.code == .versionMismatch && error?.message.contains("version 1") == true
        }
        // Refused for good: the responder answers nothing more on that connection.
        #expect { try responder.receiveIdentity([UInt8](repeating: 0, count: Handshake.message3ByteCount)) } throws: {
            ($0 as? HandshakeError)?.code == .unexpectedMessage
        }
    }

    @Test func version1AndVersion2TranscriptsDiffer() throws {
        // The same keys under the two labels give different TH, so neither transcript passes for the other.
        let ei = Handshake.EphemeralKeyPair(secretKey: Vector.key(Vector.initiatorEphemeral))
        let er = Handshake.EphemeralKeyPair(secretKey: Vector.key(Vector.responderEphemeral))
        let msg1 = [1] + ei.publicKey
        let v1 = try Handshake.DerivedKeys(role: .initiator, ephemeral: ei, peerPublicKey: er.publicKey, message1: msg1,
                                           transcriptLabel: "hubsync-handshake-v1")
        let v2 = try Handshake.DerivedKeys(role: .initiator, ephemeral: ei, peerPublicKey: er.publicKey, message1: msg1)
        #expect(hex(v1.transcriptHash) == Vector.transcriptHash)
        #expect(v1.transcriptHash != v2.transcriptHash)
    }
}
