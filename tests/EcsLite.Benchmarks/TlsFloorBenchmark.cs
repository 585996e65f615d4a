using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using EcsLite.Security;
using EcsLite.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EcsLite.Benchmarks;

/// <summary>
/// What TLS itself costs on this machine, with no EcsLite code on the path: the floor under the `security`
/// benchmark's DescribeTasks figures. Messages of DescribeTasks' sizes (a 477-byte request, a 1,800-byte
/// response, each one TLS 1.3 record as the coordinator sends them), 8 callers on 8 connections, phases
/// alternating: (1) a ping-pong over bare sockets against the same over .NET's SslStream (both ends in this
/// process); (2) an empty Kestrel HTTP/2 endpoint in a child process, h2c against TLS with the coordinator's
/// settings and certificates (the cluster CA and server certificate it makes, a client certificate asked for, ALPN),
/// called by HttpClient: calls/s and the server's CPU a call.
/// Usage: ... tls-floor [--rounds 3] [--seconds 5] [--callers 8]
/// </summary>
internal static class TlsFloorBenchmark
{
    private const int RequestBytes = 477;
    private const int ResponseBytes = 1800;

    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = Report.Option(args, "--rounds", 3);
        var phase = TimeSpan.FromSeconds(Report.Option(args, "--seconds", 5));
        var callers = Report.Option(args, "--callers", 8);
        var directory = CoordinatorProcess.TempDirectory("ecslite-tls-floor");
        var certificates = Certificates(directory);

        var socketPlain = new List<(double Rate, double Cpu)>();
        var socketTls = new List<(double Rate, double Cpu)>();
        var kestrelPlain = new List<(double Rate, double Cpu)>();
        var kestrelTls = new List<(double Rate, double Cpu)>();
        for (var i = 0; i < rounds; i++)
        {
            socketPlain.Add(await PingPongAsync(null, callers, phase));
            socketTls.Add(await PingPongAsync(certificates.Server, callers, phase));
            kestrelPlain.Add(await KestrelAsync(null, callers, phase));
            kestrelTls.Add(await KestrelAsync(directory, callers, phase));
        }

        Report.Print(
        [
            ($"bare sockets, {callers} pairs, a {RequestBytes}-byte request and a {ResponseBytes:N0}-byte answer", Figures(socketPlain, "µs of CPU a round trip, both ends"), ""),
            ("the same over SslStream (TLS 1.3)", Figures(socketTls, "µs of CPU a round trip, both ends"), ""),
            ("difference", Difference(socketTls, socketPlain), ""),
            ($"empty Kestrel HTTP/2 endpoint, h2c, {callers} HttpClient callers", Figures(kestrelPlain, "µs of server CPU a call"), ""),
            ("the same endpoint over TLS (the coordinator's settings)", Figures(kestrelTls, "µs of server CPU a call"), ""),
            ("difference", Difference(kestrelTls, kestrelPlain), ""),
        ]);
        Directory.Delete(directory, recursive: true);
        return 0;
    }

    /// <summary>
    /// The child process's side (`tls-floor-server PORT [DIRECTORY]`, TLS with the certificates in DIRECTORY):
    /// an empty endpoint that reads the request and answers 1,800 bytes.
    /// </summary>
    public static async Task<int> ServeAsync(string[] args)
    {
        var port = int.Parse(args[1], CultureInfo.InvariantCulture);
        var tls = args.Length > 2;
        var certificates = tls ? Certificates(args[2]) : null;
        var options = tls ? new SslServerAuthenticationOptions
        {
            // as the coordinator's: a client certificate asked for, taken only if the cluster CA issued it
            ServerCertificateContext = SslStreamCertificateContext.Create(certificates!.Server, certificates.ServerChain, offline: true),
            ClientCertificateRequired = true,
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is null || certificate is X509Certificate2 presented && certificates.IssuedClient(presented),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
        } : null;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen =>
        {
            listen.Protocols = tls ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http2;
            if (tls)
            {
                listen.UseHttps(new TlsHandshakeCallbackOptions { OnConnection = _ => ValueTask.FromResult(options!) });
            }
        }));
        await using var app = builder.Build();
        var response = new byte[ResponseBytes];
        app.MapPost("/", async (HttpContext context) =>
        {
            await context.Request.Body.CopyToAsync(Stream.Null);
            context.Response.ContentLength = response.Length;
            await context.Response.Body.WriteAsync(response);
        });
        await app.StartAsync();
        Console.WriteLine("serving");
        await app.WaitForShutdownAsync(); // SIGTERM from the parent
        return 0;
    }

    /// <summary>Calls to the endpoint in a child process: TLS with the certificates in <paramref name="tls"/>, h2c if null.</summary>
    private static async Task<(double Rate, double Cpu)> KestrelAsync(string? tls, int callers, TimeSpan phase)
    {
        var port = CoordinatorProcess.FreePort();
        await using var server = TestProcess.Start([Environment.ProcessPath!, "tls-floor-server", port.ToString(CultureInfo.InvariantCulture), .. tls is null ? Array.Empty<string>() : [tls]]);
        await server.WaitForOutputAsync("serving", TimeSpan.FromSeconds(30));
        var url = new Uri($"{(tls is null ? "http" : "https")}://127.0.0.1:{port}/");
        var clients = Enumerable.Range(0, callers).Select(_ => new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        })
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        }).ToList();
        var request = new byte[RequestBytes];
        var result = await Report.CallRateAsync(callers, phase, () => Report.CpuTime(server.Id), caller => async () =>
        {
            using var answer = await clients[caller].PostAsync(url, new ByteArrayContent(request));
            var body = await answer.Content.ReadAsByteArrayAsync();
            if (answer.Version != HttpVersion.Version20 || body.Length != ResponseBytes)
            {
                throw new InvalidOperationException($"HTTP/{answer.Version}, {body.Length} bytes");
            }
        });
        clients.ForEach(c => c.Dispose());
        return result;
    }

    private static async Task<(double Rate, double Cpu)> PingPongAsync(X509Certificate2? certificate, int pairs, TimeSpan phase)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var endpoint = (IPEndPoint)listener.LocalEndpoint;
        var clients = new List<Stream>();
        var servers = new List<Task>();
        for (var i = 0; i < pairs; i++)
        {
            var accepted = listener.AcceptSocketAsync();
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endpoint);
            var (client, server) = await SecureAsync(new NetworkStream(socket, ownsSocket: true), new NetworkStream(await accepted, ownsSocket: true), certificate);
            clients.Add(client);
            servers.Add(Task.Run(async () =>
            {
                var buffer = new byte[RequestBytes];
                var response = new byte[ResponseBytes];
                while (await ReadAsync(server, buffer))
                {
                    await server.WriteAsync(response);
                }

                await server.DisposeAsync();
            }));
        }

        var request = new byte[RequestBytes];
        var responses = Enumerable.Range(0, pairs).Select(_ => new byte[ResponseBytes]).ToList();
        var result = await Report.CallRateAsync(pairs, phase, () => Process.GetCurrentProcess().TotalProcessorTime, caller => async () =>
        {
            await clients[caller].WriteAsync(request);
            _ = await ReadAsync(clients[caller], responses[caller]);
        });
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }

        await Task.WhenAll(servers);
        return result;
    }

    /// <summary>Both ends of a connection, over TLS when a certificate is given.</summary>
    private static async Task<(Stream Client, Stream Server)> SecureAsync(Stream client, Stream server, X509Certificate2? certificate)
    {
        if (certificate is null)
        {
            return (client, server);
        }

        var secureClient = new SslStream(client);
        var secureServer = new SslStream(server);
        await Task.WhenAll(
            secureClient.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true }),
            secureServer.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }));
        return (secureClient, secureServer);
    }

    /// <summary>Fills <paramref name="buffer"/>; false at the end of the stream.</summary>
    private static async Task<bool> ReadAsync(Stream stream, byte[] buffer)
    {
        try
        {
            return await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false) == buffer.Length;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The cluster CA and server certificate the coordinator makes (or loads) in its data directory's tls/.</summary>
    private static ClusterCertificates Certificates(string directory) =>
        ClusterCertificates.LoadOrCreate(directory, ["localhost", "127.0.0.1"], DateTimeOffset.UtcNow);

    private static string Figures(List<(double Rate, double Cpu)> phases, string cpu) =>
        $"{phases.Average(p => p.Rate):N0} calls/s ({string.Join(", ", phases.Select(p => p.Rate.ToString("N0", CultureInfo.InvariantCulture)))}); {phases.Average(p => p.Cpu):N1} {cpu}";

    private static string Difference(List<(double Rate, double Cpu)> value, List<(double Rate, double Cpu)> baseline)
    {
        var rate = 100 * (value.Average(p => p.Rate) - baseline.Average(p => p.Rate)) / baseline.Average(p => p.Rate);
        var cpu = value.Average(p => p.Cpu) - baseline.Average(p => p.Cpu);
        return $"calls/s {rate:+0.0;-0.0}%; CPU {cpu:+0.0;-0.0} µs a call ({100 * cpu / baseline.Average(p => p.Cpu):+0;-0}%)";
    }
}
