// HubSyncCore: the data model and the sync protocol as pure values — records and their CRDT
// state, the canonical encoding, the hybrid logical clock, JSON, and the sync messages with
// reconciliation as state machines.
//
// Core does no I/O: no files, sockets, threads or clocks of its own (callers pass the time
// in). It imports only HubSyncBase and HubSyncCrypto: not Store, not GRDB, not NIO.
