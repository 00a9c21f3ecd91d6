import Foundation
public import HubSyncCore
public import HubSyncS3
import Synchronization

/// A repository in an S3 bucket (AWS, SeaweedFS, MinIO, Garage…):
/// `s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]` (protocol/SPEC.md 5.13).
///
/// Files are objects under the prefix, with the same names as on disk. A PUT is atomic, so a
/// crash leaves each object whole or absent. Packs (`data/…`) upload a few at a time in the
/// background; every other call first waits for them, so an index or snapshot is only written
/// once the packs it names are stored, and an upload's failure surfaces at that call.
public final class S3Target: BackupTarget {
    public let client: S3Client
    let uploads: DispatchSemaphore
    let running = DispatchGroup()
    let uploadError = Mutex<S3Error?>(nil)
    let bucketChecked = Mutex(false)

    public init(client: S3Client) {
        self.client = client
        uploads = DispatchSemaphore(value: max(1, client.settings.parallelUploads))
    }

    /// A target for the text after `s3:`, with credentials found as ``S3Credentials/resolve``
    /// says.
    public convenience init(_ text: String, settings: S3Settings,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(BackupError) {
        do throws(S3Error) {
            let endpoint = try S3Endpoint(parsing: text, addressing: settings.addressing)
            let (credentials, source) = try S3Credentials.resolve(configuredFile: settings.credentialsFile,
                                                                 profile: settings.profile, environment: environment)
            self.init(client: S3Client(endpoint: endpoint, credentials: credentials, source: source, settings: settings))
        } catch {
            throw BackupError(error.code, error.message, cause: error)
        }
    }

    public var description: String { client.endpoint.description }

    /// Runs one client call to its end, its error as a backup error.
    func run<T: Sendable>(_ body: @escaping @Sendable (S3Client) async throws(S3Error) -> T) throws(BackupError) -> T {
        let client = self.client
        do throws(S3Error) {
            return try s3Blocking { () async throws(S3Error) -> T in try await body(client) }
        } catch {
            throw BackupError(error.code, error.message, cause: error)
        }
    }

    /// Waits for the uploads under way; the first that failed fails this call.
    public func drain() throws(BackupError) {
        running.wait()
        if let e = uploadError.withLock({ (e: inout S3Error?) -> S3Error? in let first = e; e = nil; return first }) {
            throw BackupError(e.code, e.message, cause: e)
        }
    }

    public func put(_ name: String, _ data: [UInt8], replacing: Bool) throws(BackupError) {
        let key = client.endpoint.key(name)
        guard name.hasPrefix("data/") else {
            try drain()
            // Content-addressed names never change; the few others (config, keys) must not be
            // replaced unless asked (leases are).
            if !replacing, try run({ c async throws(S3Error) in try await c.size(key: key) }) != nil { return }
            try run { c async throws(S3Error) in try await c.put(key: key, data: data) }
            return
        }
        if uploadError.withLock({ $0 != nil }) { try drain() }
        uploads.wait()
        running.enter()
        Task.detached { [self] in
            defer { uploads.signal(); running.leave() }
            do throws(S3Error) { try await client.put(key: key, data: data) } catch {
                uploadError.withLock { if $0 == nil { $0 = error } }
            }
        }
    }

    public func get(_ name: String) throws(BackupError) -> [UInt8] {
        try drain()
        let key = client.endpoint.key(name)
        guard let bytes = try run({ c async throws(S3Error) in try await c.get(key: key) }) else {
            throw BackupError(.notFound, "\(description)/\(name) does not exist")
        }
        return bytes
    }

    public func get(_ name: String, offset: Int, length: Int) throws(BackupError) -> [UInt8] {
        try drain()
        let key = client.endpoint.key(name)
        guard let bytes = try run({ c async throws(S3Error) in try await c.get(key: key, range: offset..<(offset + length)) }) else {
            throw BackupError(.notFound, "\(description)/\(name) does not exist")
        }
        guard bytes.count == length else {
            throw BackupError(.damaged, "\(description)/\(name) is shorter than expected (\(offset + bytes.count) of "
                + "\(offset + length) bytes)")
        }
        return bytes
    }

    public func list(_ folder: String) throws(BackupError) -> [(name: String, size: Int)] {
        try drain()
        let base = client.endpoint.key(folder) + "/"
        let strip = client.endpoint.prefix.isEmpty ? 0 : client.endpoint.prefix.count + 1
        let found = try run { c async throws(S3Error) in try await c.list(prefix: base) }
        return found.map { (String($0.key.dropFirst(strip)), $0.size) }.sorted { $0.0 < $1.0 }
    }

    public func delete(_ name: String) throws(BackupError) {
        try drain()
        let key = client.endpoint.key(name)
        try run { c async throws(S3Error) in try await c.delete(key: key) }
    }

    /// Deletes a few objects at a time.
    public func remove(_ names: [String]) throws(BackupError) {
        try drain()
        let keys = names.map { client.endpoint.key($0) }
        let width = max(1, client.settings.parallelUploads)
        try run { c async throws(S3Error) in
            var start = 0
            while start < keys.count {
                let batch = Array(keys[start..<min(start + width, keys.count)])
                let failures = await withTaskGroup(of: S3Error?.self) { group in
                    for k in batch {
                        group.addTask { do throws(S3Error) { try await c.delete(key: k); return nil } catch { return error } }
                    }
                    var out: [S3Error] = []
                    for await e in group { if let e { out.append(e) } }
                    return out
                }
                if let first = failures.first { throw first }
                start += width
            }
        }
    }

    /// Whether the file exists. The first miss also checks that the bucket exists, so a
    /// missing bucket is named as such rather than taken for an empty repository.
    public func exists(_ name: String) throws(BackupError) -> Bool {
        try drain()
        let key = client.endpoint.key(name)
        if try run({ c async throws(S3Error) in try await c.size(key: key) }) != nil { return true }
        if !bucketChecked.withLock({ $0 }) {
            guard try bucketExists() else {
                throw BackupError(.missing, "the bucket \(client.endpoint.bucket) does not exist at "
                    + "\(client.endpoint.hostHeader); create it with `hubsync backup init --repo \(description) "
                    + "--create-bucket`, or check the name in --repo")
            }
        }
        return false
    }

    /// Whether the bucket exists.
    public func bucketExists() throws(BackupError) -> Bool {
        let found = try run { c async throws(S3Error) in try await c.bucketExists() }
        if found { bucketChecked.withLock { $0 = true } }
        return found
    }

    /// Creates the bucket.
    public func createBucket() throws(BackupError) {
        try run { c async throws(S3Error) in try await c.createBucket() }
        bucketChecked.withLock { $0 = true }
    }
}

extension S3Settings {
    /// The settings in config.json's `"backup": {"s3": {…}}` over the environment's defaults;
    /// nil and the reason when a setting is unknown or invalid.
    public static func parse(_ o: [String: Value]?, environment: [String: String]) -> (S3Settings?, String?) {
        var s = S3Settings(environment: environment)
        for (key, v) in o ?? [:] {
            switch (key, v) {
            case ("region", .string(let r)) where !r.isEmpty: s.region = r
            case ("profile", .string(let p)) where !p.isEmpty: s.profile = p
            case ("credentials_file", .string(let f)) where !f.isEmpty: s.credentialsFile = f
            case ("addressing", .string("path")): s.addressing = .path
            case ("addressing", .string("virtual")), ("addressing", .string("virtual-host")): s.addressing = .virtualHost
            case ("timeout_seconds", .int(let n)) where n > 0: s.timeoutSeconds = Double(n)
            case ("timeout_seconds", .double(let d)) where d > 0: s.timeoutSeconds = d
            case ("attempts", .int(let n)) where (1...20).contains(n): s.attempts = Int(n)
            case ("parallel_uploads", .int(let n)) where (1...64).contains(n): s.parallelUploads = Int(n)
            default:
                return (nil, "unknown or invalid setting \"backup.s3.\(key)\": \(JSON.serialize(v)); settings: region, "
                    + "profile, credentials_file, addressing (\"path\" or \"virtual\"), timeout_seconds, attempts (1-20), "
                    + "parallel_uploads (1-64)")
            }
        }
        return (s, nil)
    }
}
