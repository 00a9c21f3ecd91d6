import Foundation
import HubSyncS3
import Testing

/// The signer against AWS's published Signature Version 4 test suite ("aws-sig-v4-test-suite",
/// https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html; the same cases ship
/// with awslabs/aws-c-auth as tests/aws-signing-test-suite/v4/<name>/). Each case gives a request
/// (request.txt), its canonical request (creq), string to sign (sts) and the Authorization
/// header (authz), all with the suite's example credentials AKIDEXAMPLE /
/// wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, at 20150830T123600Z in us-east-1 for the
/// service "service".
@Suite struct SigV4Tests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var method: String
        var path: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var payloadHash: String
        var canonicalRequest: String
        var stringToSign: String
        var signedHeaders: String
        var signature: String
        var testDescription: String { name }
    }

    static let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let host = ("Host", "example.amazonaws.com")
    static let date = ("X-Amz-Date", "20150830T123600Z")
    static let scope = "20150830/us-east-1/service/aws4_request"

    static let cases: [Case] = [
        Case(name: "get-vanilla", method: "GET", path: "/", query: [], headers: [host, date], payloadHash: empty,
             canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
             signedHeaders: "host;x-amz-date",
             signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Case(name: "get-vanilla-query-order-key-case", method: "GET", path: "/",
             query: [("Param2", "value2"), ("Param1", "value1")], headers: [host, date], payloadHash: empty,
             canonicalRequest: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\n816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
             signedHeaders: "host;x-amz-date",
             signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Case(name: "get-vanilla-utf8-query", method: "GET", path: "/", query: [("ሴ", "bar")], headers: [host, date],
             payloadHash: empty,
             canonicalRequest: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\neb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
             signedHeaders: "host;x-amz-date",
             signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        Case(name: "get-header-key-duplicate", method: "GET", path: "/", query: [],
             headers: [host, ("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1"), date],
             payloadHash: empty,
             canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\ndc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
             signedHeaders: "host;my-header1;x-amz-date",
             signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        Case(name: "get-header-value-order", method: "GET", path: "/", query: [],
             headers: [host, ("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"),
                       ("My-Header1", "value2"), date],
             payloadHash: empty,
             canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\n31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
             signedHeaders: "host;my-header1;x-amz-date",
             signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
        Case(name: "get-header-value-trim", method: "GET", path: "/", query: [],
             headers: [host, ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""), date], payloadHash: empty,
             canonicalRequest: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\na726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
             signedHeaders: "host;my-header1;my-header2;x-amz-date",
             signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        Case(name: "get-unreserved", method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
             query: [], headers: [host, date], payloadHash: empty,
             canonicalRequest: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\n6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
             signedHeaders: "host;x-amz-date",
             signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        Case(name: "get-utf8", method: "GET", path: "/ሴ", query: [], headers: [host, date], payloadHash: empty,
             canonicalRequest: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\n2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
             signedHeaders: "host;x-amz-date",
             signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        Case(name: "get-space-unnormalized", method: "GET", path: "/example space/", query: [], headers: [host, date],
             payloadHash: empty,
             canonicalRequest: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\n63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
             signedHeaders: "host;x-amz-date",
             signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        Case(name: "post-vanilla", method: "POST", path: "/", query: [], headers: [host, date], payloadHash: empty,
             canonicalRequest: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
             signedHeaders: "host;x-amz-date",
             signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        Case(name: "post-vanilla-query", method: "POST", path: "/", query: [("Param1", "value1")], headers: [host, date],
             payloadHash: empty,
             canonicalRequest: "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\n9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
             signedHeaders: "host;x-amz-date",
             signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
        Case(name: "post-x-www-form-urlencoded", method: "POST", path: "/", query: [],
             headers: [("Content-Type", "application/x-www-form-urlencoded"), host, ("Content-Length", "13"), date,
                       ("X-Amz-Content-Sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")],
             payloadHash: "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
             canonicalRequest: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
             stringToSign: "AWS4-HMAC-SHA256\n20150830T123600Z\n\(scope)\nb1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
             signedHeaders: "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
             signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"),
    ]

    let signer = SigV4(credentials: S3Credentials(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                       region: "us-east-1", service: "service")

    @Test(arguments: cases) func matchesTheSuite(_ c: Case) {
        let (creq, signed) = SigV4.canonicalRequest(method: c.method, path: c.path, query: c.query, headers: c.headers,
                                                    payloadHash: c.payloadHash)
        #expect(creq == c.canonicalRequest)
        #expect(signed == c.signedHeaders)
        let sts = signer.stringToSign(canonicalRequest: creq, stamp: "20150830T123600Z")
        #expect(sts == c.stringToSign)
        #expect(signer.signature(stringToSign: sts, stamp: "20150830T123600Z") == c.signature)
        let authz = signer.authorization(method: c.method, path: c.path, query: c.query, headers: c.headers,
                                         payloadHash: c.payloadHash, stamp: "20150830T123600Z")
        #expect(authz == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(Self.scope), SignedHeaders=\(c.signedHeaders), Signature=\(c.signature)")
    }

    /// One changed byte anywhere changes the signature (a signer that ignored a part would pass
    /// the cases above only by luck).
    @Test func everyPartIsSigned() {
        let base = Self.cases[0]
        let reference = signer.authorization(method: "GET", path: "/", query: [], headers: base.headers,
                                             payloadHash: Self.empty, stamp: "20150830T123600Z")
        let variants = [
            signer.authorization(method: "PUT", path: "/", query: [], headers: base.headers, payloadHash: Self.empty, stamp: "20150830T123600Z"),
            signer.authorization(method: "GET", path: "/a", query: [], headers: base.headers, payloadHash: Self.empty, stamp: "20150830T123600Z"),
            signer.authorization(method: "GET", path: "/", query: [("a", "")], headers: base.headers, payloadHash: Self.empty, stamp: "20150830T123600Z"),
            signer.authorization(method: "GET", path: "/", query: [], headers: base.headers + [("x", "1")], payloadHash: Self.empty, stamp: "20150830T123600Z"),
            signer.authorization(method: "GET", path: "/", query: [], headers: base.headers, payloadHash: String(repeating: "0", count: 64), stamp: "20150830T123600Z"),
            signer.authorization(method: "GET", path: "/", query: [], headers: base.headers, payloadHash: Self.empty, stamp: "20150831T123600Z"),
            SigV4(credentials: signer.credentials, region: "eu-west-1", service: "service")
                .authorization(method: "GET", path: "/", query: [], headers: base.headers, payloadHash: Self.empty, stamp: "20150830T123600Z"),
        ]
        for v in variants { #expect(v != reference) }
    }

    @Test func timestampsAreUTC() {
        #expect(SigV4.timestamp(Date(timeIntervalSince1970: 1_440_938_160)) == "20150830T123600Z")
    }
}
