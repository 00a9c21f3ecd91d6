import Foundation
import Testing
import HubSyncCrypto
import HubSyncHousehold
import HubSyncTestSupport

@Suite struct IdentityTests {
    private func mode(of url: URL) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int)
    }

    @Test func createThenLoadGivesTheSameDevice() throws {
        try withTemporaryDirectory { directory in
            #expect(!Identity.exists(in: directory))
            let created = try Identity.create(in: directory)
            #expect(Identity.exists(in: directory))
            let loaded = try Identity.load(from: directory)
            #expect(loaded.deviceID == created.deviceID)
            #expect(loaded.publicKey == created.publicKey)
            #expect(created.deviceID == DeviceID(publicKey: created.publicKey))
        }
    }

    @Test func fileIsPrivateAndInTheDocumentedFormat() throws {
        try withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("nested/data")
            let identity = try Identity.create(in: data)
            let file = Identity.keyFileURL(in: data)
            #expect(try mode(of: file) == 0o600)
            #expect(try mode(of: data) == 0o700)
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines[0] == "hubsync-identity-v1")
            #expect(String(lines[1]) == identity.signingKey.withSeedBytes { Hex.encode(Array($0)) })
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: data.path)
            #expect(leftovers == ["identity.key"])
        }
    }

    @Test func createRefusesAnExistingIdentityAndLeavesItUnchanged() throws {
        try withTemporaryDirectory { directory in
            let first = try Identity.create(in: directory)
            let file = Identity.keyFileURL(in: directory)
            let before = try Data(contentsOf: file)
            let error = #expect(throws: IdentityError.self) { try Identity.create(in: directory) }
            #expect(error?.code == .exists)
            #expect(error?.message.contains("already has an identity (device \(first.deviceID.short))") == true)
            #expect(error?.message.contains("use another --data directory") == true)
            #expect(try Data(contentsOf: file) == before)
            #expect(try Identity.load(from: directory).deviceID == first.deviceID)
        }
    }

    @Test func createRefusesEvenADanglingSymlink() throws {
        try withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let target = directory.appendingPathComponent("elsewhere")
            try FileManager.default.createSymbolicLink(
                atPath: Identity.keyFileURL(in: directory).path, withDestinationPath: target.path)
            let error = #expect(throws: IdentityError.self) { try Identity.create(in: directory) }
            #expect(error?.code == .exists)
            #expect(!FileManager.default.fileExists(atPath: target.path))
        }
    }

    @Test func loadRefusesAKeyOthersCanRead() throws {
        try withTemporaryDirectory { directory in
            _ = try Identity.create(in: directory)
            let path = Identity.keyFileURL(in: directory).path
            #expect(chmod(path, 0o644) == 0)
            let error = #expect(throws: IdentityError.self) { try Identity.load(from: directory) }
            #expect(error?.code == .insecurePermissions)
            #expect(error?.message ==
                "identity key \(path) is accessible by others (mode 0644); run `chmod 600 \(path)`")
        }
    }

    @Test func loadSaysHowToCreateAMissingIdentity() {
        withTemporaryDirectory { directory in
            let error = #expect(throws: IdentityError.self) { try Identity.load(from: directory) }
            #expect(error?.code == .missing)
            #expect(error?.message ==
                "no identity in \(directory.path); run `hubsync init --data \(directory.path)` first")
        }
    }

    @Test(arguments: [
        "", "hello\n", "hubsync-identity-v1\n", "hubsync-identity-v1\nabcd\n",
        "hubsync-identity-v2\n" + String(repeating: "ab", count: 32) + "\n",
        "hubsync-identity-v1\n" + String(repeating: "zz", count: 32) + "\n",
        "hubsync-identity-v1\n" + String(repeating: "ab", count: 32) + "\nextra\n",
    ])
    func loadRejectsMalformedFiles(contents: String) throws {
        try withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let path = Identity.keyFileURL(in: directory).path
            #expect(FileManager.default.createFile(atPath: path, contents: Data(contents.utf8),
                                                   attributes: [.posixPermissions: 0o600]))
            let error = #expect(throws: IdentityError.self) { try Identity.load(from: directory) }
            #expect(error?.code == .malformed)
            #expect(error?.message.contains(path) == true)
        }
    }

    @Test func loadAcceptsCRLFLineEnds() throws {
        try withTemporaryDirectory { directory in
            let identity = try Identity.create(in: directory)
            let seed = identity.signingKey.withSeedBytes { Hex.encode(Array($0)) }
            let path = Identity.keyFileURL(in: directory).path
            try Data("hubsync-identity-v1\r\n\(seed)\r\n".utf8).write(to: URL(fileURLWithPath: path))
            #expect(try Identity.load(from: directory).deviceID == identity.deviceID)
        }
    }
}
