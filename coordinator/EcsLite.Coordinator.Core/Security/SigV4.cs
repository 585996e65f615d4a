using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace EcsLite.Coordinator.Core.Security;

/// <summary>The error words AWS answers a request whose signature cannot be accepted with.</summary>
public static class SigV4Errors
{
    public const string IncompleteSignatureException = nameof(IncompleteSignatureException);
    public const string InvalidSignatureException = nameof(InvalidSignatureException);
}

/// <summary>A request as SigV4 signs it: method, path, query, the headers by lowercase name, and its body's SHA-256.</summary>
public sealed record SignedRequest(string Method, string Path, string Query, Func<string, string?> Header, byte[] PayloadSha256);

/// <summary>
/// AWS Signature Version 4 as a service checks it (Authorization header form, AWS4-HMAC-SHA256): the
/// credential scope, the time within 15 minutes of now, and the signature recomputed from the caller's
/// secret over the canonical request. Pure: the secret comes from the caller's key store.
/// </summary>
public static partial class SigV4
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public static readonly TimeSpan MaxSkew = TimeSpan.FromMinutes(15);

    public sealed record Authorization(string AccessKeyId, string Date, string Region, string Service, IReadOnlyList<string> SignedHeaders, string Signature)
    {
        public string Scope => $"{Date}/{Region}/{Service}/aws4_request";
    }

    [GeneratedRegex(@"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*SignedHeaders=([a-z0-9\-;]+),\s*Signature=([0-9a-f]{64})$", RegexOptions.CultureInvariant)]
    private static partial Regex Header();

    /// <summary>The Authorization header's parts, or IncompleteSignatureException saying what is wrong.</summary>
    public static Authorization Parse(string? header)
    {
        if (string.IsNullOrEmpty(header))
        {
            throw new EcsException(IamErrorType.MissingAuthenticationTokenException, "Missing Authentication Token");
        }

        var match = Header().Match(header.Length <= 4096 ? header.Trim() : "");
        if (!match.Success)
        {
            throw new EcsException(SigV4Errors.IncompleteSignatureException,
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters in the AWS4-HMAC-SHA256 form.");
        }

        var signed = match.Groups[5].Value.Split(';');
        if (!signed.Contains("host"))
        {
            throw new EcsException(SigV4Errors.IncompleteSignatureException, "The host header must be signed.");
        }

        return new Authorization(match.Groups[1].Value, match.Groups[2].Value, match.Groups[3].Value, match.Groups[4].Value, signed, match.Groups[6].Value);
    }

    /// <summary>
    /// Checks a parsed signature for <paramref name="service"/> in <paramref name="region"/> at
    /// <paramref name="now"/>; the secret is asked for only once the scope and time are right.
    /// </summary>
    public static void Verify(Authorization authorization, SignedRequest request, string region, IReadOnlyCollection<string> services, DateTimeOffset now, Func<byte[]> secret)
    {
        var amzDate = request.Header("x-amz-date");
        if (amzDate is null || !DateTimeOffset.TryParseExact(amzDate, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var signedAt))
        {
            throw new EcsException(SigV4Errors.IncompleteSignatureException, "The request must carry an X-Amz-Date header (yyyyMMddTHHmmssZ).");
        }

        if (!authorization.SignedHeaders.Contains("x-amz-date"))
        {
            throw new EcsException(SigV4Errors.IncompleteSignatureException, "The x-amz-date header must be signed.");
        }

        if ((signedAt - now).Duration() > MaxSkew)
        {
            throw new EcsException(SigV4Errors.InvalidSignatureException,
                $"Signature expired: {amzDate} is now earlier than {(now - MaxSkew).UtcDateTime:yyyyMMdd'T'HHmmss'Z'} ({now.UtcDateTime:yyyyMMdd'T'HHmmss'Z'} - 15 min.)");
        }

        if (authorization.Date != amzDate[..8] || authorization.Region != region || !services.Contains(authorization.Service))
        {
            throw new EcsException(SigV4Errors.InvalidSignatureException,
                $"Credential should be scoped to a valid region and service: {amzDate[..8]}/{region}/{string.Join('|', services)}/aws4_request, not '{authorization.Scope}'.");
        }

        var expected = Signature(secret(), authorization, request, amzDate);
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(authorization.Signature)))
        {
            throw new EcsException(SigV4Errors.InvalidSignatureException,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.");
        }
    }

    /// <summary>The signature a request should carry (hex), as a client computes it.</summary>
    public static string Signature(byte[] secret, Authorization authorization, SignedRequest request, string amzDate)
    {
        var canonicalRequest = string.Join('\n',
            request.Method,
            request.Path.Length == 0 ? "/" : request.Path,
            CanonicalQuery(request.Query),
            string.Concat(authorization.SignedHeaders.Select(h => $"{h}:{CanonicalValue(request.Header(h) ?? "")}\n")),
            string.Join(';', authorization.SignedHeaders),
            Convert.ToHexStringLower(request.PayloadSha256));
        var stringToSign = string.Join('\n', Algorithm, amzDate, authorization.Scope, Hex(Encoding.UTF8.GetBytes(canonicalRequest)));
        var key = Hmac([.. "AWS4"u8, .. secret], authorization.Date);
        key = Hmac(key, authorization.Region);
        key = Hmac(key, authorization.Service);
        key = Hmac(key, "aws4_request");
        return Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
    }

    private static byte[] Hmac(byte[] key, string data) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(data));

    private static string Hex(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>Trimmed, with runs of spaces inside made one.</summary>
    private static string CanonicalValue(string value) => string.Join(' ', value.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>Parameters sorted by name then value, each already URI-encoded as sent.</summary>
    private static string CanonicalQuery(string query) =>
        string.Join('&', query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Contains('=', StringComparison.Ordinal) ? p : p + "=")
            .Order(StringComparer.Ordinal));
}
