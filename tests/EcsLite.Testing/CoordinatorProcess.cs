using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EcsLite.Api.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Health.V1;
using Grpc.Net.Client;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EcsLite.Security;

namespace EcsLite.Testing;

/// <summary>
/// The real ecslite-coordinator, started as its own process with its own data directory, by default on a
/// free loopback port. Tests talk to it over real gRPC and can stop it with SIGTERM or SIGKILL and start
/// it again on the same data. Inside a network namespace it is started through a wrapper
/// (ip netns exec NS) and listens where the test says.
/// </summary>
public sealed class CoordinatorProcess : IAsyncDisposable
{
    private readonly string _listen;
    private readonly IReadOnlyList<string>? _wrapper;
    private TestProcess? _process;

    private CoordinatorProcess(string dataDir, int port, string listen, string address, IReadOnlyList<string>? wrapper)
    {
        DataDir = dataDir;
        Port = port;
        _listen = listen;
        Address = address;
        _wrapper = wrapper;
        Channel = NewChannel();
        Ecs = new Ecs.EcsClient(Channel.Intercept(UnaryDeadline.Default));
    }

    public string DataDir { get; }

    /// <summary>This coordinator's admin socket (in its data directory, so that tests never share one).</summary>
    public string AdminSocket => Path.Combine(DataDir, "admin.sock");

    /// <summary>
    /// The administrator's access key, from DATA_DIR/admin-credentials (written at the first start):
    /// every channel of this fixture sends it, so tests go through authentication as any caller does.
    /// </summary>
    public (string AccessKeyId, string Secret) AdminKey => _adminKey ??= ReadCredentials(Path.Combine(DataDir, "admin-credentials"));

    private (string, string)? _adminKey;

    /// <summary>The cluster CA, which tests trust the coordinator by (as grpcurl's -cacert does).</summary>
    public string CaFile => Path.Combine(DataDir, "tls", "ca.crt");

    /// <summary>A join token for up to 1000 hosts, made at the first start: what agents of this fixture join with.</summary>
    public string JoinToken { get; private set; } = "";

    /// <summary>A new channel (a connection of its own) that authenticates with <paramref name="key"/>, or the administrator's key.</summary>
    public GrpcChannel NewChannel((string AccessKeyId, string Secret)? key = null) =>
        // Before the first start has written the file (the health probe), calls go without.
        AuthenticatedChannel(Address, () => key ?? _adminKey ?? (File.Exists(Path.Combine(DataDir, "admin-credentials")) ? AdminKey : null), CaFile);

    /// <summary>
    /// A channel whose every call sends "authorization: Bearer ID:SECRET" with the key <paramref name="key"/>
    /// gives at the time (none if null), over TLS trusting only the CA in <paramref name="caFile"/>
    /// (read when connecting: a coordinator makes it at its first start); plaintext for http:// addresses.
    /// </summary>
    public static GrpcChannel AuthenticatedChannel(string address, Func<(string AccessKeyId, string Secret)?> key, string? caFile = null, X509Certificate2? clientCertificate = null) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = TrustingHandler(caFile, clientCertificate),
            Credentials = ChannelCredentials.Create(address.StartsWith("https:", StringComparison.Ordinal) ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
                CallCredentials.FromInterceptor((_, metadata) =>
                {
                    if (key() is var (id, secret))
                    {
                        metadata.Add("authorization", $"Bearer {id}:{secret}");
                    }

                    return Task.CompletedTask;
                })),
            UnsafeUseInsecureChannelCallCredentials = true,
        });

    /// <summary>A handler that trusts the server only if its certificate chains to the CA in <paramref name="caFile"/> (and names the address).</summary>
    public static SocketsHttpHandler TrustingHandler(string? caFile, X509Certificate2? clientCertificate = null) => new()
    {
        EnableMultipleHttp2Connections = true,
        SslOptions = new SslClientAuthenticationOptions
        {
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                caFile is not null && certificate is not null && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
                && ClusterCertificates.ChainsTo(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()),
                    X509CertificateLoader.LoadCertificateFromFile(caFile), ClusterCertificates.ServerAuth),
        },
    };

    /// <summary>A certificate and its key as a TLS client presents them (through PKCS#12, so the key is not an ephemeral one).</summary>
    public static X509Certificate2 ClientCertificate(X509Certificate2 certificate, ECDsa? key = null)
    {
        using var withKey = key is null ? null : certificate.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12((withKey ?? certificate).Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>
    /// Joins a host the way an agent does (a key, a certificate request, the join token) and returns
    /// its instance and a channel that presents its client certificate: for speaking the agent
    /// protocol directly. Nothing is written to disk.
    /// </summary>
    public async Task<EnrolledHost> EnrollAsync(string hostname = "test-host", string cluster = "", string? joinToken = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var response = await new Enrollment.EnrollmentClient(Channel).EnrollAsync(new EnrollRequest
        {
            JoinToken = joinToken ?? JoinToken,
            CertificateSigningRequest = Google.Protobuf.ByteString.CopyFrom(ClusterCertificates.RequestFor(key)),
            Cluster = cluster,
            Hostname = hostname,
        });
        using var issued = X509Certificate2.CreateFromPem(response.Certificate);
        var certificate = ClientCertificate(issued, key);
        return new EnrolledHost(response.ContainerInstanceArn, certificate, AuthenticatedChannel(Address, () => null, CaFile, certificate));
    }

    /// <summary>Reads an AWS shared-credentials file's default profile.</summary>
    public static (string AccessKeyId, string Secret) ReadCredentials(string path)
    {
        var values = File.ReadAllLines(path).Select(l => l.Split('=', 2, StringSplitOptions.TrimEntries)).Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1]);
        return (values["aws_access_key_id"], values["aws_secret_access_key"]);
    }

    public int Port { get; }

    /// <summary>Where tests (and agents on this host) reach it, e.g. https://127.0.0.1:PORT.</summary>
    public string Address { get; }

    /// <summary>A channel to the current process; a new one after each start, so no reconnect backoff carries over.</summary>
    public GrpcChannel Channel { get; private set; }

    public Ecs.EcsClient Ecs { get; private set; }

    public int ProcessId => _process?.Id ?? 0;

    /// <summary>Everything the process printed so far, for failure messages.</summary>
    public string Output => _process?.Output ?? "";

    /// <summary>Time from process start to the health service answering SERVING, for the last start.</summary>
    public TimeSpan LastStartToServing { get; private set; }

    /// <summary>Where the process starts (the test's own directory unless set), as a unit's WorkingDirectory= would put it.</summary>
    public string? WorkingDirectory { get; set; }

    public static async Task<CoordinatorProcess> StartAsync(string? dataDir = null, params string[] extraArgs)
    {
        // A port found free may be taken before the coordinator binds it (other test processes pick ports,
        // and outgoing connections take them too): then another port, on a store of its own.
        for (var attempt = 1; ; attempt++)
        {
            var coordinator = Create(dataDir);
            try
            {
                await coordinator.StartAgainAsync(extraArgs);
                return coordinator;
            }
            catch (InvalidOperationException e) when (attempt < 3 && dataDir is null && e.Message.Contains("address already in use", StringComparison.Ordinal))
            {
                await coordinator.DisposeAsync();
            }
        }
    }

    /// <summary>Starts a given build of the coordinator (e.g. the one a package installed) on a store of its own.</summary>
    public static async Task<CoordinatorProcess> StartBuildAsync(string program)
    {
        var port = FreePort();
        var coordinator = new CoordinatorProcess(TempDirectory("ecslite-coordinator"), port, $"127.0.0.1:{port}", $"https://127.0.0.1:{port}", null) { _program = program };
        await coordinator.StartAgainAsync();
        return coordinator;
    }

    private string _program = RepoPaths.Coordinator;

    /// <summary>Starts a coordinator listening on <paramref name="listen"/>, reached by tests at <paramref name="address"/>.</summary>
    public static async Task<CoordinatorProcess> StartListeningAsync(string? dataDir, string listen, string address, IReadOnlyList<string>? wrapper, params string[] extraArgs)
    {
        var coordinator = new CoordinatorProcess(dataDir ?? TempDirectory("ecslite-coordinator"), new Uri(address).Port, listen, address, wrapper);
        await coordinator.StartAgainAsync(extraArgs);
        return coordinator;
    }

    /// <summary>A coordinator not started yet, on a port and (unless given) a data directory of its own.</summary>
    public static CoordinatorProcess Create(string? dataDir = null)
    {
        var port = FreePort();
        return new CoordinatorProcess(dataDir ?? TempDirectory("ecslite-coordinator"), port, $"127.0.0.1:{port}", $"https://127.0.0.1:{port}", null);
    }

    /// <summary>
    /// A standby for <paramref name="leader"/>'s etcd store, started and waiting to lead. It takes the cluster
    /// CA and the key that encrypts secrets from the store with the leader's server token (as
    /// docs/high-availability.md says), and is given a copy of the administrator's credentials file (the
    /// key itself is in the store).
    /// </summary>
    public static async Task<CoordinatorProcess> StartStandbyAsync(CoordinatorProcess leader, params string[] extraArgs)
    {
        var standby = Create();
        File.Copy(Path.Combine(leader.DataDir, "admin-credentials"), Path.Combine(standby.DataDir, "admin-credentials"));
        standby.Launch([.. extraArgs, $"--ServerToken={leader.ServerToken}"]);
        await standby.WaitForOutputAsync("Waiting to lead", TimeSpan.FromSeconds(30));
        return standby;
    }

    /// <summary>The token the coordinators of an etcd store seal their shared CA and keys with (the first one made it).</summary>
    public string ServerToken => File.ReadAllText(Path.Combine(DataDir, "server-token")).Trim();

    /// <summary>Starts the process (again) on the same store; without arguments, with those it was last started with.</summary>
    public async Task StartAgainAsync(params string[] extraArgs)
    {
        var watch = Stopwatch.StartNew();
        Launch(extraArgs);
        await WaitServingAsync(TimeSpan.FromSeconds(30));
        LastStartToServing = watch.Elapsed;
        if (JoinToken.Length == 0)
        {
            JoinToken = (await new Activations.ActivationsClient(Channel).CreateActivationAsync(
                new CreateActivationRequest { Description = "test fixture", RegistrationLimit = 1000 })).JoinToken;
        }
    }

    /// <summary>Starts the process without waiting for it to serve (one that waits to lead an etcd store does not).</summary>
    public void Launch(params string[] extraArgs)
    {
        if (extraArgs.Length > 0)
        {
            _settings = extraArgs;
        }

        var program = _program;
        var command = new List<string>();
        if (program.EndsWith(".dll", StringComparison.Ordinal))
        {
            command.Add("dotnet");
        }

        command.AddRange([program, "--listen", _listen, "--data-dir", DataDir, "--admin-socket", AdminSocket, .. _settings]);
        _process = TestProcess.Start(command, wrapper: _wrapper, workingDirectory: WorkingDirectory);
        Channel.Dispose();
        Channel = NewChannel();
        Ecs = new Ecs.EcsClient(Channel.Intercept(UnaryDeadline.Default));
    }

    private string[] _settings = [];

    public async Task WaitServingAsync(TimeSpan timeout)
    {
        var health = new Health.HealthClient(Channel);
        var deadline = DateTime.UtcNow + timeout;
        var endpoint = new Uri(Address);
        while (true)
        {
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"the coordinator exited with {_process.ExitCode}:\n{Output}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the coordinator did not become SERVING within {timeout}:\n{Output}");
            }

            // Probe with a plain TCP connect first: a refused gRPC connection puts the channel into a
            // reconnect backoff of about a second, which would be measured as start-up time.
            if (!await AcceptsConnectionsAsync(endpoint.Host, endpoint.Port))
            {
                await Task.Delay(10);
                continue;
            }

            try
            {
                var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
                if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return;
                }
            }
            catch (RpcException)
            {
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Runs <c>ecslite-coordinator ARGS --admin-socket</c> (this fixture's): the administration commands, as an operator on this host would.</summary>
    public Task<(int ExitCode, string Output)> RunCliAsync(params string[] args)
    {
        var program = RepoPaths.Coordinator;
        string[] command = [.. args, "--admin-socket", AdminSocket];
        return program.EndsWith(".dll", StringComparison.Ordinal)
            ? ProcessRunner.RunAsync("dotnet", [program, .. command], timeoutSeconds: 60)
            : ProcessRunner.RunAsync(program, command, timeoutSeconds: 60);
    }

    /// <summary>The audit log's lines once <paramref name="complete"/> holds of them (within 10 s).</summary>
    public async Task<List<string>> AuditAsync(Func<List<string>, bool> complete)
    {
        var path = Path.Combine(DataDir, "audit.log");
        var lines = new List<string>();
        await Eventually.HoldsAsync(() =>
        {
            lines = File.Exists(path) ? [.. File.ReadAllLines(path)] : [];
            return complete(lines);
        }, TimeSpan.FromSeconds(10), "the audit log to hold the expected records");
        return lines;
    }

    /// <summary>SIGKILL: no chance to flush or clean up, as in a power cut of the process.</summary>
    public Task KillAsync() => _process?.KillAsync() ?? Task.CompletedTask;

    public Task WaitForOutputAsync(string text, TimeSpan timeout) => _process!.WaitForOutputAsync(text, timeout);

    public Task<int> WaitForExitAsync(TimeSpan timeout) => _process!.WaitForExitAsync(timeout);

    /// <summary>SIGTERM, then wait for a graceful exit; returns the exit code.</summary>
    public Task<int> StopAsync(TimeSpan? timeout = null) => _process?.StopAsync(timeout) ?? Task.FromResult(0);

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }

        Channel.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static string TempDirectory(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits until the port takes TCP connections (not until it serves); returns the moment it first did.</summary>
    public async Task<DateTimeOffset> WaitAcceptingAsync(TimeSpan timeout)
    {
        var endpoint = new Uri(Address);
        var deadline = DateTime.UtcNow + timeout;
        while (!await AcceptsConnectionsAsync(endpoint.Host, endpoint.Port))
        {
            if (DateTime.UtcNow > deadline || _process is { HasExited: true })
            {
                throw new TimeoutException($"the coordinator's port took no connection within {timeout}:\n{Output}");
            }

            await Task.Delay(5);
        }

        return DateTimeOffset.UtcNow;
    }

    private static async Task<bool> AcceptsConnectionsAsync(string host, int port)
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(host, port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }
}

/// <summary>A host enrolled by a test: its instance, its client certificate, and a channel that presents it.</summary>
public sealed record EnrolledHost(string ContainerInstanceArn, X509Certificate2 Certificate, GrpcChannel Channel);

/// <summary>Where the repository's files and build outputs are, found from the test assembly's location.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>The build configuration the tests were built in (Debug or Release); the coordinator is built alongside.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string CoordinatorDll =>
        Path.Combine(Root, "coordinator", "EcsLite.Coordinator", "bin", Configuration, "net10.0", "ecslite-coordinator.dll");

    /// <summary>
    /// The coordinator to start: ECSLITE_COORDINATOR if set (e.g. the published, ReadyToRun build that
    /// install.sh ships, for benchmarks), else the build next to the tests.
    /// </summary>
    public static string Coordinator => Environment.GetEnvironmentVariable("ECSLITE_COORDINATOR") is { Length: > 0 } path ? path : CoordinatorDll;

    public static string AgentDll =>
        Path.Combine(Root, "agent", "EcsLite.Agent", "bin", Configuration, "net10.0", "ecslite-agent.dll");

    /// <summary>The agent as a NativeAOT executable for this machine, as packaging/build-agent.sh makes it (test.sh runs it first).</summary>
    public static string NativeAgent =>
        NativeAgentFor(System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "arm64" : "x64");

    /// <summary>The NativeAOT agent for an architecture (x64 or arm64), as <c>packaging/build-agent.sh ARCH</c> makes it.</summary>
    public static string NativeAgentFor(string arch) => Path.Combine(Root, "artifacts", "agent", $"linux-{arch}", "ecslite-agent");

    public static string Examples => Path.Combine(Root, "examples");

    /// <summary>The ECS API model the proto is generated from, kept in the repository with its licence (proto/model).</summary>
    public static string EcsModel => Path.Combine(Root, "proto", "model", "ecs-api-model.json");

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "EcsLite.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("EcsLite.sln not found above " + AppContext.BaseDirectory);
    }
}
