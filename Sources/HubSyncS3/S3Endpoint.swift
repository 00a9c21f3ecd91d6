import Foundation

/// Where a repository lives in S3: `s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]`.
public struct S3Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// How the bucket is named in requests: in the path (`http://host/bucket/key`, what most
    /// self-hosted services such as SeaweedFS and MinIO expect) or in the host name
    /// (`https://bucket.host/key`, what AWS prefers).
    public enum Addressing: String, Sendable { case path, virtualHost = "virtual" }

    public var secure: Bool
    public var host: String
    public var port: Int
    public var bucket: String
    /// Key prefix without slashes at either end; "" for the bucket's root.
    public var prefix: String
    public var addressing: Addressing

    /// Parses the text after `s3:`. `addressing` nil picks virtual-host for amazonaws.com hosts
    /// and path-style for others.
    public init(parsing text: String, addressing: Addressing? = nil) throws(S3Error) {
        let example = "s3:https://s3.example.net/my-bucket/hubsync or s3:http://127.0.0.1:8333/backups"
        guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else {
            throw S3Error(.invalidInput, "s3:\(text) is not an S3 address; give s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX], e.g. \(example)")
        }
        guard c.query == nil, c.fragment == nil, c.user == nil, c.password == nil else {
            // Said without the user name and password, which may be a secret key typed into the address.
            var shown = c
            shown.user = nil
            shown.password = nil
            throw S3Error(.invalidInput, "s3:\(shown.string ?? "…") has a query, fragment or user name; give s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX] "
                + "and the credentials through AWS_ACCESS_KEY_ID or a credentials file")
        }
        let parts = c.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let bucket = parts.first else {
            throw S3Error(.invalidInput, "s3:\(text) names no bucket; give s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX], e.g. \(example)")
        }
        guard S3Endpoint.isValidBucket(bucket) else {
            throw S3Error(.invalidInput, "\"\(bucket)\" is not a valid bucket name: 3 to 63 lower-case letters, digits, dots and "
                + "hyphens, starting and ending with a letter or digit")
        }
        guard !parts.contains(where: { $0 == "." || $0 == ".." }) else {
            throw S3Error(.invalidInput, "s3:\(text): the prefix may not hold \".\" or \"..\" parts; give the folder as it is, "
                + "e.g. s3:http://127.0.0.1:8333/backups/laptop")
        }
        if let port = c.port, !(1...65535).contains(port) {
            throw S3Error(.invalidInput, "s3:\(text): port \(port) is not between 1 and 65535")
        }
        secure = scheme == "https"
        self.host = host
        port = c.port ?? (secure ? 443 : 80)
        self.bucket = bucket
        prefix = parts.dropFirst().joined(separator: "/")
        self.addressing = addressing ?? (host.hasSuffix("amazonaws.com") ? .virtualHost : .path)
    }

    public static func isValidBucket(_ name: String) -> Bool {
        let u = Array(name.utf8)
        guard (3...63).contains(u.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) }
        return alnum(u.first!) && alnum(u.last!) && u.allSatisfy { alnum($0) || $0 == 46 || $0 == 45 }
    }

    /// `s3:http://host:port/bucket/prefix`, as given.
    public var description: String {
        let defaultPort = port == (secure ? 443 : 80)
        return "s3:\(secure ? "https" : "http")://\(hostForURL(host))\(defaultPort ? "" : ":\(port)")/\(bucket)"
            + (prefix.isEmpty ? "" : "/" + prefix)
    }

    /// The Host header: the bucket joins the host name in virtual-host style.
    public var hostHeader: String {
        let name = addressing == .virtualHost ? bucket + "." + host : hostForURL(host)
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// The raw (unencoded) request path for an object key, or for the bucket itself when nil.
    public func path(key: String?) -> String {
        let base = addressing == .virtualHost ? "" : "/" + bucket
        guard let key else { return addressing == .virtualHost ? "/" : base }
        return base + "/" + key
    }

    /// The object key of a repository file name.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

    func hostForURL(_ h: String) -> String { h.contains(":") && !h.hasPrefix("[") ? "[\(h)]" : h }

    /// The URL to send a request to, the path encoded as it was signed.
    func url(path: String, query: [(String, String)]) -> String {
        let q = query.map { SigV4.uriEncode($0.0, keepSlash: false) + "=" + SigV4.uriEncode($0.1, keepSlash: false) }
            .joined(separator: "&")
        return "\(secure ? "https" : "http")://\(hostHeader)\(SigV4.uriEncode(path, keepSlash: true))" + (q.isEmpty ? "" : "?" + q)
    }
}
