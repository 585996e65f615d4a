using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using EcsLite.Coordinator.Core.Security;

namespace EcsLite.Testing;

/// <summary>
/// The coordinator's AWS JSON API (awsJson1.1) as an SDK calls it: POST / with X-Amz-Target, every call
/// signed with SigV4 by an access key (at the time given, to test a clock's skew).
/// </summary>
public sealed class AwsJsonClient(HttpClient http, Uri endpoint, (string AccessKeyId, string Secret) key, string region = "local")
{
    public async Task<HttpResponseMessage> PostAsync(string target, string body, string service = "ecs", DateTimeOffset? signedAt = null)
    {
        var amzDate = (signedAt ?? DateTimeOffset.UtcNow).UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var bytes = Encoding.UTF8.GetBytes(body);
        var headers = new Dictionary<string, string>
        {
            ["content-type"] = "application/x-amz-json-1.1",
            ["host"] = endpoint.Authority,
            ["x-amz-date"] = amzDate,
            ["x-amz-target"] = target,
        };
        var authorization = new SigV4.Authorization(key.AccessKeyId, amzDate[..8], region, service, [.. headers.Keys], "");
        var signature = SigV4.Signature(Encoding.UTF8.GetBytes(key.Secret), authorization,
            new SignedRequest("POST", "/", "", h => headers.GetValueOrDefault(h), SHA256.HashData(bytes)), amzDate);
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Version = new Version(1, 1), Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(headers["content-type"]);
        request.Headers.TryAddWithoutValidation("X-Amz-Date", amzDate);
        request.Headers.TryAddWithoutValidation("X-Amz-Target", target);
        request.Headers.TryAddWithoutValidation("Authorization",
            $"{SigV4.Algorithm} Credential={key.AccessKeyId}/{authorization.Scope}, SignedHeaders={string.Join(';', authorization.SignedHeaders)}, Signature={signature}");
        return await http.SendAsync(request);
    }
}
