internal import GRDB

func sqliteLibraryVersion() -> String {
    (try? DatabaseQueue().read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") }) ?? "unknown"
}
