// ecslite-custom-scheduler: keeps one task of a task definition on every container instance that a
// cluster query expression matches. See docs/custom-scheduler.md.
//
//   ECSLITE_ENDPOINT=https://127.0.0.1:7430 ECSLITE_CA_FILE=/var/lib/ecslite/tls/ca.crt \
//   ECSLITE_ACCESS_KEY=AKIA...:SECRET \
//   ecslite-custom-scheduler --cluster default --task-definition node-exporter --filter 'attribute:role == edge'
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using EcsLite.Examples.CustomScheduler;
using Grpc.Core;
using Grpc.Net.Client;

string Arg(string name, string? fallback = null)
{
    var at = Array.IndexOf(args, $"--{name}");
    return at >= 0 && at + 1 < args.Length ? args[at + 1]
        : fallback ?? throw new ArgumentException($"--{name} is required (see docs/custom-scheduler.md)");
}

string Env(string name) => Environment.GetEnvironmentVariable(name) ?? throw new ArgumentException($"{name} is not set (see docs/custom-scheduler.md)");

var settings = new SchedulerSettings(Arg("cluster", "default"), Arg("task-definition"), Arg("filter"), Arg("started-by", "custom-scheduler"));
var key = Env("ECSLITE_ACCESS_KEY");
var ca = X509CertificateLoader.LoadCertificateFromFile(Env("ECSLITE_CA_FILE"));

// TLS that trusts only the cluster's CA, and the access key on every call.
using var channel = GrpcChannel.ForAddress(Env("ECSLITE_ENDPOINT"), new GrpcChannelOptions
{
    HttpHandler = new SocketsHttpHandler
    {
        SslOptions = new SslClientAuthenticationOptions
        {
            // The cluster's own CA publishes no revocation list: the chain to it is what is checked.
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { ca }, RevocationMode = X509RevocationMode.NoCheck,
            },
        },
    },
    Credentials = ChannelCredentials.Create(ChannelCredentials.SecureSsl, CallCredentials.FromInterceptor((_, metadata) =>
    {
        metadata.Add("authorization", $"Bearer {key}");
        return Task.CompletedTask;
    })),
});

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
await Console.Out.WriteLineAsync($"keeping {settings.TaskDefinition} on every instance of {settings.Cluster} where {settings.Filter}");
await new PerInstanceScheduler(channel, settings, Console.Out).RunAsync(stop.Token);
