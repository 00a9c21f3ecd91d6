@_exported import HubSyncTestSupport

// `hubsyncPath`, `RunResult`, `runProgram`, `must`, `ChildProcess`, `SpawnedAgent` and `waitUntil`
// come from HubSyncTestSupport, re-exported here to every file of this target.
