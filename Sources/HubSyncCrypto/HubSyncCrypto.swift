// HubSyncCrypto: the keys and the protocols made of them — device identity and device IDs,
// the session handshake, pairing (CPace), secret streams, the household's secrets and
// membership statements — around libsodium (CHubSodium, behind internal imports).
//
// Layering: Crypto ← Core ← Store ← Net ← Backup ← Agent ← hubsync. Crypto imports only
// HubSyncBase, CHubSodium and Foundation: no other HubSync module, no GRDB, no NIO.
