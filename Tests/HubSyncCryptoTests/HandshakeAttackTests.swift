import Testing
@testable import HubSyncCrypto

/// One side of a handshake played by hand, to build messages the state machines never would.
private struct HandPlayedSide {
    let ephemeral = Handshake.EphemeralKeyPair.generate()

    /// Message 1 with this side's ephemeral key.
    var message1: [UInt8] { [Handshake.version] + ephemeral.publicKey }

    /// TH and the derived keys as the initiator, after `message2` came back for `message1`.
    func initiatorKeys(message2: [UInt8]) throws -> (transcriptHash: [UInt8], keys: Handshake.DerivedKeys) {
        let responderKey = Array(message2[0..<32])
        let sessionKeys = try Handshake.sessionKeys(role: .initiator, ephemeral: ephemeral, peerPublicKey: responderKey)
        let transcriptHash = Handshake.transcriptHash(message1: message1, responderEphemeralKey: responderKey)
        return (transcriptHash, Handshake.DerivedKeys(sessionKeys: sessionKeys, transcriptHash: transcriptHash))
    }

    /// TH and the derived keys as the responder to `message1`.
    func responderKeys(message1: [UInt8]) throws -> (transcriptHash: [UInt8], keys: Handshake.DerivedKeys) {
        let sessionKeys = try Handshake.sessionKeys(
            role: .responder, ephemeral: ephemeral, peerPublicKey: Array(message1[1...]))
        let transcriptHash = Handshake.transcriptHash(message1: message1, responderEphemeralKey: ephemeral.publicKey)
        return (transcriptHash, Handshake.DerivedKeys(sessionKeys: sessionKeys, transcriptHash: transcriptHash))
    }
}

private func code(_ error: any Error) -> HandshakeError.Code? { (error as? HandshakeError)?.code }

@Suite struct HandshakeAttackTests {
    /// Message 2 is only the responder's ephemeral key: an altered one gives the initiator other
    /// keys, so its message 3 does not open at the responder.
    @Test func tamperingWithAnyBitOfMessage2Fails() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        let (responder, msg2) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        for index in msg2.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var tampered = msg2
                tampered[index] ^= bit
                var copy = initiator, answering = responder
                do {
                    let msg3 = try copy.receive(tampered)
                    #expect("byte \(index) bit \(bit)") { try answering.receiveIdentity(msg3) } throws: { code($0) == .decryptFailed }
                } catch {
                    #expect(code(error) == .malformed) // a low-order point
                }
            }
        }
        var answering = responder
        _ = try answering.receiveIdentity(try initiator.receive(msg2)) // the untampered message still works
    }

    @Test func tamperingWithAnyBitOfMessage3Fails() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var (responder, msg2) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        let msg3 = try initiator.receive(msg2)
        for index in msg3.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var tampered = msg3
                tampered[index] ^= bit
                var copy = responder
                #expect("byte \(index) bit \(bit)") { try copy.receiveIdentity(tampered) } throws: {
                    code($0) == .decryptFailed
                }
            }
        }
        _ = try responder.receiveIdentity(msg3)
    }

    @Test func tamperingWithAnyBitOfMessage4Fails() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var responder = HandshakeResponder(identity: .generate())
        let (_, msg4, _) = try HandshakeFixture.identified(initiator: &initiator, responder: &responder)
        for index in msg4.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var tampered = msg4
                tampered[index] ^= bit
                var copy = initiator
                #expect("byte \(index) bit \(bit)") { try copy.receiveFinish(tampered) } throws: { code($0) == .decryptFailed }
            }
        }
        _ = try initiator.receiveFinish(msg4)
    }

    /// A full man in the middle runs its own key exchange with each side and re-seals each side's
    /// genuine identity and signature; the signatures cover the other transcript, so both fail.
    /// (It does learn the initiator's identity: SIGMA-R protects the responder's, 2.4.)
    @Test func manInTheMiddleCannotRelayIdentities() throws {
        let initiatorIdentity = SigningKey.generate(), responderIdentity = SigningKey.generate()
        var initiator = HandshakeInitiator(identity: initiatorIdentity)
        var responder = HandshakeResponder(identity: responderIdentity)
        let towardResponder = HandPlayedSide(), towardInitiator = HandPlayedSide()

        let msg1 = initiator.start()
        let responderMsg2 = try responder.receive(towardResponder.message1)
        let (thMR, keysMR) = try towardResponder.initiatorKeys(message2: responderMsg2)
        let (thIM, keysIM) = try towardInitiator.responderKeys(message1: msg1)

        // The initiator's identity, re-sealed for the responder: its signature covers the other TH.
        let msg3 = try initiator.receive(towardInitiator.ephemeral.publicKey)
        let initiatorIdentityBytes = try #require(Handshake.open(
            msg3, key: keysIM.handshakeInitiatorToResponder, transcriptHash: thIM))
        let relayedMsg3 = Handshake.seal(
            initiatorIdentityBytes, key: keysMR.handshakeInitiatorToResponder, transcriptHash: thMR)
        var fooled = responder
        #expect { try fooled.receiveIdentity(relayedMsg3) } throws: { code($0) == .badSignature }

        // The responder's identity, re-sealed for the initiator (had the attacker got message 4).
        let genuineMsg4 = Handshake.sealIdentity(
            responderIdentity, role: .responder, key: keysMR.handshakeResponderToInitiator, transcriptHash: thMR)
        let responderIdentityBytes = try #require(Handshake.open(
            genuineMsg4, key: keysMR.handshakeResponderToInitiator, transcriptHash: thMR))
        let relayedMsg4 = Handshake.seal(
            responderIdentityBytes, key: keysIM.handshakeResponderToInitiator, transcriptHash: thIM)
        #expect { try initiator.receiveFinish(relayedMsg4) } throws: { code($0) == .badSignature }
    }

    /// Message 3 that decrypts correctly but pairs a key with a signature by another key, or a
    /// signature over the wrong bytes, is refused.
    @Test func identityMustMatchItsSignature() throws {
        let initiatorIdentity = SigningKey.generate(), thirdParty = SigningKey.generate()
        let side = HandPlayedSide()
        var prototype = HandshakeResponder(identity: .generate())
        let msg2 = try prototype.receive(side.message1)
        let (th, keys) = try side.initiatorKeys(message2: msg2)
        let initiatorLabel = Array("hubsync-sig-initiator".utf8), responderLabel = Array("hubsync-sig-responder".utf8)

        func finish(key: [UInt8], signature: [UInt8]) throws -> HandshakeResult {
            var responder = prototype
            return try responder.receiveIdentity(Handshake.seal(
                key + signature, key: keys.handshakeInitiatorToResponder, transcriptHash: th)).result
        }
        let genuine = initiatorIdentity.signature(for: initiatorLabel + th)
        let cases: [(String, [UInt8], [UInt8])] = [
            ("third party's key, initiator's signature",
             thirdParty.publicKey.rawRepresentation, genuine),
            ("initiator's key, third party's signature",
             initiatorIdentity.publicKey.rawRepresentation, thirdParty.signature(for: initiatorLabel + th)),
            ("responder label (reflection)",
             initiatorIdentity.publicKey.rawRepresentation, initiatorIdentity.signature(for: responderLabel + th)),
            ("signature over TH without label",
             initiatorIdentity.publicKey.rawRepresentation, initiatorIdentity.signature(for: th)),
            ("key that is not a curve point",
             [UInt8](repeating: 0xff, count: 32), genuine),
        ]
        for (name, key, signature) in cases {
            #expect("\(name)") { try finish(key: key, signature: signature) } throws: { code($0) == .badSignature }
        }
        // The hand-played message is right when key and signature match.
        let result = try finish(key: initiatorIdentity.publicKey.rawRepresentation, signature: genuine)
        #expect(result.peerDevice == DeviceID(publicKey: initiatorIdentity.publicKey))
    }

    /// The same for message 4: a third party's key with the responder's signature is refused.
    @Test func responderIdentityMustMatchItsSignature() throws {
        let responderIdentity = SigningKey.generate(), thirdParty = SigningKey.generate()
        var initiator = HandshakeInitiator(identity: .generate())
        let side = HandPlayedSide()
        let msg1 = initiator.start()
        let (th, keys) = try side.responderKeys(message1: msg1)
        _ = try initiator.receive(side.ephemeral.publicKey)
        let signature = responderIdentity.signature(for: Array("hubsync-sig-responder".utf8) + th)
        let forged = Handshake.seal(
            thirdParty.publicKey.rawRepresentation + signature, key: keys.handshakeResponderToInitiator, transcriptHash: th)
        var copy = initiator
        #expect { try copy.receiveFinish(forged) } throws: { code($0) == .badSignature }
        let genuine = Handshake.seal(
            responderIdentity.publicKey.rawRepresentation + signature, key: keys.handshakeResponderToInitiator,
            transcriptHash: th)
        #expect(try initiator.receiveFinish(genuine).peerDevice == DeviceID(publicKey: responderIdentity.publicKey))
    }
}
