import Foundation

/// Runs `produce` on a thread of its own while the calling thread consumes what it makes: an
/// import parses its file on one core while it checks or writes on the other, a backup reads
/// and chunks the store while it hashes and packs, a restore opens and decodes packs while it
/// writes.
///
/// `produce` hands items to `emit`, which gathers them into chunks of `chunk` and blocks while
/// `depth` chunks wait, so at most `depth + 2` chunks wait or are in use whatever the input's
/// size; the chunks consumed since the producer last handed one over wait for it to free them
/// (at most `depth + 1` more).
/// `consume` gets every item in order. An error `produce` throws reaches the caller only after
/// every item made before it was consumed (the first bad line of a file is still the one
/// named); an error `consume` throws stops `produce` at the next `emit` that completes a chunk.
/// Either way the producing thread has ended when this returns, with `produce`'s result.
///
/// `produce` runs on another thread than `consume` at the same time: the two must share no
/// mutable state (the caller's promise; the closures need not be `Sendable`).
public enum ReadAhead {
    struct Stopped: Error {}

    public static func run<T: Sendable, R>(chunk: Int = 256, depth: Int = 4,
                                           produce: (_ emit: (T) throws -> Void) throws -> R,
                                           consume: (T) throws -> Void) throws -> R {
        let pipe = Pipe<T>(depth: depth)
        let result = Unchecked<R?>(nil)
        return try withoutActuallyEscaping(produce) { produce in
            // The thread outlives this call by a moment: it holds the closure only through `work`,
            // emptied before this returns.
            let work = Unchecked<(((T) throws -> Void) throws -> R)?>(produce)
            let thread = Thread {
                var pending: [T] = []
                pending.reserveCapacity(chunk)
                let emit = { (item: T) throws in
                    pending.append(item)
                    if pending.count >= chunk {
                        guard pipe.put(pending) else { throw Stopped() }
                        pending.removeAll(keepingCapacity: true)
                    }
                }
                // The closure is let go before the consumer hears the end (`finish`).
                let outcome = Result { () throws -> R in
                    guard let produce = work.value else { throw Stopped() }
                    return try produce(emit)
                }
                switch outcome {
                case .success(let value):
                    result.value = value
                    if !pending.isEmpty { _ = pipe.put(pending) }
                    pipe.finish(nil)
                case .failure(let error):
                    // What was made before the error still goes first.
                    if !pending.isEmpty, !(error is Stopped) { _ = pipe.put(pending) }
                    pipe.finish(error)
                }
            }
            thread.name = "hubsync.read-ahead"
            thread.start()
            defer {
                pipe.stopAndWait()
                work.value = nil
            }
            while let items = try pipe.take() {
                for item in items { try consume(item) }
                pipe.giveBack(items)
            }
            pipe.stopAndWait()
            guard let value = result.value else { throw Stopped() }
            return value
        }
    }

    /// A value handed between the two threads, whose use the caller keeps apart.
    final class Unchecked<V>: @unchecked Sendable {
        var value: V
        init(_ value: V) { self.value = value }
    }

    /// The chunks between the two threads, and how each side learns the other is done.
    final class Pipe<T: Sendable>: @unchecked Sendable {
        private let condition = NSCondition()
        private var chunks: [[T]] = []
        private var head = 0
        private var finished = false
        private var failure: (any Error)?
        private var stopped = false
        private let depth: Int

        init(depth: Int) { self.depth = max(1, depth) }

        /// Chunks the consumer is done with, freed by the producer (``put(_:)``).
        private var spent: [[T]] = []

        /// Waits for room; false when the consumer has stopped. Frees the chunks the consumer
        /// gave back, here on the producing thread, which made them: freed on the consuming
        /// thread, each item's memory went back to the producer's malloc arena under its lock,
        /// and the consumer (an import's writer, the thread every other waits for) often
        /// waited for that lock while the producer allocated.
        func put(_ chunk: [T]) -> Bool {
            var done: [[T]] = []
            condition.lock()
            defer {
                condition.unlock()
                done.removeAll()
            }
            while chunks.count - head >= depth, !stopped { condition.wait() }
            guard !stopped else { return false }
            chunks.append(chunk)
            swap(&done, &spent)
            condition.broadcast()
            return true
        }

        /// A chunk the consumer has consumed, for the producer to free.
        func giveBack(_ chunk: [T]) {
            condition.lock()
            defer { condition.unlock() }
            if !stopped { spent.append(chunk) }
        }

        /// The producer is done, with the error it ended on, if any.
        func finish(_ error: (any Error)?) {
            condition.lock()
            defer { condition.unlock() }
            finished = true
            failure = error
            condition.broadcast()
        }

        /// The next chunk; nil when the producer ended without an error, its error when it failed.
        func take() throws -> [T]? {
            condition.lock()
            defer { condition.unlock() }
            while head == chunks.count, !finished { condition.wait() }
            if head < chunks.count {
                let next = chunks[head]
                chunks[head] = []
                head += 1
                if head > 64 { chunks.removeFirst(head); head = 0 }
                condition.broadcast()
                return next
            }
            if let failure, !(failure is Stopped) { throw failure }
            return nil
        }

        /// Tells the producer to stop and waits until it has finished.
        func stopAndWait() {
            condition.lock()
            defer { condition.unlock() }
            stopped = true
            condition.broadcast()
            while !finished { condition.wait() }
        }
    }
}
