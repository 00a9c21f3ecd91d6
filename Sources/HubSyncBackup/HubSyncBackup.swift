// HubSyncBackup: encrypted, deduplicated backups of the store — the repository format
// (chunks, packs, indexes, snapshots), local and peer targets, and the backup peer protocol.
//
// It builds on Store, Core, Crypto and Household (the household's secrets, a restored device's
// files), with zstd and libsodium behind internal imports. It must not import Net, Agent, NIO or
// GRDB: it reads records through Store and reaches peers over its own blocking connection, never
// on an event loop.
