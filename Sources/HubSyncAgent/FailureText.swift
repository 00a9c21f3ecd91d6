import Foundation
public import HubSyncBase
public import HubSyncStore
import HubSyncNet
import NIOCore
import NIOPosix

/// A listener that could not start or stopped: which one (`role`), on which address, and why.
public struct ListenFailure: Error, Sendable {
    /// "peers" (the sync listener) or "the local API".
    public var role: String
    /// The HOST:PORT it was to listen on.
    public var address: String
    /// The system's error.
    public var cause: any Error

    public init(role: String, address: String, cause: any Error) {
        self.role = role
        self.address = address
        self.cause = cause
    }
}

/// Failures a person meets, in sentences: what happened and what to do, never a library's text.
public enum FailureText {
    /// The code and message for a failure this module knows (a listener, a connection, a system
    /// call), or nil for one it does not.
    public static func describe(_ error: any Error) -> (code: ErrorCode, message: String)? {
        switch error {
        case let e as ListenFailure:
            let option = e.role == "peers" ? "--listen" : "--api"
            switch errno(of: e.cause) {
            case EADDRINUSE:
                return (.io, "cannot listen for \(e.role) on \(e.address): another program uses that port; stop it, "
                    + "or choose another port with \(option) HOST:PORT (port 0 picks a free one)")
            case EACCES:
                return (.io, "cannot listen for \(e.role) on \(e.address): permission denied (ports below 1024 need "
                    + "root); choose a port of 1024 or more with \(option)")
            case EADDRNOTAVAIL:
                return (.invalidInput, "cannot listen for \(e.role) on \(e.address): no network interface of this "
                    + "machine has that address; give one of its own addresses, or 0.0.0.0, with \(option)")
            default:
                let inner = describe(e.cause)?.message ?? unknown(e.cause)
                return (.io, "cannot listen for \(e.role) on \(e.address): \(inner)")
            }
        case let e as SystemCallError:
            return (.io, systemCall(e.errno, path: e.path) ?? "\(e.call) \(e.path) failed: \(e.reason)")
        case is NIOConnectionError, is IOError, is ChannelError:
            let code = errno(of: error)
            if case ChannelError.connectTimeout = error { return (.timeout, NetError.describe(error)) }
            guard let code, let sentence = Errno.connectionSentence(code) else { return nil }
            switch code {
            case ETIMEDOUT: return (.timeout, sentence)
            case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ECONNRESET, EPIPE, EADDRNOTAVAIL: return (.closed, sentence)
            default: return (.io, sentence)
            }
        case let e as NetError:
            switch e.code {
            case .untrusted: return (.untrusted, "refused: not trusted — \(e.message)")
            case .clockSkew: return (.clockSkew, "clock skew: \(e.message); set this machine's clock (NTP) and try again")
            case .timeout: return (.timeout, "timed out: \(e.message)")
            default: return (e.code, e.message)
            }
        default:
            return nil
        }
    }

    /// The message for a failed system call on `path`, for the errno values people meet.
    public static func systemCall(_ code: Int32, path given: String) -> String? {
        // An atomic write's temporary file (`.tmp-NAME-RANDOM`) is ours, not the person's: name its folder.
        var path = given
        if let slash = given.lastIndex(of: "/"), given[given.index(after: slash)...].hasPrefix(".tmp-") {
            path = slash == given.startIndex ? "/" : String(given[..<slash])
            if code == ENOENT { return "the folder \(path) does not exist; check the path, or create the folder first" }
        }
        return switch code {
        case ENOSPC, EDQUOT: "the disk holding \(path) is full; nothing was left half written — free some space and try again"
        case EACCES, EPERM: "permission denied on \(path); check that this user may read and write it (`ls -ld \(path)`)"
        case EROFS: "\(path) is on a read-only file system; choose a writable place"
        case ENOENT: "\(path) does not exist; check the path"
        case EIO: "the disk failed reading or writing \(path) (an I/O error); check the disk (`dmesg`)"
        default: nil
        }
    }

    /// The errno inside a NIO error, if it carries one.
    static func errno(of error: any Error) -> Int32? {
        switch error {
        case is IOError, is NIOConnectionError: return NetError.errno(of: error)
        case let e as SystemCallError: return e.errno
        case let e as ListenFailure: return errno(of: e.cause)
        default: return nil
        }
    }

    /// What a person reads about a failure no one foresaw: its kind, without a library's text.
    public static func unknown(_ error: any Error) -> String {
        "an unexpected failure (\(String(describing: type(of: error))))"
    }

    /// What a running agent says of its store once damage was found under it (F23): the store
    /// refuses writes until it is repaired, which needs the agent stopped first. `refused`: the
    /// sentence answers a write (it says nothing was written).
    public static func storeDamage(_ error: StoreError, storePath: String, refused: Bool) -> String {
        let directory = (storePath as NSString).deletingLastPathComponent
        let written = refused ? "; nothing was written" : ""
        if error.code == .damaged {
            return "the store at \(storePath) is damaged (SQLite cannot read it), so this agent takes no more writes and "
                + "no peer's changes (peers keep them until then)\(written) — stop the agent (`kill \(getpid())`), then run "
                + "`hubsync repair --data \(directory)`: it rebuilds the store under this device's identity from what can "
                + "still be read, a backup (`--from-backup TARGET`) and the household's peers"
        }
        return "the disk under the store at \(storePath) failed (an I/O error), so this agent takes no more writes and no "
            + "peer's changes (peers keep them until then)\(written) — stop the agent (`kill \(getpid())`), check the disk "
            + "(`dmesg`), then run `hubsync doctor --data \(directory)` (and `hubsync repair` if it names the store damaged)"
    }
}
