// HubSyncCrypto: primitives and the protocols made of them — device identity keys and device IDs,
// the session handshake and pairing (CPace) as state machines, secret streams, the household's
// secrets, membership statements and key grants as values — around libsodium (CHubSodium, behind
// internal imports). It does no file I/O: HubSyncHousehold keeps keys and secrets on disk.
//
// Layering: Crypto ← Core ← Store ← Net ← Backup ← Agent ← hubsync. Crypto imports only
// HubSyncBase, CHubSodium and Foundation: no other HubSync module, no GRDB, no NIO.
