import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library's errno, in words.
public enum Errno {
    /// The C library's text for the errno value `code`, such as "Permission denied".
    public static func message(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The words for a file operation's failure: errno's text for a failed system call or a
    /// Foundation file error carrying one (not Foundation's "Error Domain=…" dump), else the
    /// error's own description.
    public static func fileReason(_ error: any Error) -> String {
        if let e = error as? SystemCallError { return e.reason }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return message(Int32(ns.code)) }
        if let under = ns.userInfo[NSUnderlyingErrorKey] as? NSError, under.domain == NSPOSIXErrorDomain {
            return message(Int32(under.code))
        }
        let text = ns.localizedDescription
        let boilerplate = "The operation could not be completed. "
        return text.hasPrefix(boilerplate) && text.count > boilerplate.count ? String(text.dropFirst(boilerplate.count)) : text
    }

    /// What a person reads when a network connection fails with `code`: what happened and what
    /// to do; nil for a value a connection does not usually meet.
    public static func connectionSentence(_ code: Int32) -> String? {
        switch code {
        case ECONNREFUSED: "connection refused: nothing listens at that address (is the agent or service running there?)"
        case ETIMEDOUT: "timed out: the other side did not answer; check that it is on and reachable"
        case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN: "no route to that address; check the network and the address"
        case ECONNRESET, EPIPE: "the other side closed the connection abruptly; it is tried again"
        case EADDRNOTAVAIL: "that address is not one this machine can reach from here; check the address"
        case ENOSPC: "the disk is full; free some space and try again"
        case EACCES, EPERM: "permission denied by the system (a firewall rule, or a port below 1024)"
        default: nil
        }
    }
}

/// A failed system call: which call, on which path, and errno.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    /// The call's name, such as "open".
    public let call: String
    /// The path it worked on.
    public let path: String
    /// The errno value.
    public let errno: Int32

    /// Records a failed call.
    public init(call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// The C library's text for ``errno``, such as "Permission denied".
    public var reason: String { Errno.message(errno) }

    /// "open PATH: REASON".
    public var description: String { "\(call) \(path): \(reason)" }

    /// Runs `body`, retrying while it fails with EINTR, and throws if it returns -1.
    @discardableResult
    public static func check<Result: FixedWidthInteger>(
        _ call: String, _ path: String, _ body: () -> Result
    ) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = lastErrno()
            if code != EINTR { throw SystemCallError(call: call, path: path, errno: code) }
        }
    }
}

/// errno, read where the name is not ``SystemCallError/errno``.
private func lastErrno() -> Int32 { errno }
