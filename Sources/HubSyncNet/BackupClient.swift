import HubSyncBase
import Dispatch
public import HubSyncCrypto
import NIOCore
import NIOPosix
import Synchronization

/// The client side of a backup connection (protocol/SPEC.md 5.12): opens an authenticated
/// channel to the device for backups (``SecureChannel/open(to:for:identity:group:accept:)``, the
/// call sync dialers use too: the marker, the SIGMA handshake as initiator, the check that the
/// responder is the expected device), reads its hello, then carries one request and its answer
/// at a time.
///
/// The connection lives in a task of its own; ``call(_:)`` hands it requests. The repository
/// code is synchronous, so ``callBlocking(_:)`` is there for it: it must run on a thread of its
/// own (the CLI's, or the agent's blocking-I/O pool), never on the cooperative pool.
public final class BackupClient: Sendable {
    private struct Job: Sendable {
        let request: [UInt8]
        let reply: CheckedContinuation<[UInt8], any Error>
    }

    private let jobs: AsyncStream<Job>.Continuation
    private let channel: any Channel

    private init(jobs: AsyncStream<Job>.Continuation, channel: any Channel) {
        self.jobs = jobs
        self.channel = channel
    }

    deinit { close() }

    /// Ends the connection; a call under way fails.
    public func close() {
        jobs.finish()
        channel.close(promise: nil)
    }

    /// Connects to the device `expected` at `address` as `identity`; returns the client and the
    /// device's hello (its first message: whether it stores backups for this device).
    /// - Parameter answerTimeout: how long one answer may take before the connection is closed.
    public static func open(address: String, identity: SigningKey, expected: DeviceID,
                            answerTimeout: Duration = .seconds(60)) async throws -> (client: BackupClient, hello: [UInt8]) {
        let channel = try await SecureChannel.open(to: address, for: .backup, identity: identity) { device in
            guard device == expected else {
                throw NetError(.unexpectedPeer, "the agent at \(address) is device \(device.short), "
                    + "not \(expected.short); check the address in `hubsync peers`")
            }
        }
        let raw = channel.channel.channel
        let (stream, continuation) = AsyncStream<Job>.makeStream()
        let client = BackupClient(jobs: continuation, channel: raw)
        let opened = Waiter()
        let hello = try await withCheckedThrowingContinuation { (ready: CheckedContinuation<[UInt8], any Error>) in
            opened.continuation.withLock { $0 = ready }
            Task {
                do {
                    try await channel.executeThenClose { inbound, outbound in
                        let backup = BackupChannel(inbound: inbound, outbound: outbound)
                        guard let hello = try await backup.receive() else {
                            throw NetError(.closed, "\(address) closed the connection after the handshake")
                        }
                        opened.continuation.withLock { $0.take() }?.resume(returning: hello)
                        for await job in stream {
                            let timedOut = Atomic<Bool>(false)
                            let timer = Task {
                                try await Deadlines.sleep(for: answerTimeout)
                                timedOut.store(true, ordering: .relaxed)
                                raw.close(promise: nil)
                            }
                            defer { timer.cancel() }
                            do {
                                try await backup.send(job.request)
                                guard let answer = try await backup.receive() else {
                                    throw timedOut.load(ordering: .relaxed)
                                        ? NetError(.timeout, "no answer within \(answerTimeout.components.seconds) s")
                                        : NetError(.closed, "the peer closed the connection")
                                }
                                job.reply.resume(returning: answer)
                            } catch {
                                job.reply.resume(throwing: error)
                                throw error
                            }
                        }
                    }
                } catch {
                    opened.continuation.withLock { $0.take() }?.resume(throwing: error)
                }
                // Requests queued behind a broken connection fail instead of waiting forever.
                continuation.finish()
                for await job in stream { job.reply.resume(throwing: NetError(.closed, "the connection ended")) }
                opened.continuation.withLock { $0.take() }?.resume(throwing: NetError(.closed, "the connection ended"))
            }
        }
        return (client, hello)
    }

    /// Whoever waits for the connection to open.
    private final class Waiter: Sendable {
        let continuation = Mutex<CheckedContinuation<[UInt8], any Error>?>(nil)
    }

    /// Sends one request and returns the answer.
    public func call(_ request: [UInt8]) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { reply in
            if case .terminated = jobs.yield(Job(request: request, reply: reply)) {
                reply.resume(throwing: NetError(.closed, "the connection ended"))
            }
        }
    }

    /// ``call(_:)`` for synchronous callers; blocks the calling thread until the answer is in.
    public func callBlocking(_ request: [UInt8]) throws -> [UInt8] {
        try Self.blocking { try await self.call(request) }
    }

    /// Runs `body` to completion and returns its result, blocking the calling thread (which must
    /// not be one of the cooperative pool's: `body` needs one of them to run).
    public static func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let result = Outcome<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            result.value.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.value.withLock { $0! }.get()
    }
}

/// A result handed from a task to the thread that waits for it.
private final class Outcome<T: Sendable>: Sendable {
    let value = Mutex<Result<T, any Error>?>(nil)
}

extension NetError {
    /// A short reason for a transport failure, for messages: a ``NetError``'s message, or what
    /// the system said about a connection that could not be made.
    public static func describe(_ error: any Error) -> String {
        switch error {
        case let e as NetError: return e.message
        case let e as NIOConnectionError:
            if let code = errno(of: e) { return Errno.connectionSentence(code) ?? "could not connect: \(Errno.message(code))" }
            if e.dnsAError != nil || e.dnsAAAAError != nil {
                return "the host name could not be resolved; check the address (or use an IP address)"
            }
            return "could not connect; check that the other side is on and the address is right"
        case let e as IOError:
            return Errno.connectionSentence(e.errnoCode) ?? "the connection failed: \(Errno.message(e.errnoCode))"
        case ChannelError.connectTimeout:
            return "timed out: the other side did not answer; check that it is on and reachable"
        case is ChannelError: return "the connection closed"
        case is CancellationError: return "stopped"
        case let e as any CodedError: return e.message
        default: return "an unexpected failure (\(String(describing: type(of: error))))"
        }
    }

    /// The errno inside a NIO error, if it carries one.
    public static func errno(of error: any Error) -> Int32? {
        switch error {
        case let e as IOError: return e.errnoCode
        case let e as NIOConnectionError:
            for failure in e.connectionErrors { if let code = errno(of: failure.error) { return code } }
            return nil
        default: return nil
        }
    }
}
