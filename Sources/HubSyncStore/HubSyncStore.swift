// HubSyncStore: the record store — one SQLite file per data directory, written through GRDB
// in one serialized writer: local writes (RecordOperation), merges of remote states, the change
// feed, peers' watermarks and what backups read. Each read and write is stated once and runs
// either blocking (the CLI) or awaited on GRDB's own queues (the agent; Store+Access.swift).
//
// The only module that imports GRDB. It builds on Core and Crypto (and HubSyncBase); it must not
// import Net, Discovery, Backup, Agent or NIO.
