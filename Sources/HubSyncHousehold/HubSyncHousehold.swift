// HubSyncHousehold: the household on this device — its one secrets file (`household.key`) and
// its signed membership (`membership.statements`), the identity key file, key epochs and grants —
// as the `Household` actor, which is their only writer in a process and emits every change.
//
// Layering: beside Store (Crypto ← Household ← Backup ← Agent ← hubsync). It imports only
// HubSyncBase, HubSyncCrypto, Foundation and Synchronization: no Store, Core, Net, GRDB, NIO or C
// target. Records, peers and sockets are the agent's: it hands statements and grants in and
// writes out what the household issues.
