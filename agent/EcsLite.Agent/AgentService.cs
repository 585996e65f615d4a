using EcsLite.Agent.Core;
using EcsLite.Agent.Docker;
using EcsLite.Agent.Tasks;
using EcsLite.Api.V1;
using Microsoft.Extensions.Hosting.Systemd;

namespace EcsLite.Agent;

/// <summary>
/// Runs the agent channel for this host. Start-up completes only once the host has joined its cluster,
/// so under systemd (Type=notify) READY=1 means "registered"; SIGTERM then sends STOPPING=1.
/// While the agent runs, WATCHDOG=1 is sent at half the unit's WatchdogSec, unless the loop that takes
/// the coordinator's messages has been stuck in one for that long.
/// </summary>
public sealed partial class AgentService : IHostedService, IAgentRuntime
{
    private readonly HostInspector _host;
    private readonly AgentSettings _settings;
    private readonly TimeProvider _time;
    private TaskEngine? _tasks;
    private AgentMetrics? _metrics;
    private readonly CoordinatorConnection _connection;
    private readonly ISystemdNotifier? _systemd;
    private readonly ILogger<AgentService> _logger;
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>How long after the first welcome start-up's memory is given back: the first desired set has come and been acted on.</summary>
    private static readonly TimeSpan StartupSettles = TimeSpan.FromSeconds(10);

    private int _startupReleased;
    private Task _running = Task.CompletedTask;

    private readonly TaskStore _store;
    private readonly InstanceIdentity _identity;

    public AgentService(AgentSettings settings, HostInspector host, InstanceIdentity identity, TimeProvider time, ILogger<AgentService> logger, ISystemdNotifier? systemd = null)
    {
        _store = new TaskStore(settings.DataDir);
        _identity = identity;
        _host = host;
        _settings = settings;
        _time = time;
        _logger = logger;
        _systemd = systemd is { IsEnabled: true } ? systemd : null;
        _connection = new CoordinatorConnection(settings.Coordinators, this, identity, new AgentCredentials(settings.DataDir, settings.JoinToken).Load(), time, logger);
        _connection.Welcomed += (welcome, coordinator) =>
        {
            _systemd?.Notify(new ServiceState($"STATUS=Joined {coordinator} as {welcome.ContainerInstanceArn}"));
            if (Interlocked.Exchange(ref _startupReleased, 1) == 0)
            {
                _ = ReleaseStartupMemoryAsync(_stopping.Token);
            }
        };
    }

    public CoordinatorConnection Connection => _connection;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // After a restart, take back this host's tasks before saying hello, so the hello reports them.
        if (!_store.IsEmpty && _identity.ContainerInstanceArn is { } arn)
        {
            _tasks = CreateEngine();
            await _tasks.AdoptAsync(arn, _identity.Cluster ?? _settings.Cluster, cancellationToken);
        }

        if (_settings.MetricsListen is { } listen)
        {
            StartMetrics(listen);
        }

        if (!HostInspector.MemoryCgroupEnabled())
        {
            LogNoMemoryCgroup(_logger);
        }

        _running = Task.WhenAll(_connection.RunAsync(_stopping.Token), WatchdogAsync(_stopping.Token));
        LogWaiting(_logger);
        try
        {
            await _connection.Registered.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped (SIGTERM) before a coordinator welcomed this host: a clean stop, not a crash; StopAsync follows.
            LogStoppedBeforeJoining(_logger);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _metrics?.Dispose();
        await _stopping.CancelAsync();
        await _running.WaitAsync(cancellationToken);
        if (_tasks is not null)
        {
            // Containers keep running: the agent leaves them to Docker and adopts them when it comes back.
            await _tasks.DisposeAsync();
        }
    }

    public AgentHello Hello(string? containerInstanceArn) => _host.Hello(containerInstanceArn, _tasks?.Snapshot() ?? []);

    public HostUsage Usage() => _host.Usage();

    /// <summary>
    /// Hands the desired tasks to the task engine. The engine (and with it the Docker client) is created
    /// on the first task, so an agent with nothing to run stays small.
    /// </summary>
    public Task ApplyAsync(DesiredTaskSet desired, CancellationToken cancellationToken)
    {
        if (_tasks is null && desired.Tasks.Count == 0)
        {
            return Task.CompletedTask;
        }

        _tasks ??= CreateEngine();
        return _tasks.ApplyAsync(desired, _connection.ContainerInstanceArn ?? "", _connection.Cluster ?? _settings.Cluster, cancellationToken);
    }

    public IAsyncEnumerable<LogChunk> LogsAsync(LogRequest request, CancellationToken cancellationToken) =>
        _tasks?.LogsAsync(request, cancellationToken)
            ?? throw new LogsUnavailableException($"ResourceNotFoundException: task {request.TaskArn} is not on this host");

    /// <summary>
    /// Out of line, so the metrics library loads only when metrics are on. A port taken by something else
    /// costs the agent its metrics, not its tasks.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void StartMetrics(System.Net.IPEndPoint listen)
    {
        try
        {
            _metrics = new AgentMetrics(listen, () => _tasks, _connection);
            LogMetrics(_logger, listen.ToString());
        }
        catch (System.Net.HttpListenerException e)
        {
            LogMetricsFailed(_logger, listen.ToString(), e.Message);
        }
    }

    /// <summary>Kept out of line so the Docker client's assemblies load only when there is a task.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private TaskEngine CreateEngine()
    {
        var engine = new TaskEngine(DockerRuntime.Connect(_settings.DockerEndpoint, _metrics is null ? null : _metrics.ObserveDockerCall), _store, _settings, _time, _logger);
        engine.Changed += change => _connection.Report(change);
        return engine;
    }

    private async Task WatchdogAsync(CancellationToken cancellationToken)
    {
        if (_systemd is null || !long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), out var usec) || usec <= 0)
        {
            return;
        }

        var half = TimeSpan.FromMicroseconds(usec / 2);
        using var timer = new PeriodicTimer(half);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (!_connection.BusyLongerThan(half))
                {
                    _systemd.Notify(new ServiceState("WATCHDOG=1"));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Joining (a key, enrolment, the first TLS handshakes, the hello, the first desired set) leaves
    /// garbage and heap the idle agent never needs again, and the GC keeps the pages it grew into.
    /// One compacting collection once that is over gives them back to the host: about 4 MB of the
    /// idle NativeAOT agent's 34 MB (docs/benchmarks.md), for a few milliseconds once.
    /// </summary>
    private async Task ReleaseStartupMemoryAsync(CancellationToken stopping)
    {
        try
        {
            await Task.Delay(StartupSettles, _time, stopping);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        var before = Environment.WorkingSet; // VmRSS, on Linux
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        PageOutStartupCode();
        LogStartupMemoryReleased(_logger, before / 1024, Environment.WorkingSet / 1024);
    }

    /// <summary>
    /// Most of the code and constant data start-up ran (hosting, enrolment, the first handshake) is never
    /// run again, yet stays resident: the kernel keeps what a process has touched until memory runs short.
    /// Those pages are handed back now (MADV_PAGEOUT, Linux 5.4+); what the agent runs from then on comes
    /// back from the file as it is touched, a page at a time (MADV_RANDOM: no read-ahead around it). Pages
    /// another process maps too (libc) are left where they are.
    /// </summary>
    private static unsafe void PageOutStartupCode()
    {
        const int MadvPageout = 21;
        string[] maps;
        try
        {
            maps = File.ReadAllLines("/proc/self/maps");
        }
        catch (IOException)
        {
            return;
        }

        foreach (var (start, length) in ProcessMaps.ReadOnlyFileMappings(maps))
        {
            _ = Tmds.Linux.LibC.madvise((void*)start, (Tmds.Linux.size_t)length, Tmds.Linux.LibC.MADV_RANDOM);
            _ = Tmds.Linux.LibC.madvise((void*)start, (Tmds.Linux.size_t)length, MadvPageout); // an older kernel says EINVAL: nothing given back
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Start-up memory given back: VmRSS {BeforeKb} kB, now {AfterKb} kB")]
    private static partial void LogStartupMemoryReleased(ILogger logger, long beforeKb, long afterKb);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The kernel's memory cgroup controller is off, so no task's memory limit can be enforced. "
        + "On a Raspberry Pi, add 'cgroup_enable=memory cgroup_memory=1' to the one line of /boot/firmware/cmdline.txt (/boot/cmdline.txt before Bookworm) and reboot")]
    private static partial void LogNoMemoryCgroup(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Metrics on http://{Listen}/metrics (Prometheus's text format)")]
    private static partial void LogMetrics(ILogger logger, string listen);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No metrics: cannot listen on {Listen} ({Reason}); set ECSLITE_METRICS_LISTEN to a free ADDRESS:PORT, or off")]
    private static partial void LogMetricsFailed(ILogger logger, string listen, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopped before a coordinator welcomed this host")]
    private static partial void LogStoppedBeforeJoining(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Joining the cluster; waiting for a coordinator to welcome this host")]
    private static partial void LogWaiting(ILogger logger);
}
