// SQLite calls Swift cannot make itself: sqlite3_db_config is variadic.
#include <sqlite3.h>

/// Stops the connection `db` from checkpointing the WAL into the database file when it closes
/// (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE); answers SQLite's result code.
static inline int hub_sqlite3_no_checkpoint_on_close(void *db) {
    return sqlite3_db_config((sqlite3 *)db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}
