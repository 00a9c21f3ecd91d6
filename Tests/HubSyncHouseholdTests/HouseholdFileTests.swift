import Foundation
import Testing
import HubSyncBase
import HubSyncCrypto
import HubSyncHousehold
import HubSyncTestSupport

/// `household.key` and `membership.statements`: the round trip, and data directories in the
/// layout before one household (`pairing-group.key` beside a version 1 `household.key`).
@Suite struct HouseholdFileTests {
    /// Writes the old layout: pairing's 104-byte secrets, a version 1 household file (epoch from 1).
    func writeLegacy(_ device: TestDevice, pairing: HouseholdSecrets?, household: HouseholdSecrets?,
                     statements: [MembershipStatement]) throws {
        let dir = device.directory
        if let pairing {
            try dir.writeAtomically(pairing.encoded().withUnsafeBytes { Array($0) }, to: DataDirectory.legacyGroupSecretsFile)
        }
        if let h = household {
            let text = "hubsync-household-v1\ngroup_id \(h.groupIDHex)\ngroup_key \(h.groupKey.hex)\n"
                + "epoch \(h.backupEpoch)\nrecovery_public_key \(Hex.encode(h.recoveryPublicKey))\n"
            try dir.writeAtomically(Array(text.utf8), to: DataDirectory.householdFile)
        }
        try dir.writeAtomically(statements.flatMap { $0.encoded() }, to: DataDirectory.statementsFile, mode: 0o644)
    }

    @Test func secretsRoundTripThroughTheFileAndStayPrivate() throws {
        let device = TestDevice()
        let secrets = HouseholdSecrets(groupID: [UInt8](repeating: 7, count: 32), groupKey: .random(), epoch: 5,
                                       recoveryPublicKey: RecoveryKey.generate().keyPair.publicKey)
        try HouseholdFile.writeSecrets(secrets, in: device.directory, replacing: false)
        #expect(device.mode(of: DataDirectory.householdFile) == 0o600)
        #expect(try HouseholdSnapshot.read(in: device.directory).secrets == secrets)
        #expect(throws: HouseholdError.self) { try HouseholdFile.writeSecrets(secrets, in: device.directory, replacing: false) }
        var rotated = secrets.rotate()
        rotated.epoch = UInt64(UInt32.max) + 2 // wider than backups' u32 epoch; they clamp
        try HouseholdFile.writeSecrets(rotated, in: device.directory, replacing: true)
        #expect(try HouseholdSnapshot.read(in: device.directory).secrets == rotated)
        #expect(rotated.backupEpoch == .max)
        chmod(device.directory.file(DataDirectory.householdFile), 0o644)
        #expect(throws: HouseholdError.self) { try HouseholdSnapshot.read(in: device.directory) }
    }

    @Test func anOldDirectoryOpensAndKeepsItsHousehold() async throws {
        let device = TestDevice()
        let genesis = MembershipStatement.genesis(founder: device.identity.signingKey, time: 1)
        let member = SigningKey.generate()
        let add = MembershipStatement.add(member.publicKey, by: device.identity.signingKey, credential: genesis, time: 2)
        let recovery = RecoveryKey.generate().keyPair.publicKey
        // Pairing's copy had no recovery key; the household file (its mirror) had one.
        let pairing = HouseholdSecrets(groupID: genesis.groupID, groupKey: .random(), epoch: 3)
        var mirror = pairing
        mirror.recoveryPublicKey = recovery
        try writeLegacy(device, pairing: pairing, household: mirror, statements: [genesis, add])

        // A reader sees the household as it will be, and writes nothing.
        let read = try HouseholdSnapshot.read(in: device.directory)
        #expect(read.secrets == mirror && device.has(DataDirectory.legacyGroupSecretsFile))

        let household = try device.open()
        let now = household.current
        #expect(now.secrets == mirror, "group ID, key, epoch and recovery key kept")
        #expect(now.membership?.members.count == 2 && now.isFounded)
        #expect(!device.has(DataDirectory.legacyGroupSecretsFile), "pairing's copy is gone")
        let text = String(decoding: device.directory.contents(of: DataDirectory.householdFile) ?? [], as: UTF8.self)
        #expect(text.hasPrefix("hubsync-household-v2\n") && text.contains("\nepoch 3\n"))
        #expect(device.mode(of: DataDirectory.householdFile) == 0o600)
        // Backups keep opening: their epoch is the old household file's.
        #expect(now.secrets?.backupEpoch == 4)
        #expect(try device.open().current.secrets == mirror, "opens again the same")
    }

    @Test func anOldDirectoryWithOnlyPairingsFileMigrates() throws {
        let device = TestDevice()
        let genesis = MembershipStatement.genesis(founder: device.identity.signingKey, time: 1)
        let pairing = HouseholdSecrets(groupID: genesis.groupID, groupKey: .random(), epoch: 0)
        try writeLegacy(device, pairing: pairing, household: nil, statements: [genesis])
        let now = try device.open().current
        #expect(now.secrets == pairing && now.isFounded && now.secrets?.hasRecoveryKey == false)
        #expect(!device.has(DataDirectory.legacyGroupSecretsFile) && device.has(DataDirectory.householdFile))
    }

    @Test func anOldHouseholdFileFromBeforePairingMigratesAndIsFoundedOnDemand() async throws {
        let device = TestDevice()
        let recovery = RecoveryKey.generate().keyPair.publicKey
        let old = HouseholdSecrets(groupID: [UInt8](repeating: 9, count: 16), groupKey: .random(), epoch: 0,
                                   recoveryPublicKey: recovery)
        try writeLegacy(device, pairing: nil, household: old, statements: [])
        let household = try device.open()
        #expect(household.current.secrets == old && !household.current.isFounded)
        #expect(try HouseholdFile.secretsForBackup(in: device.directory) == old, "backups open as before")
        let state = try await household.foundIfNeeded(time: 5)
        let founded = try #require(household.current.secrets)
        #expect(state.groupID.count == 32 && founded.groupID == state.groupID)
        #expect(founded.groupKey == old.groupKey && founded.recoveryPublicKey == recovery && founded.epoch == 0)
    }

    @Test func damagedFilesAreRefusedWithAReason() throws {
        let device = TestDevice()
        try device.directory.writeAtomically(Array("hubsync-household-v2\ngroup_id 00\n".utf8), to: DataDirectory.householdFile)
        #expect(throws: HouseholdError.self) { try device.open() }
        try device.directory.writeAtomically([1, 2, 3], to: DataDirectory.statementsFile)
        let error = #expect(throws: HouseholdError.self) { try HouseholdSnapshot.read(in: device.directory) }
        #expect(error?.message.contains(DataDirectory.statementsFile) == true)
    }
}
