/// How to reach an S3 service: config.json's `"s3"` section with the environment's defaults.
public struct S3Settings: Sendable, Equatable {
    /// The signing region (default `us-east-1`; `AWS_REGION` or `AWS_DEFAULT_REGION` when set).
    public var region = "us-east-1"
    /// The profile in a credentials file (default `AWS_PROFILE`, else `default`).
    public var profile: String?
    /// A credentials file of this device (INI, mode 0600), used before the environment's.
    public var credentialsFile: String?
    /// Path-style or virtual-host addressing; nil picks by host.
    public var addressing: S3Endpoint.Addressing?
    /// The longest one request may take before it is tried again (seconds).
    public var timeoutSeconds: Double = 60
    /// How often a request is tried in all when the server fails, throttles or times out.
    public var attempts = 5
    /// How many uploads run at once.
    public var parallelUploads = 4
    /// Seconds added to this machine's clock when signing (tests inject a skew with it).
    public var clockOffset: Double = 0

    public init() {}

    /// The defaults with `AWS_REGION` / `AWS_DEFAULT_REGION` applied.
    public init(environment: [String: String]) {
        if let r = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"], !r.isEmpty { region = r }
        if let o = environment["HUBSYNC_S3_CLOCK_OFFSET_SECONDS"], let v = Double(o) { clockOffset = v }
    }
}
