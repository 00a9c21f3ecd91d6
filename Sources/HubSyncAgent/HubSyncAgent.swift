// HubSyncAgent: the long-running agent — services for sync, discovery, pairing and backup
// schedules composed in one service group, and the local HTTP API (Hummingbird) with its client.
//
// One of the two modules that import NIO (with Net). It may import every library module; only
// the hubsync executable imports it. It must not import GRDB (the store is reached through Store).
