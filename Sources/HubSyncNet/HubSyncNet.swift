// HubSyncNet: connections between devices over NIO — one pipeline for every connection (the
// frame codec, then `SecureChannelHandler`: the handshake, then secretstream sealing and opening),
// `SecureChannel.open` for an authenticated channel to a device for sync or backup, sync sessions
// (a pure state machine, `SyncSessionStateMachine`, and the driver that performs its actions),
// the pairing desk and client, and the backup channel.
//
// One of the two modules that import NIO (with Agent). It builds on Store, Core and Crypto;
// it must not import Backup, Agent, Discovery or GRDB (the store is reached through Store).
