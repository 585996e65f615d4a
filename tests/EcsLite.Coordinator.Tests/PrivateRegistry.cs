using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// A private registry on a loopback port for one image, made from a local image (docker save): the
/// Registry API v2's pull side (version check, manifest, blobs) behind HTTP basic authentication, as a
/// registry that needs repositoryCredentials is. The Docker engine pulls from 127.0.0.0/8 over plain HTTP.
/// </summary>
public sealed class PrivateRegistry : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Dictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);
    private readonly string _repository;
    private readonly string _authorization;
    private byte[] _manifest = [];
    private string _manifestDigest = "";
    private Task _serving = Task.CompletedTask;

    private PrivateRegistry(int port, string repository, string username, string password)
    {
        Port = port;
        _repository = repository;
        _authorization = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{username}:{password}"));
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
    }

    public int Port { get; }

    /// <summary>Requests refused for want of the right credentials.</summary>
    public int Refused { get; private set; }

    /// <summary>Manifests served to an authenticated client (the layers themselves the engine may have already).</summary>
    public int ManifestsServed { get; private set; }

    public static async Task<PrivateRegistry> StartAsync(int port, string repository, string localImage, string username, string password)
    {
        var registry = new PrivateRegistry(port, repository, username, password);
        await registry.LoadAsync(localImage);
        registry._listener.Start();
        registry._serving = Task.Run(registry.ServeAsync);
        return registry;
    }

    /// <summary>The image as a schema-2 manifest: its config as saved, its layers gzipped (their diff ids are the saved tars').</summary>
    private async Task LoadAsync(string localImage)
    {
        var saved = Path.Combine(Path.GetTempPath(), $"ecslite-registry-{Guid.NewGuid():N}.tar");
        try
        {
            var (code, output) = await ProcessRunner.RunAsync("docker", ["save", "-o", saved, localImage]);
            Assert.True(code == 0, output);
            var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            await using (var tar = new TarReader(File.OpenRead(saved)))
            {
                while (await tar.GetNextEntryAsync() is { } entry)
                {
                    if (entry.DataStream is not null)
                    {
                        using var copy = new MemoryStream();
                        await entry.DataStream.CopyToAsync(copy);
                        files[entry.Name] = copy.ToArray();
                    }
                }
            }

            var image = JsonNode.Parse(files["manifest.json"])![0]!;
            var config = files[image["Config"]!.GetValue<string>()];
            var layers = new JsonArray();
            foreach (var layer in image["Layers"]!.AsArray().Select(l => files[l!.GetValue<string>()]))
            {
                using var gzipped = new MemoryStream();
                using (var gzip = new GZipStream(gzipped, CompressionLevel.Fastest))
                {
                    gzip.Write(layer);
                }

                var blob = gzipped.ToArray();
                layers.Add(new JsonObject { ["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip", ["size"] = blob.Length, ["digest"] = Add(blob) });
            }

            _manifest = Encoding.UTF8.GetBytes(new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json",
                ["config"] = new JsonObject { ["mediaType"] = "application/vnd.docker.container.image.v1+json", ["size"] = config.Length, ["digest"] = Add(config) },
                ["layers"] = layers,
            }.ToJsonString());
            _manifestDigest = Digest(_manifest);
        }
        finally
        {
            File.Delete(saved);
        }
    }

    private string Add(byte[] blob)
    {
        var digest = Digest(blob);
        _blobs[digest] = blob;
        return digest;
    }

    private static string Digest(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            using var response = context.Response;
            response.Headers["Docker-Distribution-API-Version"] = "registry/2.0";
            if (context.Request.Headers["Authorization"] != _authorization)
            {
                Refused++;
                response.StatusCode = 401;
                response.Headers["WWW-Authenticate"] = "Basic realm=\"ecslite-test\"";
                continue;
            }

            var path = context.Request.Url!.AbsolutePath;
            byte[]? body = null;
            if (path == "/v2/")
            {
                body = "{}"u8.ToArray();
            }
            else if (path == $"/v2/{_repository}/manifests/latest" || path == $"/v2/{_repository}/manifests/{_manifestDigest}")
            {
                body = _manifest;
                ManifestsServed++;
                response.ContentType = "application/vnd.docker.distribution.manifest.v2+json";
                response.Headers["Docker-Content-Digest"] = _manifestDigest;
            }
            else if (path.StartsWith($"/v2/{_repository}/blobs/", StringComparison.Ordinal) && _blobs.TryGetValue(path[(path.LastIndexOf('/') + 1)..], out var blob))
            {
                body = blob;
                response.ContentType = "application/octet-stream";
            }

            response.StatusCode = body is null ? 404 : 200;
            response.ContentLength64 = body?.Length ?? 0;
            if (body is not null && context.Request.HttpMethod != "HEAD")
            {
                await response.OutputStream.WriteAsync(body);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _serving;
    }
}
