// HubSyncBackup: encrypted, deduplicated backups of the store — the repository format
// (chunks, packs, indexes, snapshots), local and peer targets, and the backup peer protocol.
//
// It builds on Store, Core, Crypto and Household (the household's secrets, a restored device's
// files), with zstd and libsodium behind internal imports, and holds no sockets: the peer target
// (PeerTarget) speaks the backup protocol over HubSyncNet's authenticated channel
// (`BackupClient`, blocking calls, never on an event loop). It must not import Agent, NIO or
// GRDB: it reads records through Store.
