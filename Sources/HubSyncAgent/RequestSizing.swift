public import HubSyncStore
import HubSyncCore

/// Fits writes into local-API requests, whose bodies are at most 4 MiB.
///
/// A record may grow past that by merges (each write is at most 768 KiB, but merges are never
/// refused), and an export or a backup holds such a record whole: a client sends it alone
/// through `POST /v1/import`, which streams its body.
public enum RequestSizing {
    /// The most bytes of writes one request carries: under the API's body limit, with room for
    /// the request's own members.
    public static let budget = 3 << 20

    /// The bytes a write takes in a request.
    public static func size(of write: RecordWrite) -> Int {
        JSON.serialize(.object(write.json)).utf8.count + 1
    }
}
