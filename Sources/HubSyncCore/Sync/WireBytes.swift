public import HubSyncBase

/// Reads the fields of one sync message (protocol/SPEC.md, "Conventions"), checking
/// every length against the bytes left; written with ``ByteWriter``.
typealias WireReader = ByteReader<WireError>
