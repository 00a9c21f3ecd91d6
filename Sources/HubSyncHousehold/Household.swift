public import HubSyncBase
public import HubSyncCrypto
import Synchronization

/// The household of one data directory: its secrets, membership statements, key epochs and
/// grants, and the only writer of their files in this process.
///
/// Open it only while holding the directory's writer lock (the agent, or a command without an
/// agent; see `WriterLock`): opening migrates a directory in the layout before one household.
/// Every change is saved before it is published: ``current`` answers the latest state at once,
/// ``updates()`` delivers it to followers, so nobody re-reads the files.
public actor Household {
    /// The data directory whose household this is.
    public nonisolated let directory: DataDirectory
    /// This device: it signs the statements and grants the household issues.
    public nonisolated let identity: Identity
    /// The latest snapshot and the followers of updates.
    private nonisolated let published: Mutex<Published>
    /// Runs the actor's work off the cooperative pool (it writes and syncs files).
    private nonisolated let executor = HouseholdExecutor()

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    struct Published {
        var snapshot: HouseholdSnapshot
        var followers: [Int: AsyncStream<HouseholdSnapshot>.Continuation] = [:]
        var nextFollower = 0
    }

    /// Opens the household of `directory` for `identity`, migrating an old layout on disk.
    public init(directory: DataDirectory, identity: Identity) throws(HouseholdError) {
        let contents = try HouseholdFile.migrate(try HouseholdFile.read(in: directory), in: directory)
        self.directory = directory
        self.identity = identity
        published = Mutex(Published(snapshot: HouseholdSnapshot(contents: contents, revision: 0)))
    }

    deinit {
        published.withLock { p in for f in p.followers.values { f.finish() } }
    }

    /// The household now.
    public nonisolated var current: HouseholdSnapshot { published.withLock { $0.snapshot } }

    /// The household now, then after every change; a follower that falls behind gets the
    /// latest state (earlier ones are skipped, never needed: each holds everything).
    public nonisolated func updates() -> AsyncStream<HouseholdSnapshot> {
        let (stream, continuation) = AsyncStream.makeStream(of: HouseholdSnapshot.self, bufferingPolicy: .bufferingNewest(1))
        let id = published.withLock { p -> Int in
            let id = p.nextFollower
            p.nextFollower += 1
            p.followers[id] = continuation
            continuation.yield(p.snapshot)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.published.withLock { _ = $0.followers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Saves what changed and publishes the new state.
    func commit(secrets: HouseholdSecrets?, statements: [MembershipStatement]?,
                replacingSecrets: Bool = true) throws(HouseholdError) {
        if let statements { try HouseholdFile.writeStatements(statements, in: directory) }
        if let secrets { try HouseholdFile.writeSecrets(secrets, in: directory, replacing: replacingSecrets) }
        published.withLock { p in
            let before = p.snapshot
            let kept = statements ?? before.membership?.sortedStatements ?? []
            let next = HouseholdSnapshot(
                contents: HouseholdFile.Contents(secrets: secrets ?? before.secrets, statements: kept, isLegacy: false),
                revision: before.revision + 1)
            p.snapshot = next
            for f in p.followers.values { f.yield(next) }
        }
    }
}
