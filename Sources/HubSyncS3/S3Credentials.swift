import Foundation
public import HubSyncBase

/// An access key, its secret and, for temporary credentials, a session token.
public struct S3Credentials: Sendable, Equatable {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?

    public init(accessKey: String, secretKey: String, sessionToken: String? = nil) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
    }

    /// Finds the credentials, in this order: the file config.json names (`"s3":
    /// {"credentials_file": PATH}`, which must be mode 0600), the `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` variables, then the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`). Both files are INI with
    /// profiles; the profile is `profile`, else `AWS_PROFILE`, else `default`. Returns the
    /// credentials and where they came from, for messages.
    public static func resolve(configuredFile: String?, profile: String?,
                               environment: [String: String]) throws(S3Error) -> (S3Credentials, source: String) {
        let name = profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        if let configuredFile {
            try checkMode(configuredFile)
            guard let c = try fromFile(configuredFile, profile: name) else {
                throw S3Error(.invalidInput, "\(configuredFile) (named in config.json's \"s3\".\"credentials_file\") has no "
                    + "profile [\(name)] with aws_access_key_id and aws_secret_access_key; add them there")
            }
            return (c, "\(configuredFile) [\(name)]")
        }
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty {
            guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw S3Error(.invalidInput, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both")
            }
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return (S3Credentials(accessKey: id, secretKey: secret, sessionToken: token), "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        let shared = environment["AWS_SHARED_CREDENTIALS_FILE"]
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.aws/credentials"
        if FileManager.default.fileExists(atPath: shared) {
            if let c = try fromFile(shared, profile: name) { return (c, "\(shared) [\(name)]") }
            throw S3Error(.invalidInput, "\(shared) has no profile [\(name)] with aws_access_key_id and "
                + "aws_secret_access_key; add it, or pick another with AWS_PROFILE")
        }
        throw S3Error(.invalidInput, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to "
            + "~/.aws/credentials under [default] (or the profile AWS_PROFILE names), or name a file of mode 0600 in "
            + "config.json: \"s3\": {\"credentials_file\": \"PATH\"}")
    }

    /// A file holding secrets must not be readable by other users.
    static func checkMode(_ path: String) throws(S3Error) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw S3Error(.notFound, "cannot read the S3 credentials file \(path) (named in config.json): "
                + "\(Errno.message(errno)); create it with mode 0600, or remove \"credentials_file\"")
        }
        if st.st_mode & 0o077 != 0 {
            throw S3Error(.insecurePermissions, "the S3 credentials file \(path) can be read by other users (mode "
                + String(st.st_mode & 0o777, radix: 8) + "); run `chmod 600 \(path)`; nothing was sent")
        }
    }

    /// The credentials of `profile` in an INI file, or nil when the profile is not there.
    static func fromFile(_ path: String, profile: String) throws(S3Error) -> S3Credentials? {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw S3Error(.io, "cannot read the S3 credentials file \(path): \(Errno.message(errno))")
        }
        let sections = parseINI(String(decoding: data, as: UTF8.self))
        guard let s = sections[profile] ?? sections["profile " + profile],
              let id = s["aws_access_key_id"], let secret = s["aws_secret_access_key"], !id.isEmpty, !secret.isEmpty
        else { return nil }
        return S3Credentials(accessKey: id, secretKey: secret, sessionToken: s["aws_session_token"])
    }

    /// `[section]` headers and `key = value` lines; `#` and `;` start comments.
    public static func parseINI(_ text: String) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        var section = ""
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                out[section, default: [:]] = out[section] ?? [:]
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            out[section, default: [:]][key] = value
        }
        return out
    }
}
