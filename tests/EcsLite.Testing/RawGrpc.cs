using System.Buffers.Binary;
using System.Net;

namespace EcsLite.Testing;

/// <summary>
/// gRPC calls with bytes the test chooses (not necessarily a valid message): HTTP/2 without TLS, one
/// length-prefixed frame, and the call's status read from its trailers (or headers, for a trailers-only answer).
/// </summary>
public static class RawGrpc
{
    // What is tested is how the server takes bytes, not who it is: any server certificate is accepted
    // (the address is always a coordinator the test itself started on loopback).
    private static readonly HttpClient Http = Client(null);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, HttpClient> WithCertificate = new();

    private static HttpClient Client(System.Security.Cryptography.X509Certificates.X509Certificate2? certificate) => new(new SocketsHttpHandler
    {
        EnableMultipleHttp2Connections = true,
        SslOptions = new System.Net.Security.SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ClientCertificates = certificate is null ? null : [certificate],
        },
    }) { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>
    /// Sends <paramref name="message"/> as the request of <paramref name="method"/> ("/package.Service/Method"),
    /// with <paramref name="key"/>'s Bearer header and <paramref name="certificate"/> as the TLS client certificate if given.
    /// </summary>
    public static async Task<(int Status, string Message)> CallAsync(string address, string method, byte[] message, (string AccessKeyId, string Secret)? key = null,
        CancellationToken cancellationToken = default, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        var http = certificate is null ? Http : WithCertificate.GetOrAdd(certificate.Thumbprint, _ => Client(certificate));
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
        message.CopyTo(frame, 5);
        using var request = new HttpRequestMessage(HttpMethod.Post, address.TrimEnd('/') + method)
        {
            Content = new ByteArrayContent(frame),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact, // HTTP/2 only (by ALPN over TLS, by prior knowledge over http://)
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (key is var (id, secret))
        {
            request.Headers.TryAddWithoutValidation("authorization", $"Bearer {id}:{secret}");
        }

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var headers = response.TrailingHeaders.Concat(response.Headers).ToList();
        var status = headers.FirstOrDefault(h => h.Key == "grpc-status").Value?.FirstOrDefault();
        var text = headers.FirstOrDefault(h => h.Key == "grpc-message").Value?.FirstOrDefault() ?? "";
        return (status is null ? -1 : int.Parse(status, System.Globalization.CultureInfo.InvariantCulture), Uri.UnescapeDataString(text));
    }
}
