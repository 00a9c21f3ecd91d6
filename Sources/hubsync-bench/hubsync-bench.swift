// hubsync-bench: the benchmark tool — store, sync, pairing, discovery and backup figures
// against the goals, driving real agents and the hubsync CLI.
//
// A client of the libraries like hubsync: it may import any library module, and nothing imports
// it. It must not import GRDB or NIO directly.
