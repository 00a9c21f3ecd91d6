import Dispatch

/// Where the household's work runs: a serial dispatch queue of its own, so that its file reads,
/// writes and fsyncs never hold one of the cooperative pool's threads.
final class HouseholdExecutor: SerialExecutor {
    private let queue = DispatchQueue(label: "hubsync.household")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
