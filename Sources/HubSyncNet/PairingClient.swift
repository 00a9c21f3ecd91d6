import HubSyncBase
public import HubSyncCrypto
import NIOCore
import NIOPosix

/// The joining side of pairing over TCP: connects to the inviter's sync listener and runs
/// ``PairingJoiner`` (protocol/SPEC.md 4.4).
public enum PairingClient {
    /// Joins through the agent at `address` (HOST:PORT) with `code`.
    ///
    /// - Throws: ``PairingError`` (wrong code, refused invites, altered messages, a closed
    ///   connection), or a ``NetError`` when the address is unusable or unreachable.
    public static func join(address: String, code: InviteCode, identity: SigningKey,
                            details: JoinerDetails, timeout: Duration = .seconds(10)) async throws -> PairingJoinResult {
        guard SyncNode.split(address) != nil else {
            throw NetError(.malformed, "\(address) is not HOST:PORT")
        }
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await SyncNode.connect(to: address, group: MultiThreadedEventLoopGroup.singleton)
        } catch {
            let text = "\(error)"
            let reason = ["Connection refused": "connection refused", "timed out": "no answer within 5 s",
                          "No route": "no route to the host"].first { text.contains($0.key) }?.value ?? text
            throw NetError(.closed, "cannot reach the inviting device at \(address) (\(reason)); check the address "
                + "(`listen` in `hubsync status` there) and that its agent runs (`hubsync run`)")
        }
        let raw = channel.channel
        let deadline = Task {
            try await Deadlines.sleep(for: timeout)
            raw.close(promise: nil)
        }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var joiner = PairingJoiner(identity: identity, code: code, details: details)
            try await outbound.write(ByteBuffer(bytes: joiner.start()))
            guard let message2 = try await iterator.next() else {
                throw PairingError(code: .closed, message: "the device at \(address) closed the connection "
                    + "without answering: it may be busy (try again in a few seconds), or it is not a HubSync agent")
            }
            let message3: [UInt8]
            do {
                message3 = try joiner.receive(Array(message2.readableBytesView))
            } catch {
                if (error as? PairingError)?.code == .wrongCode { try? await outbound.write(ByteBuffer(bytes: PairingJoiner.abortMessage)) }
                throw error
            }
            try await outbound.write(ByteBuffer(bytes: message3))
            guard let message4 = try await iterator.next() else {
                throw PairingError(code: .closed, message: "the inviting device closed the connection before "
                    + "sending the household (its invite may have expired meanwhile); start a new invite there")
            }
            return try joiner.receiveGroup(Array(message4.readableBytesView))
        }
    }
}
