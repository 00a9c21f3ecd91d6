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
    @Test func tamperingWithAnyBitOfMessage2Fails() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        let (_, msg2) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        for index in msg2.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var tampered = msg2
                tampered[index] ^= bit
                var copy = initiator
                #expect(throws: HandshakeError.self, "byte \(index) bit \(bit)") { try copy.receive(tampered) }
            }
        }
        _ = try initiator.receive(msg2)  // the untampered message still works on the original
    }

    @Test func tamperingWithAnyBitOfMessage3Fails() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var (responder, msg2) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        let (_, msg3, _) = try initiator.receive(msg2)
        for index in msg3.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var tampered = msg3
                tampered[index] ^= bit
                var copy = responder
                #expect("byte \(index) bit \(bit)") { try copy.receiveFinish(tampered) } throws: {
                    code($0) == .decryptFailed
                }
            }
        }
        _ = try responder.receiveFinish(msg3)
    }

    /// Relaying message 1 but swapping in the attacker's ephemeral key leaves the responder's
    /// sealed identity undecryptable for the initiator, and the attacker cannot make message 3.
    @Test func substitutedEphemeralKeyIsDetected() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var (responder, msg2) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        let attacker = HandPlayedSide()
        var swapped = msg2
        swapped.replaceSubrange(0..<32, with: attacker.ephemeral.publicKey)
        #expect { try initiator.receive(swapped) } throws: { code($0) == .decryptFailed }

        // Toward the responder, the attacker has only keys of its own making.
        let (transcriptHash, keys) = try attacker.initiatorKeys(message2: msg2)
        let forged = Handshake.sealIdentity(
            .generate(), role: .initiator, key: keys.handshakeInitiatorToResponder, transcriptHash: transcriptHash)
        #expect { try responder.receiveFinish(forged) } throws: { code($0) == .decryptFailed }
    }

    /// A full man in the middle runs its own key exchange with each side and re-seals each side's
    /// genuine identity and signature; the signatures cover the other transcript, so both fail.
    @Test func manInTheMiddleCannotRelayIdentities() throws {
        let initiatorIdentity = SigningKey.generate(), responderIdentity = SigningKey.generate()
        let attackerIdentity = SigningKey.generate()
        var initiator = HandshakeInitiator(identity: initiatorIdentity)
        var responder = HandshakeResponder(identity: responderIdentity)
        let towardResponder = HandPlayedSide(), towardInitiator = HandPlayedSide()

        let msg1 = initiator.start()
        let responderMsg2 = try responder.receive(towardResponder.message1)
        let (thMR, keysMR) = try towardResponder.initiatorKeys(message2: responderMsg2)
        let (thIM, keysIM) = try towardInitiator.responderKeys(message1: msg1)

        // The responder's identity and signature, re-sealed for the initiator.
        let responderIdentityBytes = try #require(Handshake.open(
            Array(responderMsg2[32...]), key: keysMR.handshakeResponderToInitiator, transcriptHash: thMR))
        let relayedMsg2 = towardInitiator.ephemeral.publicKey + Handshake.seal(
            responderIdentityBytes, key: keysIM.handshakeResponderToInitiator, transcriptHash: thIM)
        var fooled = initiator
        #expect { try fooled.receive(relayedMsg2) } throws: { code($0) == .badSignature }

        // To get the initiator's message 3 the attacker must show its own identity, which the
        // initiator then sees; re-sealing the initiator's identity for the responder still fails.
        let honestMsg2 = towardInitiator.ephemeral.publicKey + Handshake.sealIdentity(
            attackerIdentity, role: .responder, key: keysIM.handshakeResponderToInitiator, transcriptHash: thIM)
        let (seenDevice, msg3, _) = try initiator.receive(honestMsg2)
        #expect(seenDevice == DeviceID(publicKey: attackerIdentity.publicKey))
        #expect(seenDevice != DeviceID(publicKey: responderIdentity.publicKey))
        let initiatorIdentityBytes = try #require(Handshake.open(
            msg3, key: keysIM.handshakeInitiatorToResponder, transcriptHash: thIM))
        let relayedMsg3 = Handshake.seal(
            initiatorIdentityBytes, key: keysMR.handshakeInitiatorToResponder, transcriptHash: thMR)
        #expect { try responder.receiveFinish(relayedMsg3) } throws: { code($0) == .badSignature }
    }

    /// Message 3 that decrypts correctly but pairs a key with a signature by another key, or a
    /// signature over the wrong bytes, is refused.
    @Test func identityMustMatchItsSignature() throws {
        let initiatorIdentity = SigningKey.generate(), thirdParty = SigningKey.generate()
        let responderPrototype = HandshakeResponder(identity: .generate())
        let side = HandPlayedSide()
        var prototype = responderPrototype
        let msg2 = try prototype.receive(side.message1)
        let (th, keys) = try side.initiatorKeys(message2: msg2)
        let initiatorLabel = Array("hubsync-sig-initiator".utf8), responderLabel = Array("hubsync-sig-responder".utf8)

        func finish(key: [UInt8], signature: [UInt8]) throws -> HandshakeResult {
            var responder = prototype
            return try responder.receiveFinish(Handshake.seal(
                key + signature, key: keys.handshakeInitiatorToResponder, transcriptHash: th))
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

    /// The same for message 2: a third party's key with the responder's signature is refused.
    @Test func responderIdentityMustMatchItsSignature() throws {
        let responderIdentity = SigningKey.generate(), thirdParty = SigningKey.generate()
        var initiator = HandshakeInitiator(identity: .generate())
        let side = HandPlayedSide()
        let msg1 = initiator.start()
        let (th, keys) = try side.responderKeys(message1: msg1)
        let signature = responderIdentity.signature(for: Array("hubsync-sig-responder".utf8) + th)
        let forged = side.ephemeral.publicKey + Handshake.seal(
            thirdParty.publicKey.rawRepresentation + signature, key: keys.handshakeResponderToInitiator, transcriptHash: th)
        var copy = initiator
        #expect { try copy.receive(forged) } throws: { code($0) == .badSignature }
        let genuine = side.ephemeral.publicKey + Handshake.seal(
            responderIdentity.publicKey.rawRepresentation + signature, key: keys.handshakeResponderToInitiator,
            transcriptHash: th)
        #expect(try initiator.receive(genuine).peerDevice == DeviceID(publicKey: responderIdentity.publicKey))
    }
}
