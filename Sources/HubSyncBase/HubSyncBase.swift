// HubSyncBase: what every HubSync module shares and nothing else — the error pattern, the
// errno helper, the byte reader and writer, and the data directory (the name of every file in
// it, the one atomic-write helper and the writer lock), and this release's version.
//
// It imports only the C library and Foundation; it must not import any other HubSync module,
// GRDB, NIO or a C target of ours.

/// This release of HubSync: what `hubsync version` prints and the sync hello names (protocol/SPEC.md 3.1).
public enum HubSyncRelease {
    public static let version = "0.2.0"
}
