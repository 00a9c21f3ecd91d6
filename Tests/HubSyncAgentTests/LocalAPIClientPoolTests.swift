@testable import HubSyncAgent
import Testing

/// The API client never reuses a connection the agent may be closing: it drops idle
/// connections well before the server closes them (a request sent on one the server has just
/// closed fails with a reset, which a loaded CI run showed as "the connection failed").
@Suite struct LocalAPIClientPoolTests {
    @Test func theClientDropsIdleConnectionsBeforeTheServerDoes() {
        #expect(LocalAPIClient.poolIdleSeconds * 3 <= Int64(LocalAPIServer.idleSeconds))
    }
}
