import Foundation

/// A child process started with posix_spawn and reaped with waitpid.
///
/// Foundation's `Process` is not used here: with several tests spawning at once, long-lived
/// daemons inherited other commands' pipe ends, and `waitUntilExit` stalled on exited children.
/// This starts the child with only fds 0-2 open, default signal handling and an empty signal
/// mask (so SIGTERM works on daemons), and waits for exactly its own PID.
final class ChildProcess: @unchecked Sendable { // `status` is guarded by `lock`
    let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `path` with `args`; standard output and error are appended to the given files
    /// (or /dev/null), standard input is /dev/null.
    init(_ path: String, _ args: [String], stdout: String? = nil, stderr: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
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
        var child: pid_t = 0
        let result = posix_spawn(&child, path, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw CommandFailed(description: "cannot start \(path): \(String(cString: strerror(result)))")
        }
        pid = child
    }

    /// Whether it still runs (reaps it if it just exited).
    var isRunning: Bool {
        lock.withLock {
            guard status == nil else { return false }
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid { status = Self.decode(raw); return false }
            return r == 0
        }
    }

    /// Waits for it to exit; its exit status, or 128 + the signal that ended it.
    @discardableResult
    func wait() -> Int32 {
        lock.withLock {
            if let status { return status }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 {
                guard errno == EINTR else { status = -1; return -1 }
            }
            status = Self.decode(raw)
            return status!
        }
    }

    /// Sends `signal` if it still runs, then waits for it.
    func stop(_ signal: Int32 = SIGKILL) {
        if isRunning { kill(pid, signal) }
        wait()
    }

    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    static let addCloseFrom: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }

    static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }
}
