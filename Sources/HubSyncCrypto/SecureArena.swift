@preconcurrency internal import CHubSodium
#if canImport(Glibc)
internal import Glibc
#endif
import Synchronization

/// A process-wide pool of locked, guarded memory for secret bytes (keys, seeds, stream states).
///
/// `sodium_malloc` gives memory between guard pages, locked (kept out of swap) and left out of
/// core dumps, but it maps pages of its own for every allocation and cost 250–840 µs each here
/// under load: enough to starve the cooperative pool when every handshake makes a few keys. So
/// the arena takes 64 KiB chunks from `sodium_malloc` now and then and hands out slots of a power
/// of two (16 bytes to 8 KiB) from them; a released slot is zeroed at once and kept for the next
/// secret of its size. Secrets larger than 8 KiB (rare: files read whole) get an allocation of
/// their own, freed with `sodium_free`.
///
/// Locking can fail: `RLIMIT_MEMLOCK` may be small, and libsodium ignores a refused `mlock`. The
/// arena locks each chunk itself and checks; a chunk the system will not lock is used anyway (its
/// slots are still zeroed on release and left out of core dumps), and the first such refusal is
/// reported once through ``SecureMemory/onLockFailure(_:)``.
///
/// Pages are not made inaccessible between uses (`sodium_mprotect_noaccess`): slots of many keys
/// share a page, so that would cost two system calls on every use of any key.
final class SecureArena: Sendable {
    /// The one arena of the process.
    static let shared = SecureArena()

    /// The smallest slot, and the alignment of every slot.
    static let minimumSlot = 16
    /// The largest slot; larger secrets get an allocation of their own.
    static let maximumSlot = 8192
    /// Bytes taken from `sodium_malloc` at a time: a multiple of the page size, so a chunk starts
    /// on a page boundary.
    static let chunkByteCount = 64 * 1024

    /// A slot handed out: where its bytes are and how many it spans.
    struct Slot: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        let capacity: Int
    }

    private struct State {
        /// Free slots by size class (the index of its power of two above ``minimumSlot``).
        var free: [[UnsafeMutableRawPointer]] = Array(repeating: [], count: SecureArena.classCount)
        /// What the arena holds, for ``SecureMemory/status``.
        var status = SecureMemory.Status()
        /// Called once, with the reason, when the system first refuses to lock a chunk.
        var lockFailureReport: (@Sendable (String) -> Void)?
        /// The reason of the first refusal, once there has been one.
        var lockFailure: String?
        var lockFailureReported = false
        /// Test hook: sees each released slot after it has been zeroed, before it is reused.
        var releaseObserver: (@Sendable (UnsafeRawBufferPointer) -> Void)?
    }

    /// The free lists and figures; the raw pointers inside are reached only under the mutex.
    private let state = Mutex(State())

    static let classCount = Int((maximumSlot / minimumSlot).trailingZeroBitCount) + 1

    /// The size class of `count` bytes: the smallest power of two ≥ count, from ``minimumSlot``.
    static func sizeClass(of count: Int) -> Int {
        let size = max(count, minimumSlot)
        let rounded = size <= 1 ? 1 : 1 << (Int.bitWidth - (size - 1).leadingZeroBitCount)
        return (rounded / minimumSlot).trailingZeroBitCount
    }

    /// A zeroed slot of at least `count` bytes.
    func allocate(_ count: Int) -> Slot {
        Sodium.ensureInitialized()
        guard count <= Self.maximumSlot else { return allocateAlone(count) }
        let sizeClass = Self.sizeClass(of: count)
        let slotSize = Self.minimumSlot << sizeClass
        let (slot, report) = state.withLock { state -> (Slot, (@Sendable (String) -> Void, String)?) in
            if state.free[sizeClass].isEmpty {
                guard let chunk = sodium_malloc(Self.chunkByteCount) else {
                    fatalError("out of memory for keys: sodium_malloc(\(Self.chunkByteCount)) failed")
                }
                let locked = sodium_mlock(chunk, Self.chunkByteCount) == 0
                let lockErrno = errno
                sodium_memzero(chunk, Self.chunkByteCount)
                state.free[sizeClass] = stride(from: Self.chunkByteCount - slotSize, through: 0, by: -slotSize)
                    .map { chunk + $0 }
                if locked { state.status.lockedBytes += Self.chunkByteCount } else {
                    state.status.unlockedBytes += Self.chunkByteCount
                    if state.lockFailure == nil { state.lockFailure = Self.lockFailureText(errno: lockErrno) }
                }
            }
            state.status.slotsInUse += 1
            let slot = Slot(base: state.free[sizeClass].removeLast(), capacity: slotSize)
            return (slot, Self.takeReport(&state))
        }
        if let (report, text) = report { report(text) }
        return slot
    }

    /// Zeroes `slot` and keeps it for the next secret of its size (or frees a large one).
    func release(_ slot: Slot) {
        sodium_memzero(slot.base, slot.capacity)
        guard slot.capacity <= Self.maximumSlot else {
            state.withLock { state in
                state.releaseObserver?(UnsafeRawBufferPointer(start: slot.base, count: slot.capacity))
                state.status.slotsInUse -= 1
                state.status.separateBytes -= slot.capacity
            }
            // sodium_free zeroes the allocation again and unlocks it.
            sodium_free(slot.base)
            return
        }
        state.withLock { state in
            state.releaseObserver?(UnsafeRawBufferPointer(start: slot.base, count: slot.capacity))
            state.status.slotsInUse -= 1
            state.free[Self.sizeClass(of: slot.capacity)].append(slot.base)
        }
    }

    /// A secret larger than any slot: guarded pages of its own.
    private func allocateAlone(_ count: Int) -> Slot {
        guard let pointer = sodium_malloc(count) else {
            fatalError("out of memory for keys: sodium_malloc(\(count)) failed")
        }
        let locked = sodium_mlock(pointer, count) == 0
        let lockErrno = errno
        sodium_memzero(pointer, count)
        let report = state.withLock { state -> (@Sendable (String) -> Void, String)? in
            state.status.slotsInUse += 1
            state.status.separateBytes += count
            if !locked, state.lockFailure == nil { state.lockFailure = Self.lockFailureText(errno: lockErrno) }
            return Self.takeReport(&state)
        }
        if let (report, text) = report { report(text) }
        return Slot(base: pointer, capacity: count)
    }

    /// The report to make now, at most once per process.
    private static func takeReport(_ state: inout State) -> (@Sendable (String) -> Void, String)? {
        guard let failure = state.lockFailure, let report = state.lockFailureReport, !state.lockFailureReported else {
            return nil
        }
        state.lockFailureReported = true
        return (report, failure)
    }

    private static func lockFailureText(errno code: Int32) -> String {
        var limit = rlimit()
        let known = getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0
        let limitText = !known ? "unknown" : limit.rlim_cur == rlim_t.max ? "unlimited" : "\(limit.rlim_cur / 1024) KiB"
        return "the system refused to lock memory for keys (\(String(cString: strerror(code))); RLIMIT_MEMLOCK is "
            + "\(limitText)): keys are still zeroed after use and left out of core dumps, but may be written to swap; "
            + "raise the limit (LimitMEMLOCK= in the systemd unit, or `ulimit -l`) to keep them in locked memory"
    }

    /// Installs the lock-failure report; see ``SecureMemory/onLockFailure(_:)``.
    func onLockFailure(_ report: @escaping @Sendable (String) -> Void) {
        let now = state.withLock { state -> (@Sendable (String) -> Void, String)? in
            state.lockFailureReport = report
            return Self.takeReport(&state)
        }
        if let (report, text) = now { report(text) }
    }

    var status: SecureMemory.Status { state.withLock { $0.status } }

    /// Test hook: `observer` sees every released slot after zeroing (nil removes it).
    func observeReleases(_ observer: (@Sendable (UnsafeRawBufferPointer) -> Void)?) {
        state.withLock { $0.releaseObserver = observer }
    }

    /// Test hook: behaves as if the system had refused to lock a chunk.
    func simulateLockFailure(_ reason: String) {
        let report = state.withLock { state -> (@Sendable (String) -> Void, String)? in
            if state.lockFailure == nil { state.lockFailure = reason }
            return Self.takeReport(&state)
        }
        if let (report, text) = report { report(text) }
    }
}

/// Where this process keeps its secret bytes (``SecureBytes``, stream states): the public face of
/// the locked-memory pool.
public enum SecureMemory {
    /// How much memory the pool holds, and how much of it is locked.
    public struct Status: Sendable, Equatable {
        /// Bytes of pooled chunks the system locked.
        public var lockedBytes = 0
        /// Bytes of pooled chunks the system would not lock (still zeroed on release).
        public var unlockedBytes = 0
        /// Bytes of secrets too large for a slot, each in guarded pages of its own.
        public var separateBytes = 0
        /// Secrets held now.
        public var slotsInUse = 0
    }

    /// The pool's current figures.
    public static var status: Status { SecureArena.shared.status }

    /// Calls `report` once per process with a message for the log the first time the system
    /// refuses to lock memory for keys (at once if that has already happened). Keys still work
    /// then, in ordinary memory that is zeroed after use.
    public static func onLockFailure(_ report: @escaping @Sendable (String) -> Void) {
        SecureArena.shared.onLockFailure(report)
    }
}
