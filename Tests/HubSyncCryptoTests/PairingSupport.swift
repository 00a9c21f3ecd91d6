import Foundation
@testable import HubSyncCrypto

/// Helpers shared by the pairing and membership tests.
enum PairingFixture {
    /// A fixed code for tests: `TEST-1234-5678`.
    static func code(_ secret: String = "12345678", name: String = "TEST") -> InviteCode {
        InviteCode(name: name, secret: SecureBytes(copying: Array(secret.utf8)))
    }

    /// A one-member group founded by `founder`.
    static func group(founder: SigningKey) -> (secrets: HouseholdSecrets, genesis: MembershipStatement) {
        let genesis = MembershipStatement.genesis(founder: founder, time: 1)
        return (HouseholdSecrets.found(groupID: genesis.groupID), genesis)
    }

    /// Runs a whole exchange between two state machines; the closures may alter each message.
    struct Run {
        var joinerError: PairingError?
        var inviterError: PairingError?
        var joined: PairingJoinResult?
        var confirmedJoiner: PublicSigningKey?
    }

    static func run(
        joiner: inout PairingJoiner, inviter: inout PairingInviter, founder: SigningKey,
        alter: (Int, inout [UInt8]) -> Void = { _, _ in }
    ) -> Run {
        var run = Run()
        var m1 = joiner.start()
        alter(1, &m1)
        var m2: [UInt8]
        do { m2 = try inviter.receive(m1) } catch { run.inviterError = error; return run }
        alter(2, &m2)
        var m3: [UInt8]
        do { m3 = try joiner.receive(m2) } catch {
            run.joinerError = error
            if run.joinerError?.code == .wrongCode {
                do { _ = try inviter.receiveConfirmation(PairingJoiner.abortMessage) } catch {
                    run.inviterError = error
                }
            }
            return run
        }
        alter(3, &m3)
        let joinerKey: PublicSigningKey
        do { joinerKey = try inviter.receiveConfirmation(m3).joinerKey } catch {
            run.inviterError = error
            return run
        }
        run.confirmedJoiner = joinerKey
        let (secrets, genesis) = group(founder: founder)
        let add = MembershipStatement.add(joinerKey, by: founder, credential: genesis, time: 2)
        var m4 = inviter.sealGroup(secrets: secrets, statements: [genesis, add])
        alter(4, &m4)
        do { run.joined = try joiner.receiveGroup(m4) } catch { run.joinerError = error }
        return run
    }

    /// The repository root: the nearest directory above this file that holds Package.swift.
    static let repositoryRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        fatalError("no Package.swift above \(#filePath)")
    }()

    /// protocol/vectors/pairing.json.
    static func vectors() throws -> [String: Any] {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("protocol/vectors/pairing.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}
