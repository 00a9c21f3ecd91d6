internal import GRDB
import Foundation

/// The SQLite schema, as named migrations. Never edit a migration that has shipped: add one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-records") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT;
                CREATE TABLE records (
                    collection TEXT NOT NULL,
                    id TEXT NOT NULL,
                    state BLOB NOT NULL,      -- canonical encoding (protocol/SPEC.md)
                    digest BLOB NOT NULL,     -- BLAKE2b-256 of state
                    alive INTEGER NOT NULL,   -- 1 unless deleted
                    updated INTEGER NOT NULL, -- greatest HLC reading applied to the record
                    seq INTEGER NOT NULL,     -- local sequence of the latest change: the change log
                    conflicts INTEGER NOT NULL, -- number of fields with concurrent versions
                    PRIMARY KEY (collection, id)
                ) STRICT;
                CREATE UNIQUE INDEX records_by_seq ON records(seq);
                CREATE INDEX records_in_conflict ON records(collection, id) WHERE conflicts > 0;
                """)
            var epoch = [UInt8](repeating: 0, count: 8)
            for i in epoch.indices { epoch[i] = UInt8.random(in: 0...255) }
            try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('log_epoch', ?), ('hlc', 0)",
                           arguments: [epoch.map { String(format: "%02x", $0) }.joined()])
        }
        m.registerMigration("v2-peers") { db in
            try db.execute(sql: """
                CREATE TABLE peers (
                    device TEXT PRIMARY KEY NOT NULL, -- hex of the 32-byte device ID
                    address TEXT,                     -- HOST:PORT to dial, if known
                    added INTEGER NOT NULL,           -- Unix ms
                    their_epoch TEXT NOT NULL DEFAULT '', -- the peer's log epoch our watermark is in
                    their_seq INTEGER NOT NULL DEFAULT 0, -- the peer's last sequence we applied
                    acked_seq INTEGER NOT NULL DEFAULT 0, -- our last sequence the peer acknowledged
                    last_sync INTEGER NOT NULL DEFAULT 0  -- Unix ms of the last exchange
                ) STRICT;
                """)
        }
        m.registerMigration("v3-echo") { db in
            // The peer whose state this row is exactly (set by a merge whose result equals what the
            // peer sent); the push to that peer skips it.
            try db.execute(sql: "ALTER TABLE records ADD COLUMN echo_of TEXT")
        }
        m.registerMigration("v4-source") { db in
            // The peer a row's latest change came from ("" for an import, NULL for a local write), so a replay of the
            // change feed tells local and remote changes apart as the live feed did.
            try db.execute(sql: "ALTER TABLE records ADD COLUMN source TEXT")
        }
        m.registerMigration("v5-counts") { db in
            // Live records by collection, kept by the write path (one row per collection a
            // transaction changes): a status reads them instead of scanning every record (about
            // 100 ms at 100k records). `counts_seq` is the last sequence they
            // were kept to; a store written by anything else since is counted again on opening
            // (``Store/recountIfStale(_:)``). Rows deleted from outside (the sqlite3 shell) are
            // taken off by the trigger; HubSync itself never deletes a record's row.
            try db.execute(sql: """
                CREATE TABLE record_counts (collection TEXT PRIMARY KEY NOT NULL, alive INTEGER NOT NULL) STRICT, WITHOUT ROWID;
                CREATE TRIGGER records_count_delete AFTER DELETE ON records WHEN OLD.alive = 1 BEGIN
                    UPDATE record_counts SET alive = alive - 1 WHERE collection = OLD.collection;
                END;
                """)
            try Schema.recount(db)
        }
        return m
    }

    /// Counts the live records of every collection anew, as of the store's last sequence.
    static func recount(_ db: Database) throws {
        try db.execute(sql: """
            DELETE FROM record_counts;
            INSERT INTO record_counts (collection, alive) SELECT collection, sum(alive) FROM records GROUP BY collection;
            INSERT INTO meta (key, value) VALUES ('counts_seq', (SELECT coalesce(max(seq), 0) FROM records))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value;
            """)
    }
}
