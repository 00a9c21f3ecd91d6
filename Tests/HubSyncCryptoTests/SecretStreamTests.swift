import Testing
@testable import HubSyncCrypto

/// A stream on a fresh key: its first `count` messages and a maker of independent receivers
/// (copies of one receiver share its state, so each probe needs a new one).
private struct SealedStream {
    let key = SymmetricKey.random()
    let header: [UInt8]
    let plain: [[UInt8]]
    let sealed: [[UInt8]]

    init(messages count: Int) {
        var sender = SecretStreamSender(key: key)
        header = sender.header
        plain = (0..<count).map { Array("message \($0) of the stream".utf8) }
        sealed = plain.map { sender.seal($0) }
    }

    func makeReceiver() throws -> SecretStreamReceiver {
        try SecretStreamReceiver(key: key, header: header)
    }
}

private func code(_ error: any Error) -> CryptoError.Code? { (error as? CryptoError)?.code }

@Suite struct SecretStreamTests {
    @Test func roundTripsIncludingEmptyAndLargeMessages() throws {
        let key = SymmetricKey.random()
        var sender = SecretStreamSender(key: key)
        #expect(sender.header.count == 24)
        var receiver = try SecretStreamReceiver(key: key, header: sender.header)
        var random = HandshakeTestRandom(seed: 7)
        for message in [[], [0], random.bytes(count: 1 << 20), Array("hello".utf8)] as [[UInt8]] {
            let sealed = sender.seal(message)
            #expect(sealed.count == message.count + 17)
            #expect(try receiver.open(sealed) == message)
        }
    }

    /// The buffer forms (what the secure channel uses, from and into a frame's bytes) read and
    /// write the same stream as the array forms, and mix with them message by message.
    @Test func bufferFormsMatchTheArrayForms() throws {
        let key = SymmetricKey.random()
        var sender = SecretStreamSender(key: key)
        var receiver = try SecretStreamReceiver(key: key, header: sender.header)
        var random = HandshakeTestRandom(seed: 11)
        for (n, message) in ([[], [0], random.bytes(count: 600_000), Array("hello".utf8)] as [[UInt8]]).enumerated() {
            var sealed = [UInt8](repeating: 0, count: message.count + SecretStreamSender.overheadByteCount)
            if n % 2 == 0 {
                message.withUnsafeBytes { m in sealed.withUnsafeMutableBytes { sender.seal(m, into: $0) } }
            } else {
                sealed = sender.seal(message)
            }
            var opened = [UInt8](repeating: 0xEE, count: message.count + 1)
            let length = try sealed.withUnsafeBytes { c in try opened.withUnsafeMutableBytes { try receiver.open(c, into: $0) } }
            #expect(length == message.count && Array(opened[..<length]) == message)
        }
        // A short or altered message is refused by the buffer form as by the array form, and stays refused.
        let last = sender.seal([1, 2, 3])
        var output = [UInt8](repeating: 0, count: 8)
        #expect(throws: CryptoError.self) {
            try Array(last.prefix(10)).withUnsafeBytes { c in try output.withUnsafeMutableBytes { try receiver.open(c, into: $0) } }
        }
        #expect(throws: CryptoError.self) { try receiver.open(last) }
    }

    @Test func sameMessageSealsDifferentlyAndHeadersAreFresh() {
        let key = SymmetricKey.random()
        var sender = SecretStreamSender(key: key)
        #expect(sender.seal([1, 2, 3]) != sender.seal([1, 2, 3]))
        #expect(SecretStreamSender(key: key).header != sender.header)
    }

    @Test func tamperingWithAnyByteFails() throws {
        let stream = SealedStream(messages: 1)
        for index in stream.sealed[0].indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var tampered = stream.sealed[0]
                tampered[index] ^= bit
                var receiver = try stream.makeReceiver()
                #expect("byte \(index) bit \(bit)") { try receiver.open(tampered) } throws: { code($0) == .invalidKey }
            }
        }
        var receiver = try stream.makeReceiver()
        #expect(try receiver.open(stream.sealed[0]) == stream.plain[0])
    }

    @Test func replayFailsAndStaysFailed() throws {
        let stream = SealedStream(messages: 3), sealed = stream.sealed
        var receiver = try stream.makeReceiver()
        #expect(try receiver.open(sealed[0]) == stream.plain[0])
        #expect { try receiver.open(sealed[0]) } throws: { code($0) == .invalidKey }
        #expect { try receiver.open(sealed[1]) } throws: { error in
            (error as? CryptoError)?.message.contains("earlier message failed") == true
        }
    }

    @Test func reorderFails() throws {
        let stream = SealedStream(messages: 2), sealed = stream.sealed
        var receiver = try stream.makeReceiver()
        #expect { try receiver.open(sealed[1]) } throws: { code($0) == .invalidKey }
        #expect(throws: CryptoError.self) { try receiver.open(sealed[0]) }
    }

    @Test func droppedMessageFails() throws {
        let stream = SealedStream(messages: 3), sealed = stream.sealed
        var receiver = try stream.makeReceiver()
        #expect(try receiver.open(sealed[0]) == stream.plain[0])
        #expect { try receiver.open(sealed[2]) } throws: { code($0) == .invalidKey }
    }

    @Test func truncationFails() throws {
        let stream = SealedStream(messages: 1), sealed = stream.sealed
        for length in [0, 1, 16, 17, sealed[0].count - 1] {
            var receiver = try stream.makeReceiver()
            #expect("length \(length)") { try receiver.open(Array(sealed[0].prefix(length))) } throws: {
                code($0) == (length < 17 ? .wrongLength : .invalidKey)
            }
            // Sticky: the intact message is refused afterwards.
            #expect(throws: CryptoError.self) { try receiver.open(sealed[0]) }
        }
    }

    @Test func wrongKeyOrHeaderFails() throws {
        let key = SymmetricKey.random()
        var sender = SecretStreamSender(key: key)
        let sealed = sender.seal([1, 2, 3])
        var wrongKey = try SecretStreamReceiver(key: .random(), header: sender.header)
        #expect(throws: CryptoError.self) { try wrongKey.open(sealed) }
        var wrongHeader = try SecretStreamReceiver(key: key, header: SecretStreamSender(key: key).header)
        #expect(throws: CryptoError.self) { try wrongHeader.open(sealed) }
    }

    @Test func badKeyOrHeaderLengthIsRejected() {
        let header = SecretStreamSender(key: .random()).header
        #expect { try SecretStreamReceiver(key: .random(byteCount: 16), header: header) } throws: {
            code($0) == .wrongLength
        }
        #expect { try SecretStreamReceiver(key: .random(), header: Array(header.dropLast())) } throws: {
            code($0) == .wrongLength
        }
    }

    @Test func failureIsStickyForCopiesToo() throws {
        let stream = SealedStream(messages: 2)
        var receiver = try stream.makeReceiver()
        var copy = receiver
        #expect(throws: CryptoError.self) { try receiver.open(stream.sealed[1]) }
        #expect(throws: CryptoError.self) { try copy.open(stream.sealed[0]) }
    }

    @Test func copiesShareOneStream() throws {
        let key = SymmetricKey.random()
        var sender = SecretStreamSender(key: key)
        var copy = sender
        var receiver = try SecretStreamReceiver(key: key, header: sender.header)
        let first = sender.seal([1]), second = copy.seal([2])
        var receiverCopy = receiver
        #expect(try receiver.open(first) == [1])
        #expect(try receiverCopy.open(second) == [2])
        #expect(throws: CryptoError.self) { try receiver.open(second) }
    }

    /// Copies sealing from several tasks at once still produce one valid stream: each task's
    /// messages in its own order, interleaved in some order the receiver accepts in full.
    @Test func copiesSealSafelyFromManyTasks() async throws {
        let key = SymmetricKey.random()
        let sender = SecretStreamSender(key: key)
        let perTask = await withTaskGroup(of: [[UInt8]].self) { group in
            for task in 0..<4 {
                group.addTask {
                    var copy = sender
                    return (0..<50).map { copy.seal([UInt8(task), UInt8($0)]) }
                }
            }
            return await group.reduce(into: [[[UInt8]]]()) { $0.append($1) }
        }
        // Rebuild the stream order: the next message is the head of one task's list; try each
        // head on a fresh receiver that has replayed the order found so far.
        var heads = perTask.map { $0[...] }
        var order: [[UInt8]] = []
        func accepts(_ candidate: [UInt8]) -> Bool {
            guard var receiver = try? SecretStreamReceiver(key: key, header: sender.header) else { return false }
            for message in order { _ = try? receiver.open(message) }
            return (try? receiver.open(candidate)) != nil
        }
        while heads.contains(where: { !$0.isEmpty }) {
            let next = try #require(heads.indices.first { !heads[$0].isEmpty && accepts(heads[$0].first!) })
            order.append(heads[next].removeFirst())
        }
        #expect(order.count == 200)
    }
}
