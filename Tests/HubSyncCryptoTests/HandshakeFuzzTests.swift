import Testing
@testable import HubSyncCrypto

/// Random input never crashes a handshake state machine; where it cannot be valid, it is refused.
@Suite struct HandshakeFuzzTests {
    static let iterations = 10_000

    /// A random message: often of the expected length (so the deeper checks run), else any length.
    static func randomMessage(expectedLength: Int, prefix: [UInt8] = [], using random: inout HandshakeTestRandom) -> [UInt8] {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: random.bytes(count: Int.random(in: 0...300, using: &random))
        case 1: random.bytes(count: expectedLength)
        default: prefix + random.bytes(count: expectedLength - prefix.count)
        }
    }

    @Test func responderReceiveSurvivesRandomMessage1() {
        var random = HandshakeTestRandom(seed: 1)
        let prototype = HandshakeResponder(identity: .generate())
        for _ in 0..<Self.iterations {
            let input = Self.randomMessage(expectedLength: 33, prefix: [2], using: &random)
            var responder = prototype
            do {
                // Any 32 bytes but a low-order point is an acceptable X25519 key.
                let msg2 = try responder.receive(input)
                #expect(input.count == 33 && input[0] == 2 && msg2.count == 32)
            } catch {
                #expect(!(input.count == 33 && input[0] == 2) || error.code == .malformed)
            }
        }
    }

    @Test func initiatorReceiveSurvivesRandomMessage2() {
        var random = HandshakeTestRandom(seed: 2)
        var prototype = HandshakeInitiator(identity: .generate())
        _ = prototype.start()
        for _ in 0..<Self.iterations {
            let input = Self.randomMessage(expectedLength: 32, using: &random)
            var initiator = prototype
            do {
                #expect(try initiator.receive(input).count == 112 && input.count == 32)
            } catch {
                #expect(input.count != 32 || error.code == .malformed)
            }
        }
    }

    @Test func responderReceiveIdentityRefusesRandomMessage3() throws {
        var random = HandshakeTestRandom(seed: 3)
        var initiator = HandshakeInitiator(identity: .generate())
        let (prototype, _) = try HandshakeFixture.started(initiator: &initiator, responderIdentity: .generate())
        for _ in 0..<Self.iterations {
            let input = Self.randomMessage(expectedLength: 112, using: &random)
            var responder = prototype
            #expect(throws: HandshakeError.self) { try responder.receiveIdentity(input) }
        }
    }

    @Test func initiatorReceiveFinishRefusesRandomMessage4() throws {
        var random = HandshakeTestRandom(seed: 4)
        var prototype = HandshakeInitiator(identity: .generate())
        var responder = HandshakeResponder(identity: .generate())
        _ = try prototype.receive(responder.receive(prototype.start()))
        for _ in 0..<Self.iterations {
            let input = Self.randomMessage(expectedLength: 112, using: &random)
            var initiator = prototype
            #expect(throws: HandshakeError.self) { try initiator.receiveFinish(input) }
        }
    }
}
