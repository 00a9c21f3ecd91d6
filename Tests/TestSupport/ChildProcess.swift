import Foundation

/// A child process started with posix_spawn and reaped by a thread of its own.
///
/// Foundation's `Process` is not used: with several tests spawning at once, long-lived daemons
/// inherited other commands' pipe ends, and `waitUntilExit` stalled on exited children. This
/// starts the child with only fds 0-2 open, default signal handling and an empty signal mask (so
/// SIGTERM works on daemons). A reaper thread waits for exactly its PID, so awaiting the exit
/// never holds a thread of the cooperative pool.
public final class ChildProcess: @unchecked Sendable { // `status` and `waiters` are guarded by `lock`
    public let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [@Sendable (Int32) -> Void] = []

    /// Starts `path` with `args`. Standard input is read from the file `stdin` (or /dev/null);
    /// standard output and error are appended to the given files (or /dev/null). `environment`
    /// replaces the inherited environment when given.
    public init(_ path: String, _ args: [String], stdin: String? = nil, stdout: String? = nil, stderr: String? = nil,
                environment: [String: String]? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr ?? stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        // glibc 2.34+; not visible to Swift without _GNU_SOURCE, so looked up by name.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for e in envp ?? [] { free(e) } }
        var child: pid_t = 0
        let result = envp.map { posix_spawn(&child, path, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&child, path, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw CommandFailed(description: "cannot start \(path): \(String(cString: strerror(result)))")
        }
        pid = child
        let reaper = Thread { [self] in reap() }
        reaper.stackSize = 1 << 18
        reaper.start()
    }

    /// Waits for the child on the reaper thread, then hands its status to everyone waiting.
    private func reap() {
        var raw: Int32 = 0
        var r: pid_t
        repeat { r = waitpid(pid, &raw, 0) } while r < 0 && errno == EINTR
        let decoded = r == pid ? Self.decode(raw) : -1
        let waiting = lock.withLock {
            status = decoded
            defer { waiters = [] }
            return waiters
        }
        for w in waiting { w(decoded) }
    }

    /// Whether it still runs.
    public var isRunning: Bool { lock.withLock { status == nil } }

    /// Its exit status, or 128 + the signal that ended it; nil while it runs.
    public var exitStatus: Int32? { lock.withLock { status } }

    /// Waits for it to exit; its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            onExit { continuation.resume(returning: $0) }
        }
    }

    /// Calls `body` with the exit status once it has exited (at once if it has).
    private func onExit(_ body: @escaping @Sendable (Int32) -> Void) {
        let done: Int32? = lock.withLock {
            if let status { return status }
            waiters.append(body)
            return nil
        }
        if let done { body(done) }
    }

    /// Waits for it to exit, blocking the calling thread; for a `deinit` or a static initializer,
    /// which cannot await. Its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func waitBlocking() -> Int32 {
        let exited = DispatchSemaphore(value: 0)
        onExit { _ in exited.signal() }
        exited.wait()
        return exitStatus ?? -1
    }

    /// Sends `signal` if it still runs.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Sends `signal` if it still runs, then waits for it; its exit status.
    @discardableResult
    public func stop(_ signal: Int32 = SIGKILL) async -> Int32 {
        self.signal(signal)
        return await wait()
    }

    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    static let addCloseFrom: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }

    static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }
}
