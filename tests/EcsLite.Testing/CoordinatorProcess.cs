using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using EcsLite.Api.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace EcsLite.Testing;

/// <summary>
/// The real ecslite-coordinator, started as its own process on a free loopback port with its own data
/// directory. Tests talk to it over real gRPC and can stop it with SIGTERM or SIGKILL and start it again
/// on the same data.
/// </summary>
public sealed partial class CoordinatorProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private Process? _process;

    private CoordinatorProcess(string dataDir, int port)
    {
        DataDir = dataDir;
        Port = port;
        Channel = GrpcChannel.ForAddress(Address);
        Ecs = new Ecs.EcsClient(Channel);
    }

    public string DataDir { get; }

    public int Port { get; }

    public string Address => $"http://127.0.0.1:{Port}";

    /// <summary>A channel to the current process; a new one after each start, so no reconnect backoff carries over.</summary>
    public GrpcChannel Channel { get; private set; }

    public Ecs.EcsClient Ecs { get; private set; }

    public int ProcessId => _process?.Id ?? 0;

    /// <summary>Everything the process printed so far, for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Time from process start to the health service answering SERVING, for the last start.</summary>
    public TimeSpan LastStartToServing { get; private set; }

    public static async Task<CoordinatorProcess> StartAsync(string? dataDir = null, params string[] extraArgs)
    {
        var coordinator = new CoordinatorProcess(dataDir ?? TempDirectory("ecslite-coordinator"), FreePort());
        await coordinator.StartAgainAsync(extraArgs);
        return coordinator;
    }

    public async Task StartAgainAsync(params string[] extraArgs)
    {
        var program = RepoPaths.Coordinator;
        var info = new ProcessStartInfo(program.EndsWith(".dll", StringComparison.Ordinal) ? "dotnet" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (program.EndsWith(".dll", StringComparison.Ordinal))
        {
            info.ArgumentList.Add(program);
        }

        foreach (var arg in new[] { "--listen", $"127.0.0.1:{Port}", "--data-dir", DataDir }.Concat(extraArgs))
        {
            info.ArgumentList.Add(arg);
        }

        var watch = Stopwatch.StartNew();
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the coordinator");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        Channel.Dispose();
        Channel = GrpcChannel.ForAddress(Address);
        Ecs = new Ecs.EcsClient(Channel);
        await WaitServingAsync(TimeSpan.FromSeconds(30));
        LastStartToServing = watch.Elapsed;
    }

    public async Task WaitServingAsync(TimeSpan timeout)
    {
        var health = new Health.HealthClient(Channel);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"the coordinator exited with {_process.ExitCode}:\n{Output}");
            }

            // Probe with a plain TCP connect first: a refused gRPC connection puts the channel into a
            // reconnect backoff of about a second, which would be measured as start-up time.
            if (!await AcceptsConnectionsAsync())
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
            catch (RpcException) when (DateTime.UtcNow < deadline)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the coordinator did not become SERVING within {timeout}:\n{Output}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>SIGKILL: no chance to flush or clean up, as in a power cut of the process.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    /// <summary>SIGTERM, then wait for a graceful exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (_process is not { HasExited: false } process)
        {
            return _process?.ExitCode ?? 0;
        }

        _ = SendSignal(process.Id, 15);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        await process.WaitForExitAsync(cts.Token);
        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
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

    private async Task<bool> AcceptsConnectionsAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}

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

    public static string Examples => Path.Combine(Root, "examples");

    /// <summary>The ECS API model, in ../shared beside the repository (also in CI).</summary>
    public static string EcsModel => Path.Combine(Root, "..", "shared", "reference", "ecs-api-model.json");

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
