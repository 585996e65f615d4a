using System.Collections.Concurrent;
using EcsLite.Agent;
using EcsLite.Api.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;

namespace EcsLite.FleetSimulator;

/// <summary>
/// A host that runs nothing but says it does: a real agent channel (the agent's own
/// <see cref="CoordinatorConnection"/>, so the protocol is shared, not copied) whose tasks go PENDING
/// then RUNNING after <paramref name="startDelay"/>, and STOPPED as soon as the coordinator wants.
/// It can die (its stream ends, as when the host is lost), stall (its stream stays open but its
/// heartbeats stop) and come back as the same instance. It joins with the token and holds its own
/// client certificate, as a real host does (in its data directory).
/// </summary>
/// <param name="started">Told of each task the moment this host reports it RUNNING.</param>
/// <param name="runFor">If set, each task ends on its own this long after RUNNING, as a batch job's essential container exits.</param>
public sealed class SimulatedAgent(
    Uri coordinator, string? joinToken, string dataDir, string hostname, int cpu, int memoryMiB, TimeSpan startDelay, Action<string>? started = null, TimeSpan? runFor = null)
    : IAgentRuntime, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, TaskStateChange> _tasks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _families = new(StringComparer.Ordinal);
    private readonly HashSet<string> _wanted = new(StringComparer.Ordinal);
    private CoordinatorConnection? _connection;
    private CancellationTokenSource? _running;
    private Task _run = Task.CompletedTask;

    public string? ContainerInstanceArn => _connection?.ContainerInstanceArn;

    /// <summary>Parts of full desired sets received (a set too large for one message comes in several).</summary>
    public int SetsReceived { get; private set; }

    /// <summary>How many times this host has been welcomed.</summary>
    public int Welcomes { get; private set; }

    public bool Connected => _connection?.Connected ?? false;

    /// <summary>Started and not killed.</summary>
    public bool Alive => _running is { IsCancellationRequested: false };

    /// <summary>Tasks this host holds that are not STOPPED, optionally only those of one task definition family.</summary>
    public int Running(string? family = null) =>
        _tasks.Values.Count(t => t.LastStatus != "STOPPED" && (family is null || _families.GetValueOrDefault(t.TaskArn) == family));

    /// <summary>Stops (or resumes) heartbeats on an open stream: a host that hangs rather than goes away.</summary>
    public bool Stalled
    {
        get => _connection?.HeartbeatsPaused ?? false;
        set => _connection!.HeartbeatsPaused = value;
    }

    /// <summary>Connects (again); completes once welcomed.</summary>
    public async Task StartAsync()
    {
        _running = new CancellationTokenSource();
        var identity = new InstanceIdentity(dataDir);
        identity.Load(); // back as the same instance, as a restarted agent is
        _connection = new CoordinatorConnection([coordinator], this, identity, new AgentCredentials(dataDir, joinToken).Load(), TimeProvider.System, NullLogger.Instance);
        var welcomed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _connection.Welcomed += (_, _) =>
        {
            Welcomes++;
            welcomed.TrySetResult();
        };
        _run = _connection.RunAsync(_running.Token);
        await welcomed.Task.WaitAsync(TimeSpan.FromMinutes(1));
    }

    /// <summary>The host is gone: its stream ends and its tasks "keep running" where nobody can reach them.</summary>
    public async Task DieAsync()
    {
        await _running!.CancelAsync();
        await _run;
    }

    public AgentHello Hello(string? containerInstanceArn)
    {
        var hello = new AgentHello { ContainerInstanceArn = containerInstanceArn ?? "", Cluster = "default", Hostname = hostname, VersionInfo = new VersionInfo { AgentVersion = "simulated" } };
        hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = cpu });
        hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = memoryMiB });
        hello.Attributes.Add(new Api.V1.Attribute { Name = "ecs.os-type", Value = "linux" });
        hello.Attributes.Add(new Api.V1.Attribute { Name = "hostname", Value = hostname });
        hello.Tasks.Add(_tasks.Values.Select(t => t.Clone()));
        return hello;
    }

    public HostUsage Usage() => new() { CpuPercent = 1, MemoryUsedMiB = 512, MemoryAvailableMiB = memoryMiB };

    public Task ApplyAsync(DesiredTaskSet desired, CancellationToken cancellationToken)
    {
        if (desired.Full)
        {
            // A full set may come in parts: only its last part drops what none of them named.
            if (desired.Part == 0)
            {
                _wanted.Clear();
            }

            _wanted.UnionWith(desired.Tasks.Select(t => t.TaskArn));
            if (!desired.More)
            {
                foreach (var gone in _tasks.Keys.Where(arn => !_wanted.Contains(arn)))
                {
                    _tasks.TryRemove(gone, out _);
                    _families.TryRemove(gone, out _);
                }
            }

            SetsReceived++;
        }

        foreach (var task in desired.Tasks)
        {
            var known = _tasks.GetValueOrDefault(task.TaskArn);
            if (task.DesiredStatus == "RUNNING" && (known is null || known.LastStatus == "PENDING"))
            {
                _families[task.TaskArn] = task.TaskDefinition?.Family ?? "";
                Report(new TaskStateChange { TaskArn = task.TaskArn, LastStatus = "PENDING", DesiredStatus = "RUNNING" });
                _ = StartLaterAsync(task.TaskArn, cancellationToken);
            }
            else if (task.DesiredStatus == "STOPPED" && known?.LastStatus != "STOPPED")
            {
                // As the agent does, also for a task it never ran: it is STOPPED as far as this host goes.
                var now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);
                Report(new TaskStateChange { TaskArn = task.TaskArn, LastStatus = "STOPPED", DesiredStatus = "STOPPED", StoppedAt = now, ExecutionStoppedAt = now, StartedAt = known?.StartedAt });
            }
        }

        return Task.CompletedTask;
    }

    public IAsyncEnumerable<LogChunk> LogsAsync(LogRequest request, CancellationToken cancellationToken) =>
        throw new LogsUnavailableException("ResourceNotFoundException: a simulated host keeps no logs");

    public async ValueTask DisposeAsync()
    {
        if (_running is not null)
        {
            await DieAsync();
        }
    }

    private async Task StartLaterAsync(string taskArn, CancellationToken cancellationToken)
    {
        try
        {
            if (startDelay > TimeSpan.Zero)
            {
                await Task.Delay(startDelay, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            return; // the stream ended; the next hello reports it PENDING and it is started again
        }

        if (_tasks.TryGetValue(taskArn, out var known) && known.LastStatus == "PENDING")
        {
            var startedAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);
            Report(new TaskStateChange { TaskArn = taskArn, LastStatus = "RUNNING", DesiredStatus = "RUNNING", StartedAt = startedAt });
            started?.Invoke(taskArn);
            if (runFor is { } lifetime)
            {
                await Task.Delay(lifetime, CancellationToken.None).ConfigureAwait(false);
                if (_tasks.TryGetValue(taskArn, out var running) && running.LastStatus == "RUNNING")
                {
                    var now = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);
                    Report(new TaskStateChange
                    {
                        TaskArn = taskArn, LastStatus = "STOPPED", DesiredStatus = "STOPPED", StopCode = "EssentialContainerExited",
                        StoppedReason = "Essential container in task exited", StartedAt = startedAt, StoppedAt = now, ExecutionStoppedAt = now,
                    });
                }
            }
        }
    }

    private void Report(TaskStateChange change)
    {
        _tasks[change.TaskArn] = change;
        _connection?.Report(change);
    }
}
