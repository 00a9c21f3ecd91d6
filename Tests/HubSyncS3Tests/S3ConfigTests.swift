import Foundation
import HubSyncS3
import HubSyncTestSupport
import Testing

/// Where credentials come from, and how `s3:` addresses are read.
@Suite struct S3ConfigTests {
    let dir = TemporaryDirectory()

    @Test func environmentCredentials() throws {
        let (c, source) = try S3Credentials.resolve(configuredFile: nil, profile: nil, environment: [
            "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK", "HOME": dir.path])
        #expect(c == S3Credentials(accessKey: "AK", secretKey: "SK", sessionToken: "TOK"))
        #expect(source == "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        #expect(throws: S3Error.self) {
            try S3Credentials.resolve(configuredFile: nil, profile: nil, environment: ["AWS_ACCESS_KEY_ID": "AK", "HOME": dir.path])
        }
    }

    @Test func sharedFileWithProfiles() throws {
        try FileManager.default.createDirectory(atPath: dir.path + "/.aws", withIntermediateDirectories: true)
        try """
            # comment
            [default]
            aws_access_key_id = DEF
            aws_secret_access_key = defsecret

            [backup]
            aws_access_key_id=BK
            aws_secret_access_key = bk/secret+with=equals
            ; another comment
            """.write(toFile: dir.path + "/.aws/credentials", atomically: true, encoding: .utf8)
        let env = ["HOME": dir.path]
        #expect(try S3Credentials.resolve(configuredFile: nil, profile: nil, environment: env).0.accessKey == "DEF")
        let (c, source) = try S3Credentials.resolve(configuredFile: nil, profile: nil, environment: env.merging(["AWS_PROFILE": "backup"]) { $1 })
        #expect(c == S3Credentials(accessKey: "BK", secretKey: "bk/secret+with=equals"))
        #expect(source.hasSuffix("[backup]"))
        let e = #expect(throws: S3Error.self) {
            try S3Credentials.resolve(configuredFile: nil, profile: "nope", environment: env)
        }
        #expect(e?.message.contains("no profile [nope]") == true)
    }

    @Test func noCredentialsSaysWhereToPutThem() {
        let e = #expect(throws: S3Error.self) {
            try S3Credentials.resolve(configuredFile: nil, profile: nil, environment: ["HOME": dir.path])
        }
        #expect(e?.message.contains("AWS_ACCESS_KEY_ID") == true)
        #expect(e?.message.contains("credentials_file") == true)
    }

    @Test func configuredFileMustBePrivate() throws {
        let path = dir.path + "/s3-credentials"
        try "[default]\naws_access_key_id = CF\naws_secret_access_key = cfsecret\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        let e = #expect(throws: S3Error.self) {
            try S3Credentials.resolve(configuredFile: path, profile: nil, environment: ["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"])
        }
        #expect(e?.code == .insecurePermissions)
        #expect(e?.message.contains("chmod 600") == true)
        chmod(path, 0o600)
        // The configured file wins over the environment.
        let (c, _) = try S3Credentials.resolve(configuredFile: path, profile: nil,
                                               environment: ["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"])
        #expect(c.accessKey == "CF")
        #expect(throws: S3Error.self) { try S3Credentials.resolve(configuredFile: dir.path + "/missing", profile: nil, environment: [:]) }
    }

    @Test func pathAndVirtualHostAddresses() throws {
        let p = try S3Endpoint(parsing: "http://127.0.0.1:8333/backups/home/hub")
        #expect(p.bucket == "backups" && p.prefix == "home/hub" && p.port == 8333 && !p.secure)
        #expect(p.addressing == .path)
        #expect(p.hostHeader == "127.0.0.1:8333")
        #expect(p.path(key: p.key("data/ab/cd")) == "/backups/home/hub/data/ab/cd")
        #expect(p.description == "s3:http://127.0.0.1:8333/backups/home/hub")

        let v = try S3Endpoint(parsing: "https://s3.eu-west-1.amazonaws.com/my-bucket")
        #expect(v.addressing == .virtualHost && v.port == 443)
        #expect(v.hostHeader == "my-bucket.s3.eu-west-1.amazonaws.com")
        #expect(v.path(key: v.key("config")) == "/config")
        #expect(v.path(key: nil) == "/")
        let forced = try S3Endpoint(parsing: "https://minio.lan:9000/b-1", addressing: .virtualHost)
        #expect(forced.hostHeader == "b-1.minio.lan:9000")
    }

    @Test(arguments: ["", "ftp://host/bucket", "http://host", "http://host/", "http://host/UPPER", "http://host/a",
                      "http://host/bucket?x=1", "http://user:pw@host/bucket", "http://host:70000/bucket", "http://host/-bad",
                      "http://host/bucket/../other", "http://host/bucket/a/./b"])
    func badAddressesAreRefused(_ text: String) {
        let e = #expect(throws: S3Error.self) { try S3Endpoint(parsing: text) }
        #expect(e?.code == .invalidInput)
    }

    @Test func aSecretTypedIntoTheAddressIsNotSaidBack() {
        let e = #expect(throws: S3Error.self) { try S3Endpoint(parsing: "http://AK:TOPSECRET123@127.0.0.1:8333/bucket/x") }
        #expect(e?.code == .invalidInput)
        #expect(e?.message.contains("TOPSECRET123") == false, "\(e?.message ?? "")")
        #expect(e?.message.contains("127.0.0.1:8333/bucket/x") == true, "\(e?.message ?? "")")
    }
}
