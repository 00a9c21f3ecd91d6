import Foundation
import Synchronization
import Testing
@testable import HubSyncCrypto

@Suite struct SecureBytesTests {
    @Test func equalityComparesContents() {
        let a = SecureBytes(copying: [1, 2, 3, 4] as [UInt8])
        #expect(a == SecureBytes(copying: [1, 2, 3, 4] as [UInt8]))
        #expect(a != SecureBytes(copying: [1, 2, 3, 5] as [UInt8]))
        #expect(a != SecureBytes(copying: [1, 2, 3] as [UInt8]))
        #expect(SecureBytes(count: 0) == SecureBytes(copying: [UInt8]()))
    }

    @Test func randomBytesHaveTheCountAndDiffer() {
        let a = SecureBytes(count: 32)
        #expect(a.count == 32)
        #expect(a != SecureBytes(count: 32))
    }

    @Test func copyingKeepsTheBytes() {
        let source: [UInt8] = Array(0..<100)
        let secure = SecureBytes(copying: source[10..<20])
        #expect(secure.withUnsafeBytes { Array($0) } == Array(10..<20))
    }

    @Test func descriptionHidesTheBytes() {
        #expect("\(SecureBytes(copying: [0xAB] as [UInt8]))" == "SecureBytes(1 bytes)")
        #expect("\(SymmetricKey.random())" == "SymmetricKey(32 bytes)")
    }

    @Test func symmetricKey() {
        let key = SymmetricKey.random()
        #expect(key.byteCount == 32)
        #expect(SymmetricKey.random(byteCount: 16).byteCount == 16)
        #expect(SymmetricKey(copying: key.withUnsafeBytes { Array($0) }) == key)
        #expect(SymmetricKey.random() != key)
    }
}

/// Keys in locked, zeroed memory (issue 10): the arena behind ``SecureBytes``.
/// Serialized: it installs the arena's process-wide test hooks.
@Suite(.serialized) struct SecureArenaTests {
    /// The bytes of a released secret are zero before its slot can be handed out again.
    @Test func releasedBytesAreZeroed() throws {
        let seen = Mutex<[(UInt, Bool)]>([])
        SecureArena.shared.observeReleases { buffer in
            let zero = buffer.allSatisfy { $0 == 0 }
            seen.withLock { $0.append((UInt(bitPattern: buffer.baseAddress!), zero)) }
        }
        defer { SecureArena.shared.observeReleases(nil) }
        for count in [1, 32, 64, 100, 4096, 20_000] {
            var address: UInt = 0
            do {
                let secret = SecureBytes(uninitializedCount: count) { $0.initializeMemory(as: UInt8.self, repeating: 0xA5) }
                address = secret.withUnsafeBytes { UInt(bitPattern: $0.baseAddress!) }
                #expect(secret.withUnsafeBytes { $0.allSatisfy { $0 == 0xA5 } })
            }
            // The first release at that address after ours is ours: nobody else held the slot.
            let ours = try #require(seen.withLock { $0.first { $0.0 == address } }, "no release seen for \(count) bytes")
            #expect(ours.1, "the \(count) bytes were not zeroed on release")
        }
    }

    /// Copies share one buffer: it is released (and zeroed) only when the last copy goes.
    @Test func theLastCopyReleases() {
        let released = Mutex<[UInt]>([])
        SecureArena.shared.observeReleases { buffer in released.withLock { $0.append(UInt(bitPattern: buffer.baseAddress!)) } }
        defer { SecureArena.shared.observeReleases(nil) }
        var first: SecureBytes? = SecureBytes(count: 32)
        let address = first!.withUnsafeBytes { UInt(bitPattern: $0.baseAddress!) }
        var copy: SecureBytes? = first
        first = nil
        #expect(!released.withLock { $0.contains(address) })
        #expect(copy!.count == 32)
        copy = nil
        #expect(released.withLock { $0.contains(address) })
    }

    /// A key's bytes are in a mapping the system has locked (its `Locked:` size in
    /// /proc/self/smaps is not zero), and that mapping is left out of core dumps (`dd` flag).
    @Test func keysAreInLockedMemory() throws {
        let key = SecureBytes(count: 32)
        let address = key.withUnsafeBytes { UInt(bitPattern: $0.baseAddress!) }
        // /proc files report size 0: read to the end rather than by size.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        let smaps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        var inside = false
        var locked: Int?
        var flags: [Substring] = []
        for line in smaps {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = words.first, range.contains("-"), !range.hasSuffix(":") {
                let ends = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = ends.count == 2 && ends[0] <= address && address < ends[1]
            } else if inside, words.first == "Locked:" {
                locked = Int(words[1])
            } else if inside, words.first == "VmFlags:" {
                flags = Array(words.dropFirst())
            }
        }
        let kilobytes = try #require(locked, "no mapping holds the key's address")
        #expect(kilobytes > 0)
        #expect(flags.contains("dd"), "flags \(flags)")
        withExtendedLifetime(key) {}
    }

    /// Keys come from a pool: making and dropping 20,000 (as 20,000 handshakes do) takes at most
    /// a chunk more of locked memory, not a sodium_malloc each.
    @Test func slotsAreReused() {
        let before = SecureMemory.status
        for _ in 0..<20_000 {
            let key = SymmetricKey.random()
            let stream = SecretStreamSender(key: key)
            _ = stream
        }
        let after = SecureMemory.status
        let grown = (after.lockedBytes + after.unlockedBytes) - (before.lockedBytes + before.unlockedBytes)
        #expect(grown <= 2 * SecureArena.chunkByteCount, "the pool grew by \(grown) bytes")
    }

    /// A refusal to lock is reported once, with what to do, however often it happens.
    @Test func aLockFailureIsReportedOnce() {
        let reports = Mutex<[String]>([])
        SecureMemory.onLockFailure { reason in reports.withLock { $0.append(reason) } }
        SecureArena.shared.simulateLockFailure("simulated: RLIMIT_MEMLOCK is 64 KiB; raise the limit")
        SecureArena.shared.simulateLockFailure("simulated again")
        _ = SecureBytes(count: 32)
        let seen = reports.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.contains("raise the limit") == true, "\(seen)")
    }
}

/// The bytes leave only through scoped access: no description, reflection or conversion shows them.
@Suite struct SecureBytesExposureTests {
    @Test func noConversionOrReflectionShowsTheBytes() {
        let bytes: [UInt8] = Array(repeating: 0xC3, count: 16)
        let secret = SecureBytes(copying: bytes)
        let key = SymmetricKey(copying: bytes)
        for value in [secret as Any, key as Any] {
            var dumped = ""
            dump(value, to: &dumped)
            let texts = [dumped, String(describing: value), String(reflecting: value)]
            for text in texts {
                #expect(!text.lowercased().contains("c3c3"), "\(text)")
                #expect(!text.contains("195"), "\(text)")
            }
            #expect(Mirror(reflecting: value).children.count == 1)
            #expect((value as? any Sequence) == nil)
            #expect((value as? any Encodable) == nil)
            #expect((value as? any DataProtocol) == nil)
        }
        // The one way in: a scoped, read-only view.
        #expect(secret.withUnsafeBytes { Array($0) } == bytes)
        #expect(key.withUnsafeBytes { Array($0) } == bytes)
    }
}

@Suite struct HexTests {
    @Test func roundTrip() {
        let bytes: [UInt8] = [0x00, 0x0f, 0xa5, 0xff]
        #expect(Hex.encode(bytes) == "000fa5ff")
        #expect(Hex.decode("000FA5ff") == bytes)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("") == [])
    }
}
