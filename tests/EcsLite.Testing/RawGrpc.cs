using System.Buffers.Binary;
using System.Net;

namespace EcsLite.Testing;

/// <summary>
/// gRPC calls with bytes the test chooses (not necessarily a valid message): HTTP/2 without TLS, one
/// length-prefixed frame, and the call's status read from its trailers (or headers, for a trailers-only answer).
/// </summary>
public static class RawGrpc
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { EnableMultipleHttp2Connections = true }) { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Sends <paramref name="message"/> as the request of <paramref name="method"/> ("/package.Service/Method"), with <paramref name="key"/>'s Bearer header if given.</summary>
    public static async Task<(int Status, string Message)> CallAsync(string address, string method, byte[] message, (string AccessKeyId, string Secret)? key = null, CancellationToken cancellationToken = default)
    {
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
        message.CopyTo(frame, 5);
        using var request = new HttpRequestMessage(HttpMethod.Post, address.TrimEnd('/') + method)
        {
            Content = new ByteArrayContent(frame),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact, // h2c: HTTP/2 without TLS, by prior knowledge
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (key is var (id, secret))
        {
            request.Headers.TryAddWithoutValidation("authorization", $"Bearer {id}:{secret}");
        }

        using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var headers = response.TrailingHeaders.Concat(response.Headers).ToList();
        var status = headers.FirstOrDefault(h => h.Key == "grpc-status").Value?.FirstOrDefault();
        var text = headers.FirstOrDefault(h => h.Key == "grpc-message").Value?.FirstOrDefault() ?? "";
        return (status is null ? -1 : int.Parse(status, System.Globalization.CultureInfo.InvariantCulture), Uri.UnescapeDataString(text));
    }
}
