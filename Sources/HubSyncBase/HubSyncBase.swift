// HubSyncBase: what every HubSync module shares and nothing else — the error pattern, the
// errno helper, the byte reader and writer, and the data directory (the name of every file in
// it, the one atomic-write helper and the writer lock).
//
// It imports only the C library and Foundation; it must not import any other HubSync module,
// GRDB, NIO or a C target of ours.
