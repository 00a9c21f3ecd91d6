public import HubSyncBase

/// Why an S3 request failed: a code to match on, a message for a person, and what the server
/// said (its HTTP status and S3 error code, such as `NoSuchBucket`), when it said anything.
public struct S3Error: CodedError, Sendable {
    public var fields: CodedErrorFields
    /// The HTTP status, 0 when no answer came.
    public var status = 0
    /// The S3 error code from the answer's XML body (`SignatureDoesNotMatch`), or "".
    public var serverCode = ""
    public init(fields: CodedErrorFields) { self.fields = fields }

    init(_ code: ErrorCode, _ message: String, status: Int, serverCode: String) {
        self.init(code, message)
        self.status = status
        self.serverCode = serverCode
    }
}
