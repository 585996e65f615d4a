using System.Runtime.InteropServices;
using EcsLite.Coordinator;
using EcsLite.Coordinator.Agents;
using EcsLite.Coordinator.Api;
using EcsLite.Coordinator.Observability;
using EcsLite.Coordinator.Schedules;
using EcsLite.Coordinator.Secrets;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Coordinator.Security;
using EcsLite.Coordinator.Store;
using EcsLite.Security;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Grpc.AspNetCore.Server.Model;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Options;

const string Usage = """
    ecslite-coordinator: the EcsLite cluster coordinator (Amazon ECS's API over gRPC).

    Options (each also settable in the --config JSON file or as ECSLITE_<NAME> in the environment):
      --listen ADDRESS     gRPC address, host:port, [v6]:port or unix:/path   (Listen, default 127.0.0.1:7430)
      --data-dir DIR       where the cluster store lives                       (DataDir, default /var/lib/ecslite/coordinator as root)
      --store etcd://H:P,H:P[/ROOT]  keep the cluster state in etcd instead    (Store, default: the embedded store in DataDir)
      StoreCaFile, StoreCertificateFile, StoreKeyFile  TLS to etcd: its CA, a client certificate and key (config/env only)
      ServerToken          with etcd: the token the coordinators' shared CA and keys are sealed with (config/env only;
                           the first coordinator makes DATA_DIR/server-token, give the others its content)
      --admin-socket PATH  unix socket answering as the account's root, 0600  (AdminSocket, default /run/ecslite/coordinator.sock as root)
      TlsSubjectAlternativeNames  extra names for the server certificate, comma-separated (config/env only)
      TlsCertificateFile, TlsKeyFile  your own server certificate (PEM, chain after the leaf) and key (config/env only)
      --region NAME        region written into ARNs                            (Region, default local)
      --account-id ID      12-digit account written into ARNs                  (AccountId, default 000000000000)
      HeartbeatInterval    agents' heartbeat interval (config/env only)         (default 00:00:02)
      MissedHeartbeats     heartbeats missed before an instance is disconnected (default 3)
      StoppedTaskRetention how long STOPPED tasks stay visible (config/env only)  (default 01:00:00)
      LostInstanceGrace    how long an instance may be disconnected before its
                           service tasks are replaced elsewhere (config/env only) (default 00:00:10)
      --config FILE        JSON file with the settings above
      --help, --version

    Administration through the admin socket (as root, on the coordinator's host; --admin-socket PATH to name another):
      ecslite-coordinator key create [--user NAME]      a new access key (printed once, as AWS shared credentials)
      ecslite-coordinator key list [--user NAME]
      ecslite-coordinator key disable|enable|delete ACCESS_KEY_ID [--user NAME]
      ecslite-coordinator user create|delete NAME
      ecslite-coordinator user list
      ecslite-coordinator policy put USER POLICY_NAME FILE.json
      ecslite-coordinator token create [--ttl 24h] [--cluster NAME] [--uses N] [--description TEXT]
                                                        a join token for new hosts (ECSLITE_JOIN_TOKEN)
      ecslite-coordinator token list
      ecslite-coordinator token revoke ACTIVATION_ID
      ecslite-coordinator parameter put NAME [--type SecureString|String|StringList] < VALUE
                                                        a Parameter Store parameter (valueFrom: NAME), value from stdin
      ecslite-coordinator secret put NAME < VALUE       a Secrets Manager secret (made, or given a new value); prints its ARN
      ecslite-coordinator secrets rotate-key            a new key for the secret store; every value re-encrypted
    (--user defaults to admin.)
    """;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Usage);
    return 0;
}

if (args.Length > 0 && AdminCommands.Names.Contains(args[0]))
{
    return await AdminCommands.RunAsync(args);
}

if (args.Contains("--version"))
{
    Console.WriteLine(typeof(CoordinatorOptions).Assembly.GetName().Version?.ToString(3));
    return 0;
}

// Independent of the working directory (systemd starts units in /): the content root is the program's
// own directory, and no configuration file is watched (a watcher on a content root of / put an inotify
// watch on every directory of the machine and took 20 s to start).
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
{
    Args = [.. args, "--hostBuilder:reloadConfigOnChange=false"],
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Configuration.Sources.Clear();
builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Logging:LogLevel:Default"] = "Information",
    ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
    ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
    ["Logging:LogLevel:Grpc"] = "Warning",
});
var configFile = ConfigFile(args) ?? Environment.GetEnvironmentVariable("ECSLITE_CONFIG");
if (configFile is not null)
{
    builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
}

builder.Configuration.AddEnvironmentVariables("ECSLITE_");
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--listen"] = "Listen",
    ["--data-dir"] = "DataDir",
    ["--store"] = "Store",
    ["--admin-socket"] = "AdminSocket",
    ["--region"] = "Region",
    ["--account-id"] = "AccountId",
    ["--config"] = "Config",
});

var options = builder.Configuration.Get<CoordinatorOptions>() ?? new CoordinatorOptions();
var validation = new CoordinatorOptions.Validator().Validate(null, options);
if (validation.Failed)
{
    Console.Error.WriteLine($"ecslite-coordinator: invalid settings: {validation.FailureMessage}");
    return 2;
}

try
{
    AdminSocket.Prepare(options.AdminSocket);
}
catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"ecslite-coordinator: {e.Message}");
    return 2;
}

// Coordinators sharing an etcd store share its CA and secret keys through it, sealed with the server token.
EtcdKeyValueStore? etcdStore = null;
SharedKeys? sharedKeys = null;
if (options.Store.Length > 0)
{
    etcdStore = EtcdKeyValueStore.Connect(options.Store, options.StoreCaFile, options.StoreCertificateFile, options.StoreKeyFile);
    try
    {
        sharedKeys = await SharedKeys.TakeAsync(etcdStore, options.DataDir, options.ServerToken, CancellationToken.None);
    }
    catch (SharedKeysException e)
    {
        Console.Error.WriteLine($"ecslite-coordinator: {e.Message}");
        return 2;
    }
    catch (Grpc.Core.RpcException e)
    {
        return StoreUnreadable(e);
    }
}

Task loaded = Task.CompletedTask; // the state, as the leader's (with the embedded store, Kestrel listens while it loads)

// The cluster's certificates and keys load while the host is built and its services mapped (Kestrel takes its TLS
// settings at the first handshake): the first certificate chain a process builds loads the system's trust store,
// about 100 ms of a start.
ClusterCertificates certificates = null!;
SecretKeyring keyring = null!;
var keysLoading = Task.Run(LoadKeysAsync);

// etcd unreachable, refusing us, or without quorum at start: one clear line (systemd tries again), not a stack.
int StoreUnreadable(Grpc.Core.RpcException e)
{
    Console.Error.WriteLine($"ecslite-coordinator: Cannot read the cluster store {etcdStore!.Description}: {e.Status.StatusCode}, {e.Status.Detail}");
    return 1;
}

// 0, or the exit code after saying why the certificates or keys cannot be had.
async Task<int> LoadKeysAsync()
{
    try
    {
        var (listenOn, _) = options.ParseListen();
        var extraNames = options.TlsSubjectAlternativeNames.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        certificates = ClusterCertificates.LoadOrCreate(Path.Combine(options.DataDir, "tls"), ClusterCertificates.HostNames(listenOn, extraNames),
            DateTimeOffset.UtcNow, options.TlsCertificateFile, options.TlsKeyFile);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
    {
        Console.Error.WriteLine($"ecslite-coordinator: cannot load or make the TLS certificates: {e.Message}");
        return 2;
    }

    try
    {
        keyring = SecretKeyring.LoadOrCreate(Path.Combine(options.DataDir, "secrets.key"));
        if (sharedKeys is not null)
        {
            await sharedKeys.SealFirstAsync(CancellationToken.None); // the CA's and the keyring's files, as just made
        }

        return 0;
    }
    catch (Grpc.Core.RpcException e)
    {
        return StoreUnreadable(e);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or SharedKeysException)
    {
        Console.Error.WriteLine($"ecslite-coordinator: {e.Message}");
        return 2;
    }
}

builder.Services.AddSingleton(_ => certificates);
builder.Services.AddSingleton<IOptions<CoordinatorOptions>>(Options.Create(options));
builder.Services.AddSystemd();
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
    o.UseUtcTimestamp = true;
});
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    // Agents hold one stream each for as long as they run; pings find connections that died silently.
    kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(15);
    kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
    var (endpoint, socket) = options.ParseListen();
    if (endpoint is not null && options.InsecureTestMode)
    {
        kestrel.Listen(endpoint, listen => listen.Protocols = HttpProtocols.Http2);
    }
    else if (endpoint is not null)
    {
        // TLS always: a plaintext connection fails the handshake. The settings are made at the first handshake
        // (the certificates may still be loading while the host is built). A client certificate is asked for but
        // not required (API callers have none; agents do), and taken only if the cluster CA issued it.
        var tls = new Lazy<SslServerAuthenticationOptions>(() => new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificates.Server, certificates.ServerChain, offline: true),
            ClientCertificateRequired = true,
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is null || certificate is X509Certificate2 presented && certificates.IssuedClient(presented),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            AllowRenegotiation = false, // HTTP/2 forbids it
        });
        kestrel.Listen(endpoint, listen =>
        {
            // gRPC over HTTP/2, and the AWS JSON API (POST /) over HTTP/1.1 for the AWS CLI and SDKs: ALPN picks.
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            listen.UseHttps(new TlsHandshakeCallbackOptions
            {
                OnConnection = _ => ValueTask.FromResult(tls.Value),
                HandshakeTimeout = TimeSpan.FromSeconds(10),
            });
        });
    }
    else
    {
        kestrel.ListenUnixSocket(socket!, listen => listen.Protocols = HttpProtocols.Http2);
    }

    kestrel.ListenUnixSocket(options.AdminSocket, listen =>
    {
        listen.Protocols = HttpProtocols.Http2;
        AdminSocket.Mark(listen);
    });
});

builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<IKeyValueStore>(_ => (IKeyValueStore?)etcdStore ?? SqliteKeyValueStore.Open(options.DataDir, watchBuffer: options.EventStreamBuffer));
builder.Services.AddSingleton<ClusterStateMachine>();
builder.Services.AddSingleton<CoordinatorRole>();
builder.Services.AddSingleton<StoreFollower>();
builder.Services.AddSingleton<LeaderForwarder>();
builder.Services.AddSingleton<AgentSessions>();
builder.Services.AddSingleton<AgentLedger>();
builder.Services.AddSingleton<AgentLogs>();
builder.Services.AddSingleton<TaskDispatcher>();
builder.Services.AddSingleton<AgentReports>();
builder.Services.AddHostedService<HeartbeatMonitor>();
builder.Services.AddHostedService<StoppedTaskPurger>();
builder.Services.AddHostedService<ServiceSchedulerLoop>();
builder.Services.AddHostedService<ScheduleLoop>();
builder.Services.AddHostedService<SystemdWatchdog>();
builder.Services.AddHostedService(_ => new ServingGate(options.AdminSocket, () => loaded));
builder.Services.AddSingleton<IamStore>();
builder.Services.AddSingleton(_ => keyring);
if (sharedKeys is not null)
{
    builder.Services.AddSingleton(sharedKeys);
}

builder.Services.AddSingleton<SecretStore>();
builder.Services.AddSingleton<AuditLog>();
builder.Services.AddSingleton<CallAuthorizer>(); // also asked by the Scheduler service (a schedule's RunTask)
builder.Services.AddSingleton<EcsErrorInterceptor>(); // and both by the JSON API
builder.Services.AddSingleton<AwsJsonApi>();
builder.Services.AddSingleton<CallAuthenticator>(); // also asked by /metrics
builder.Services.AddSingleton<CoordinatorMetrics>();
builder.Services.AddSingleton<DashboardFiles>();
builder.Services.AddHostedService(services => services.GetRequiredService<AuditLog>());
builder.Services.AddGrpc(grpc =>
{
    // Counted, then who is calling, before anything else reads a request; then the request's validation (every
    // string within its limit); then whether the caller may do it; then the handler.
    grpc.Interceptors.Add<ApiMetricsInterceptor>(); // counts every call, refusals too
    grpc.Interceptors.Add<CallAuthenticator>();
    if (options.Store.Length > 0)
    {
        grpc.Interceptors.Add<LeaderForwarder>(); // a follower's changes go to the leader, which validates and authorizes them
    }

    grpc.Interceptors.Add<EcsErrorInterceptor>();
    grpc.Interceptors.Add<CallAuthorizer>();
    grpc.MaxReceiveMessageSize = Limits.MaxRequestBytes;
}).AddServiceOptions<AgentChannelService>(channel => channel.MaxReceiveMessageSize = AgentChannelService.MaxMessageBytes)
    .AddServiceOptions<AgentPeersService>(peers => peers.MaxReceiveMessageSize = AgentChannelService.MaxMessageBytes); // a hello, passed on

// Every service is bound with strict request marshallers (malformed bytes are InvalidArgument), in
// place of grpc-dotnet's default binder.
builder.Services.Remove(builder.Services.Single(d => d.ServiceType == typeof(IServiceMethodProvider<>)
    && d.ImplementationType?.Name.StartsWith("BinderServiceMethodProvider", StringComparison.Ordinal) == true));
builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton(typeof(IServiceMethodProvider<>), typeof(StrictServiceMethodProvider<>)));
builder.Services.AddGrpcReflection();
builder.Services.AddGrpcHealthChecks()
    .AddCheck<StoreHealthCheck>("store");

var app = builder.Build();

// Every request waits until the state is loaded: none is answered from a state half loaded.
app.Use(async (context, next) =>
{
    if (!loaded.IsCompletedSuccessfully)
    {
        await loaded;
    }

    await next(context);
});

var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("EcsLite.Coordinator");
var store = app.Services.GetRequiredService<IKeyValueStore>();
Startup.LogStore(logger, store switch { SqliteKeyValueStore sqlite => $"{sqlite.Path} (SQLite, WAL, synchronous=FULL)", EtcdKeyValueStore etcd => $"{etcd.Description} (etcd)", _ => options.DataDir });
var role = app.Services.GetRequiredService<CoordinatorRole>();

// With the embedded store the state loads while the gRPC services are mapped and the keys load: it needs neither.
var stateLoading = store is EtcdKeyValueStore ? null : Task.Run(LoadStateAsync);
MapServices();
if (await keysLoading is not 0 and var failed)
{
    return failed;
}

Task<EtcdLeadership?> leading = Task.FromResult<EtcdLeadership?>(null);
try
{
    if (store is EtcdKeyValueStore etcd)
    {
        // Coordinators sharing an etcd store: each follows (answers reads, forwards changes) until it leads.
        var following = CancellationTokenSource.CreateLinkedTokenSource(app.Lifetime.ApplicationStopping);
        if (sharedKeys!.TokenMade)
        {
            Startup.LogServerTokenMade(logger, sharedKeys.TokenPath);
        }

        _ = sharedKeys.FollowAsync(keyring, () => role.IsLeader, app.Lifetime.ApplicationStopping);
        var follower = await app.Services.GetRequiredService<StoreFollower>().StartAsync(following.Token);
        app.Services.GetRequiredService<TaskDispatcher>(); // the agents connected here hear of their tasks from the watch
        await app.StartAsync();
        Serving();
        leading = LeadAsync(etcd, follower, following);
    }
    else
    {
        // Kestrel starts, and the first TLS handshakes run, while the state loads; requests wait for it (`loaded`),
        // and so does the start's end (ServingGate).
        loaded = Task.Run(() => LoadAsLeaderAsync(stateLoading));
        await app.StartAsync();
        Serving();
    }
}
catch (OperationCanceledException) when (app.Lifetime.ApplicationStopping.IsCancellationRequested)
{
    // Stopped (SIGTERM) while still starting: a clean exit, not a crash.
    Startup.LogStopped(logger);
    return 0;
}
catch (Grpc.Core.RpcException e) when (store is EtcdKeyValueStore etcd)
{
    // etcd unreachable, refusing us, or without quorum: one clear line (systemd tries again), not a stack.
    Startup.LogStoreUnreachable(logger, etcd.Description, e.Status.StatusCode, e.Status.Detail);
    return 1;
}

await app.WaitForShutdownAsync();
Startup.LogStopped(logger);
if (await leading is { } leadership)
{
    await leadership.DisposeAsync(); // resigns, the writes done: a following coordinator leads at once
}

await app.DisposeAsync();

return Environment.ExitCode;

// The gRPC services are bound (reflection over every method, about 100 ms).
void MapServices()
{
    app.MapGrpcService<EcsService>();
    app.MapGrpcService<AgentChannelService>();
    app.MapGrpcService<AgentPeersService>();
    app.MapGrpcService<TaskLogsService>();
    app.MapGrpcService<IamService>();
    app.MapGrpcService<ActivationsService>();
    app.MapGrpcService<SchedulerService>();
    app.MapGrpcService<SecretsService>();
    app.MapGrpcService<CloudWatchLogsService>();
    app.MapGrpcService<EventsService>();
    app.MapGrpcService<EnrollmentService>();
    app.MapGrpcReflectionService();
    app.MapPost("/", (HttpContext http, AwsJsonApi api) => api.HandleAsync(http));
    app.MapPost("/stream", (HttpContext http, AwsJsonApi api) => api.HandleStreamAsync(http));
    app.MapGet("/metrics", MetricsEndpoint.ServeAsync);
    app.MapGet("/", (HttpContext http) => http.Response.Redirect("/dashboard/"));
    app.MapGet("/dashboard/{file?}", (HttpContext http, DashboardFiles files, string? file) => files.ServeAsync(http, file));
    app.MapGrpcHealthChecksService();
}

// The state, the secrets and the users as the store's one writer; from then on every committed task change reaches its agent.
// (The cluster state itself may be loading already: `state`.)
async Task LoadAsLeaderAsync(Task? state = null)
{
    await (state ?? LoadStateAsync());
    await app.Services.GetRequiredService<SecretStore>().LoadAsync(app.Lifetime.ApplicationStopping); // before any agent is sent a task
    app.Services.GetRequiredService<TaskDispatcher>();
    await app.Services.GetRequiredService<IamStore>().LoadAsync(app.Lifetime.ApplicationStopping);
    await app.Services.GetRequiredService<SecretStore>().FinishRotationAsync(app.Lifetime.ApplicationStopping);
    role.Lead();

    // Agents held here while following were told what the watch had applied: the loaded state is the word now.
    app.Services.GetRequiredService<TaskDispatcher>().SendFullSets();
}

Task LoadStateAsync() =>
    app.Services.GetRequiredService<ClusterStateMachine>().LoadAsync(app.Lifetime.ApplicationStopping, keepConnections: store is EtcdKeyValueStore);

void Serving()
{
    Startup.LogListening(logger, options.Listen, typeof(CoordinatorOptions).Assembly.GetName().Version?.ToString(3) ?? "?",
        options.InsecureTestMode ? "HTTP/2 cleartext, NO AUTHENTICATION (InsecureTestMode, for benchmarks)" : $"TLS, cluster CA SHA-256 {certificates.AnchorSha256}");
    Startup.LogAdminSocket(logger, options.AdminSocket);
}

// Campaigns until this coordinator leads (again after a failure: etcd may have lost its quorum), then stops
// following, loads the state as its writer and leads. While its lease is in doubt it holds still
// (CoordinatorRole.Acting); on losing the lead it stops (exit 75: systemd starts it again, and it follows).
// Returns the lead once it leads (null if stopped first), for resigning after the writes.
async Task<EtcdLeadership?> LeadAsync(EtcdKeyValueStore etcd, Task follower, CancellationTokenSource following)
{
    var self = new LeaderRecord($"{Environment.MachineName} ({options.Listen}, pid {Environment.ProcessId})", options.AdvertisedUrl());
    var stopping = app.Lifetime.ApplicationStopping;
    EtcdLeadership? leadership = null;
    while (leadership is null && !stopping.IsCancellationRequested)
    {
        try
        {
            leadership = await EtcdLeadership.CampaignAsync(etcd, self, options.LeaderLeaseTtl, role.Follow, logger, stopping,
                holding: hold => { if (hold) role.Hold(); else role.Resume(); });
        }
        catch (Exception e) when (!stopping.IsCancellationRequested)
        {
            Startup.LogCampaignFailed(logger, e.Message);
            role.Follow(null);
            await Task.Delay(TimeSpan.FromSeconds(1), stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        catch (OperationCanceledException)
        {
        }
    }

    if (leadership is null)
    {
        return null;
    }

    leadership.Lost.Register(() =>
    {
        Environment.ExitCode = 75; // EX_TEMPFAIL: systemd starts it again, and it follows
        app.Lifetime.StopApplication();
    });
    try
    {
        following.Cancel();
        await follower;
        await LoadAsLeaderAsync();
    }
    catch (Exception e) when (!stopping.IsCancellationRequested)
    {
        Startup.LogLeadFailed(logger, e);
        Environment.ExitCode = 75;
        app.Lifetime.StopApplication();
    }
    catch (OperationCanceledException)
    {
    }

    return leadership;
}

static string? ConfigFile(string[] args)
{
    for (var i = 0; i < args.Length; i++)
    {
        if (args[i] == "--config" && i + 1 < args.Length)
        {
            return args[i + 1];
        }

        if (args[i].StartsWith("--config=", StringComparison.Ordinal))
        {
            return args[i]["--config=".Length..];
        }
    }

    return null;
}

/// <summary>
/// SERVING once the cluster state has been loaded from the store and a coordinator leads (this one, or the
/// one a follower forwards changes to): the whole API is answered. A follower that knows no leader (an
/// election, etcd without quorum) still answers reads, but is NOT_SERVING until changes can be made again.
/// </summary>
internal sealed class StoreHealthCheck(ClusterStateMachine state, CoordinatorRole role) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(!state.Loaded ? HealthCheckResult.Unhealthy("loading the cluster state")
            : role.IsLeader || role.Leader is not null ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy("no coordinator leads: reads only"));
}

/// <summary>
/// The end of the host's start, once Kestrel listens: the admin socket made 0600 as soon as it exists (Kestrel makes it
/// with the process's umask), then the start held until the state is loaded, so ApplicationStarted, and systemd's
/// READY=1 with it, still mean that the API serves.
/// </summary>
internal sealed class ServingGate(string adminSocket, Func<Task> loaded) : IHostedLifecycleService
{
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        File.SetUnixFileMode(adminSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return loaded();
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

internal static partial class Startup
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster store: {Store}")]
    public static partial void LogStore(ILogger logger, string store);

    [LoggerMessage(Level = LogLevel.Information, Message = "EcsLite coordinator {Version} listening on {Listen} (gRPC, the AWS JSON API, /metrics and /dashboard/, {Security}; reflection and grpc.health.v1 on)")]
    public static partial void LogListening(ILogger logger, string listen, string version, string security);

    [LoggerMessage(Level = LogLevel.Information, Message = "Admin socket {Path} (mode 0600; answers as the account's root)")]
    public static partial void LogAdminSocket(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopped; all acknowledged writes are in the cluster store")]
    public static partial void LogStopped(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "This store's coordinators share the cluster CA and secret keys through it, sealed with the server token in {Path}: start the others with it as ServerToken")]
    public static partial void LogServerTokenMade(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Cannot read the cluster store {Store}: {Code}, {Detail}")]
    public static partial void LogStoreUnreachable(ILogger logger, string store, Grpc.Core.StatusCode code, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot campaign to lead ({Reason}); following, and trying again in a second")]
    public static partial void LogCampaignFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Won the lead but could not load the state as its writer; stopping")]
    public static partial void LogLeadFailed(ILogger logger, Exception exception);
}
