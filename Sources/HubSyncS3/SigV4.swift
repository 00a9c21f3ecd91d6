import Crypto
import Foundation

/// AWS Signature Version 4: the canonical request, the string to sign, the signing key and the
/// `Authorization` header, for one request. Pure functions of their inputs; tested against AWS's
/// published SigV4 test suite (Tests/HubSyncS3Tests/SigV4Tests.swift).
public struct SigV4: Sendable {
    public var credentials: S3Credentials
    public var region: String
    public var service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The SHA-256 of an empty body, in hex: what GET, HEAD and DELETE sign.
    public static let emptyHash = hex(Array(SHA256.hash(data: [UInt8]())))

    /// `20150830T123600Z` for a time.
    public static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// The canonical request and the signed header names (`host;x-amz-date`).
    ///
    /// `path` is the raw (not yet encoded) path; each segment is percent-encoded once, as S3
    /// expects. Header names are lower-cased and sorted, values trimmed with inner runs of spaces
    /// made one, and repeated headers joined with commas in the order given.
    public static func canonicalRequest(method: String, path: String, query: [(String, String)],
                                        headers: [(String, String)], payloadHash: String) -> (text: String, signed: String) {
        let canonicalPath = path.isEmpty ? "/" : uriEncode(path, keepSlash: true)
        var pairs: [(String, String)] = query.map { (uriEncode($0.0, keepSlash: false), uriEncode($0.1, keepSlash: false)) }
        pairs.sort { (a: (String, String), b: (String, String)) -> Bool in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        let canonicalQuery = pairs.map { (p: (String, String)) -> String in p.0 + "=" + p.1 }.joined(separator: "&")
        var merged: [String: [String]] = [:]
        for (name, value) in headers { merged[name.lowercased(), default: []].append(trimValue(value)) }
        let names = merged.keys.sorted()
        let headerLines = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signed = names.joined(separator: ";")
        let text = [method, canonicalPath, canonicalQuery, headerLines, signed, payloadHash].joined(separator: "\n")
        return (text, signed)
    }

    /// The credential scope: `20150830/us-east-1/service/aws4_request`.
    public func scope(_ stamp: String) -> String { "\(stamp.prefix(8))/\(region)/\(service)/aws4_request" }

    /// The string to sign for a canonical request at `stamp` (`20150830T123600Z`).
    public func stringToSign(canonicalRequest: String, stamp: String) -> String {
        let hash = SigV4.hex(Array(SHA256.hash(data: Array(canonicalRequest.utf8))))
        return "AWS4-HMAC-SHA256\n\(stamp)\n\(scope(stamp))\n\(hash)"
    }

    /// The signature of a string to sign, in hex: HMAC-SHA256 under the key derived from the
    /// secret, the date, the region and the service.
    public func signature(stringToSign: String, stamp: String) -> String {
        func hmac(_ key: [UInt8], _ text: String) -> [UInt8] {
            Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key)))
        }
        var key = hmac(Array(("AWS4" + credentials.secretKey).utf8), String(stamp.prefix(8)))
        key = hmac(key, region)
        key = hmac(key, service)
        key = hmac(key, "aws4_request")
        return SigV4.hex(hmac(key, stringToSign))
    }

    /// The `Authorization` header's value for a request whose headers already hold `host` and
    /// `x-amz-date` (and `x-amz-security-token` with temporary credentials).
    public func authorization(method: String, path: String, query: [(String, String)], headers: [(String, String)],
                              payloadHash: String, stamp: String) -> String {
        let (canonical, signed) = SigV4.canonicalRequest(method: method, path: path, query: query, headers: headers,
                                                         payloadHash: payloadHash)
        let sig = signature(stringToSign: stringToSign(canonicalRequest: canonical, stamp: stamp), stamp: stamp)
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKey)/\(scope(stamp)), SignedHeaders=\(signed), Signature=\(sig)"
    }

    /// Percent-encodes all but the unreserved characters (A–Z a–z 0–9 - . _ ~), and `/` in paths.
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out += "/"
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    static func trimValue(_ value: String) -> String {
        var out = ""
        var space = false
        for c in value.trimmingCharacters(in: .whitespaces) {
            if c == " " || c == "\t" {
                if !space { out.append(" ") }
                space = true
            } else {
                out.append(c)
                space = false
            }
        }
        return out
    }

    /// Lower-case hex.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
