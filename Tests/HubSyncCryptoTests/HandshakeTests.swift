import Testing
@testable import HubSyncCrypto

/// Test helpers shared by the handshake test files.
enum HandshakeFixture {
    /// The key's bytes, for comparing keys in tests only.
    static func bytes(of key: SymmetricKey) -> [UInt8] {
        key.withUnsafeBytes { Array($0) }
    }

    /// A responder that has answered `initiator`'s message 1, with message 2.
    static func started(
        initiator: inout HandshakeInitiator, responderIdentity: SigningKey
    ) throws -> (responder: HandshakeResponder, msg2: [UInt8]) {
        var responder = HandshakeResponder(identity: responderIdentity)
        let msg2 = try responder.receive(initiator.start())
        return (responder, msg2)
    }
}

@Suite struct HandshakeTests {
    @Test func fullHandshakeAgreesOnKeysAndDevices() throws {
        let initiatorIdentity = SigningKey.generate()
        let responderIdentity = SigningKey.generate()
        var initiator = HandshakeInitiator(identity: initiatorIdentity)
        var responder = HandshakeResponder(identity: responderIdentity)

        let msg1 = initiator.start()
        #expect(msg1.count == 33)
        #expect(msg1.first == 1)
        let msg2 = try responder.receive(msg1)
        #expect(msg2.count == 144)
        let (responderDevice, msg3, initiatorResult) = try initiator.receive(msg2)
        #expect(msg3.count == 112)
        let responderResult = try responder.receiveFinish(msg3)

        #expect(responderDevice == DeviceID(publicKey: responderIdentity.publicKey))
        #expect(initiatorResult.peerDevice == responderDevice)
        #expect(initiatorResult.peerKey == responderIdentity.publicKey)
        #expect(responderResult.peerDevice == DeviceID(publicKey: initiatorIdentity.publicKey))
        #expect(responderResult.peerKey == initiatorIdentity.publicKey)

        #expect(initiatorResult.sendKey == responderResult.receiveKey)
        #expect(initiatorResult.receiveKey == responderResult.sendKey)
        #expect(initiatorResult.sendKey != initiatorResult.receiveKey)
        #expect(initiatorResult.sendKey.byteCount == 32)
        #expect(initiatorResult.transcriptHash == responderResult.transcriptHash)
        #expect(initiatorResult.transcriptHash.count == 32)
    }

    @Test func eachHandshakeHasFreshKeys() throws {
        let identity = SigningKey.generate()
        func run() throws -> HandshakeResult {
            var initiator = HandshakeInitiator(identity: identity)
            var responder = HandshakeResponder(identity: identity)
            let (_, msg3, result) = try initiator.receive(responder.receive(initiator.start()))
            _ = try responder.receiveFinish(msg3)
            return result
        }
        let first = try run(), second = try run()
        #expect(first.sendKey != second.sendKey)
        #expect(first.transcriptHash != second.transcriptHash)
    }

    @Test func trafficRoundTripsThroughSecretStreamsBothWays() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var responder = HandshakeResponder(identity: .generate())
        let (_, msg3, initiatorResult) = try initiator.receive(responder.receive(initiator.start()))
        let responderResult = try responder.receiveFinish(msg3)

        var random = HandshakeTestRandom(seed: 0x4853_2d74_7261_6666)
        for (from, to) in [(initiatorResult, responderResult), (responderResult, initiatorResult)] {
            var sender = SecretStreamSender(key: from.sendKey)
            var receiver = try SecretStreamReceiver(key: to.receiveKey, header: sender.header)
            for index in 0..<1_000 {
                let length = index % 100 == 0 ? 0 : Int.random(in: 1...2_048, using: &random)
                let message = random.bytes(count: length)
                let sealed = sender.seal(message)
                #expect(sealed.count == message.count + 17)
                #expect(try receiver.open(sealed) == message)
            }
        }
    }

    @Test func startTwiceReturnsTheSameMessage() {
        var initiator = HandshakeInitiator(identity: .generate())
        #expect(initiator.start() == initiator.start())
    }

    @Test func outOfOrderCallsThrowUnexpectedMessage() throws {
        let identity = SigningKey.generate()

        // Initiator: message 2 before start, and a second message 2 after success.
        var initiator = HandshakeInitiator(identity: identity)
        var responder = HandshakeResponder(identity: identity)
        let early = [UInt8](repeating: 0, count: 144)
        #expect { try initiator.receive(early) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
        let msg2 = try responder.receive(initiator.start())
        let (_, msg3, _) = try initiator.receive(msg2)
        #expect { try initiator.receive(msg2) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }

        // Responder: message 3 before message 1, a second message 1, a second message 3.
        var fresh = HandshakeResponder(identity: identity)
        #expect { try fresh.receiveFinish(msg3) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
        var other = HandshakeInitiator(identity: identity)
        let msg1 = other.start()
        #expect { try responder.receive(msg1) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
        _ = try responder.receiveFinish(msg3)
        #expect { try responder.receiveFinish(msg3) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
    }

    @Test func failureIsFinal() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var (responder, msg2) = try HandshakeFixture.started(
            initiator: &initiator, responderIdentity: .generate())
        var tampered = msg2
        tampered[100] ^= 1
        #expect { try initiator.receive(tampered) } throws: { ($0 as? HandshakeError)?.code == .decryptFailed }
        // The genuine message no longer helps: the failed handshake is over.
        #expect { try initiator.receive(msg2) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }

        #expect { try responder.receiveFinish([UInt8](repeating: 0, count: 112)) } throws: {
            ($0 as? HandshakeError)?.code == .decryptFailed
        }
        #expect { try responder.receiveFinish([]) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
    }

    @Test func wrongVersionAndLengthsAreRejected() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var msg1 = initiator.start()
        msg1[0] = 2
        var responder = HandshakeResponder(identity: .generate())
        #expect { try responder.receive(msg1) } throws: { error in
            let error = error as? HandshakeError
            return error?.code == .versionMismatch && error?.message.contains("version 2") == true
        }
        for bad in [[], [1], [1] + [UInt8](repeating: 9, count: 33), [UInt8](repeating: 1, count: 32)] as [[UInt8]] {
            var responder = HandshakeResponder(identity: .generate())
            #expect { try responder.receive(bad) } throws: { ($0 as? HandshakeError)?.code == .malformed }
        }
        var (_, msg2) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        msg2.removeLast()
        #expect { try initiator.receive(msg2) } throws: { ($0 as? HandshakeError)?.code == .malformed }
    }

    @Test func lowOrderEphemeralKeyIsRejected() throws {
        var responder = HandshakeResponder(identity: .generate())
        let zeroPoint = [UInt8](repeating: 0, count: 32)
        #expect { try responder.receive([1] + zeroPoint) } throws: { ($0 as? HandshakeError)?.code == .malformed }

        var initiator = HandshakeInitiator(identity: .generate())
        _ = initiator.start()
        #expect { try initiator.receive(zeroPoint + [UInt8](repeating: 0, count: 112)) } throws: {
            ($0 as? HandshakeError)?.code == .malformed
        }
    }

    @Test func errorsReadWell() {
        let error = HandshakeError(code: .badSignature, message: "handshake failed: x")
        #expect(error.description == "handshake failed: x")
        #expect(HandshakeError.Code.badSignature.description == "badSignature")
    }
}
