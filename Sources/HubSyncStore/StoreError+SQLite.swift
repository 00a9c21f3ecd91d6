internal import GRDB
public import HubSyncBase

extension StoreError {
    /// The error for a failure SQLite reported on the store at `path`, with a message a person
    /// can act on: a damaged file (SQLite's CORRUPT and NOTADB) is `.damaged` and names `hubsync
    /// repair`, a full disk (FULL) and a file that cannot be opened or read (CANTOPEN, PERM,
    /// AUTH, IOERR) are `.io`; the rest (READONLY too: a handle opened read-only on purpose) stay
    /// `.database`, with SQLite's text kept in the cause. `doing` says what was being done ("opening", "reading or writing").
    static func sqlite(_ error: any Error, path: String, doing: String) -> StoreError {
        guard let e = error as? DatabaseError else {
            return StoreError(.database, "\(doing) the store at \(path) failed: \(error)", cause: error)
        }
        switch e.resultCode.primaryResultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StoreError(.damaged, "the store at \(path) is damaged (SQLite cannot read it); run `hubsync repair` "
                + "to rebuild it under this device's identity, from a backup (`--from-backup TARGET`), from the "
                + "household's peers, or from what can still be read", cause: e)
        case .SQLITE_FULL:
            return StoreError(.io, "the disk holding \(path) is full; nothing was written — free some space and "
                + "try again", cause: e)
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return StoreError(.io, "cannot use the store at \(path): permission denied or the folder "
                + "is missing; check that it exists and that this user may read and write it", cause: e)
        case .SQLITE_IOERR:
            return StoreError(.io, "the disk failed while \(doing) the store at \(path) (an I/O error); check the "
                + "disk (`dmesg`), then run `hubsync doctor`", cause: e)
        default:
            return StoreError(.database, "\(doing) the store at \(path) failed (SQLite error \(e.resultCode.rawValue)); "
                + "run `hubsync doctor`", cause: e)
        }
    }
}
