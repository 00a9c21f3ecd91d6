// HubSyncNet: connections between devices over NIO — framing, the secure channel (handshake
// and secret streams), sync sessions (a pure
// state machine, `SyncSessionStateMachine`, and the driver that performs its actions), the pairing desk and client, and the backup channel.
//
// One of the two modules that import NIO (with Agent). It builds on Store, Core and Crypto;
// it must not import Backup, Agent, Discovery or GRDB (the store is reached through Store).
