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

    /// Both sides through message 3: the responder has the initiator's identity and message 4.
    static func identified(
        initiator: inout HandshakeInitiator, responder: inout HandshakeResponder
    ) throws -> (msg3: [UInt8], msg4: [UInt8], responderResult: HandshakeResult) {
        let msg3 = try initiator.receive(responder.receive(initiator.start()))
        let step = try responder.receiveIdentity(msg3)
        return (msg3, step.finish, step.result)
    }

    /// A whole handshake: both results.
    static func complete(
        initiator: inout HandshakeInitiator, responder: inout HandshakeResponder
    ) throws -> (initiator: HandshakeResult, responder: HandshakeResult) {
        let (_, msg4, responderResult) = try identified(initiator: &initiator, responder: &responder)
        return (try initiator.receiveFinish(msg4), responderResult)
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
        #expect(msg1.first == 2)
        let msg2 = try responder.receive(msg1)
        #expect(msg2.count == 32)
        let msg3 = try initiator.receive(msg2)
        #expect(msg3.count == 112)
        let (initiatorDevice, msg4, responderResult) = try responder.receiveIdentity(msg3)
        #expect(msg4.count == 112)
        let initiatorResult = try initiator.receiveFinish(msg4)

        #expect(initiatorDevice == DeviceID(publicKey: initiatorIdentity.publicKey))
        #expect(responderResult.peerKey == initiatorIdentity.publicKey)
        #expect(initiatorResult.peerDevice == DeviceID(publicKey: responderIdentity.publicKey))
        #expect(initiatorResult.peerKey == responderIdentity.publicKey)

        #expect(initiatorResult.sendKey == responderResult.receiveKey)
        #expect(initiatorResult.receiveKey == responderResult.sendKey)
        #expect(initiatorResult.sendKey != initiatorResult.receiveKey)
        #expect(initiatorResult.sendKey.byteCount == 32)
        #expect(initiatorResult.transcriptHash == responderResult.transcriptHash)
        #expect(initiatorResult.transcriptHash.count == 32)
    }

    /// Finding 9 of issue 10: before the responder has seen who calls, nothing it sends names it.
    @Test func theResponderRevealsNothingStableBeforeTheInitiatorHasIdentified() throws {
        let responderIdentity = SigningKey.generate()
        let key = responderIdentity.publicKey.rawRepresentation
        let device = DeviceID(publicKey: responderIdentity.publicKey).bytes
        var seen: Set<[UInt8]> = []
        for _ in 0..<20 {
            var initiator = HandshakeInitiator(identity: .generate())
            var responder = HandshakeResponder(identity: responderIdentity)
            let msg2 = try responder.receive(initiator.start())
            #expect(msg2.count == 32 && msg2 != key && msg2 != device)
            seen.insert(msg2)
        }
        #expect(seen.count == 20) // fresh every time: nothing to link two connections by
    }

    @Test func eachHandshakeHasFreshKeys() throws {
        let identity = SigningKey.generate()
        func run() throws -> HandshakeResult {
            var initiator = HandshakeInitiator(identity: identity)
            var responder = HandshakeResponder(identity: identity)
            return try HandshakeFixture.complete(initiator: &initiator, responder: &responder).initiator
        }
        let first = try run(), second = try run()
        #expect(first.sendKey != second.sendKey)
        #expect(first.transcriptHash != second.transcriptHash)
    }

    @Test func trafficRoundTripsThroughSecretStreamsBothWays() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var responder = HandshakeResponder(identity: .generate())
        let (initiatorResult, responderResult) = try HandshakeFixture.complete(initiator: &initiator, responder: &responder)

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

        // Initiator: message 2 before start, message 4 before message 3, a second message 2.
        var initiator = HandshakeInitiator(identity: identity)
        var responder = HandshakeResponder(identity: identity)
        #expect { try initiator.receive([UInt8](repeating: 0, count: 32)) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
        let msg1 = initiator.start()
        #expect { try initiator.receiveFinish([UInt8](repeating: 0, count: 112)) } throws: {
            ($0 as? HandshakeError)?.code == .unexpectedMessage
        }
        var again = HandshakeInitiator(identity: identity)
        let msg2 = try responder.receive(again.start())
        let msg3 = try again.receive(msg2)
        #expect { try again.receive(msg2) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }

        // Responder: message 3 before message 1, a second message 1, a second message 3.
        var fresh = HandshakeResponder(identity: identity)
        #expect { try fresh.receiveIdentity(msg3) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
        #expect { try responder.receive(msg1) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
        let msg4 = try responder.receiveIdentity(msg3).finish
        #expect { try responder.receiveIdentity(msg3) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
        _ = try again.receiveFinish(msg4)
        #expect { try again.receiveFinish(msg4) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
    }

    @Test func failureIsFinal() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var responder = HandshakeResponder(identity: .generate())
        let (_, msg4, _) = try HandshakeFixture.identified(initiator: &initiator, responder: &responder)
        var tampered = msg4
        tampered[50] ^= 1
        #expect { try initiator.receiveFinish(tampered) } throws: { ($0 as? HandshakeError)?.code == .decryptFailed }
        // The genuine message no longer helps: the failed handshake is over.
        #expect { try initiator.receiveFinish(msg4) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }

        var other = HandshakeResponder(identity: .generate())
        var caller = HandshakeInitiator(identity: .generate())
        _ = try other.receive(caller.start())
        #expect { try other.receiveIdentity([UInt8](repeating: 0, count: 112)) } throws: {
            ($0 as? HandshakeError)?.code == .decryptFailed
        }
        #expect { try other.receiveIdentity([]) } throws: { ($0 as? HandshakeError)?.code == .unexpectedMessage }
    }

    @Test func wrongVersionAndLengthsAreRejected() throws {
        var initiator = HandshakeInitiator(identity: .generate())
        var msg1 = initiator.start()
        msg1[0] = 1
        var responder = HandshakeResponder(identity: .generate())
        #expect { try responder.receive(msg1) } throws: { error in
            let error = error as? HandshakeError
            return error?.code == .versionMismatch && error?.message.contains("version 1") == true
        }
        for bad in [[], [2], [2] + [UInt8](repeating: 9, count: 33), [UInt8](repeating: 2, count: 32)] as [[UInt8]] {
            var responder = HandshakeResponder(identity: .generate())
            #expect { try responder.receive(bad) } throws: { ($0 as? HandshakeError)?.code == .malformed }
        }
        var (_, msg2) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        msg2.append(0)
        #expect { try initiator.receive(msg2) } throws: { ($0 as? HandshakeError)?.code == .malformed }
        var short = HandshakeInitiator(identity: .generate())
        var answering = HandshakeResponder(identity: .generate())
        let (_, msg4, _) = try HandshakeFixture.identified(initiator: &short, responder: &answering)
        #expect { try short.receiveFinish(Array(msg4.dropLast())) } throws: { ($0 as? HandshakeError)?.code == .malformed }
    }

    @Test func lowOrderEphemeralKeyIsRejected() throws {
        var responder = HandshakeResponder(identity: .generate())
        let zeroPoint = [UInt8](repeating: 0, count: 32)
        #expect { try responder.receive([2] + zeroPoint) } throws: { ($0 as? HandshakeError)?.code == .malformed }

        var initiator = HandshakeInitiator(identity: .generate())
        _ = initiator.start()
        #expect { try initiator.receive(zeroPoint) } throws: { ($0 as? HandshakeError)?.code == .malformed }
    }

    @Test func errorsReadWell() {
        let error = HandshakeError(code: .badSignature, message: "handshake failed: x")
        #expect(error.description == "handshake failed: x")
        #expect(HandshakeError.Code.badSignature.description == "badSignature")
    }
}
