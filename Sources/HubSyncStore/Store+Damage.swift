internal import GRDB
public import HubSyncBase

/// What a store has found wrong with its file, and who is told when it finds it.
struct DamageLatch: Sendable {
    var found: StoreError?
    var handlers: [@Sendable (StoreError) -> Void] = []
}

/// A store file damaged under a running process (SQLite finds it corrupt, or the disk fails
/// under it) is noticed by the first call that meets the damage; from then on every write is
/// refused with that error, so nothing more is acknowledged into a file that may not keep it
/// (peers keep what they sent, unacknowledged, and send it again after `hubsync repair`).
/// Reads go on: what can still be read can still be exported.
extension Store {
    /// The damage found in the store file, once a call met it; nil while none has.
    public var damageFound: StoreError? { damage.withLock { $0.found } }

    /// Calls `handler` once, when damage is first found (at once when it already was).
    public func onDamage(_ handler: @escaping @Sendable (StoreError) -> Void) {
        let found = damage.withLock { latch in
            if latch.found == nil { latch.handlers.append(handler) }
            return latch.found
        }
        if let found { handler(found) }
    }

    /// Whether `error` says the file itself is in trouble: damaged (corrupt, not a database, a
    /// record that does not decode) or on a disk that fails to read or write (an I/O error).
    /// A full disk, a busy file or a refused write is not: those pass.
    public static func isDamage(_ error: StoreError) -> Bool {
        if error.code == .damaged { return true }
        guard error.code == .io, let cause = error.cause as? DatabaseError else { return false }
        return cause.resultCode.primaryResultCode == .SQLITE_IOERR
    }

    /// Latches `error` when it is damage (telling the handlers the first time); returns it.
    func noticing(_ error: StoreError) -> StoreError {
        guard Self.isDamage(error) else { return error }
        let handlers = damage.withLock { latch -> [@Sendable (StoreError) -> Void] in
            guard latch.found == nil else { return [] }
            latch.found = error
            defer { latch.handlers = [] }
            return latch.handlers
        }
        for handler in handlers { handler(error) }
        return error
    }

    /// Throws the damage found, if any: a write is refused before it starts.
    func refuseWritesIfDamaged() throws(StoreError) {
        if let found = damageFound { throw found }
    }
}
