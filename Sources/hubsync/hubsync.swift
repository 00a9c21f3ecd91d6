// hubsync: the command-line tool — argument parsing, output and the data directory — over
// the libraries, talking to a running agent through its local API when there is one.
//
// The top of the layering (Crypto ← Core ← Store ← Net ← Backup ← Agent ← hubsync): it may
// import any HubSync module, but holds no sync, storage or crypto logic of its own. It bootstraps
// logging; libraries only accept a Logger.
