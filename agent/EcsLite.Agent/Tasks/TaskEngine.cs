using System.Collections.Concurrent;
using EcsLite.Agent.Core;
using EcsLite.Agent.Core.Tasks;
using EcsLite.Agent.Docker;
using EcsLite.Api.V1;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// This host's tasks: one supervisor per task, started when the coordinator first wants the task and
/// told when it wants it stopped. A full desired set also stops every task it no longer names.
/// </summary>
public sealed partial class TaskEngine(IContainerRuntime docker, TaskStore store, AgentSettings settings, TimeProvider time, ILogger logger,
    SupervisorTimings? timings = null) : IAsyncDisposable
{
    private readonly SupervisorTimings _timings = timings ?? SupervisorTimings.From(settings);
    private readonly ConcurrentDictionary<string, (TaskSupervisor Supervisor, Task Running)> _tasks = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _watching;
    private Task? _cleaningImages;
    private string? _cgroupDriver;
    private ImageCleaner? _images;
    private readonly HashSet<string> _wantedByFullSet = new(StringComparer.Ordinal);

    /// <summary>Every change of every task's state, in the order the supervisors saw them.</summary>
    public event Action<TaskStateChange>? Changed;

    public IEnumerable<TaskStateChange> Snapshot() => _tasks.Values.Select(t => t.Supervisor.Current);

    /// <summary>Every running container of every task, with its first process (for the metrics scrape).</summary>
    public IEnumerable<(TaskSupervisor Task, string Container, int Pid)> RunningContainers() =>
        _tasks.Values.SelectMany(t => t.Supervisor.RunningContainers().Select(c => (t.Supervisor, c.Container, c.Pid)));

    /// <summary>
    /// After a restart: takes back every task this host has containers for, as Docker's labels show
    /// them, without restarting any; each supervisor then finishes whatever transition was half done.
    /// </summary>
    public async Task AdoptAsync(string containerInstanceArn, string cluster, CancellationToken cancellationToken)
    {
        var owned = await docker.ListOwnedAsync(containerInstanceArn, cancellationToken);
        await LearnCgroupDriverAsync(cancellationToken);
        foreach (var task in store.LoadAll())
        {
            var containers = owned
                .Where(c => c.Labels.TryGetValue(ContainerSpec.TaskArnLabel, out var arn) && arn == task.TaskArn)
                .ToDictionary(c => c.Labels[ContainerSpec.ContainerNameLabel], c => c.ID, StringComparer.Ordinal);
            Start(task, containerInstanceArn, cluster, containers);
        }
    }

    public async Task ApplyAsync(DesiredTaskSet desired, string containerInstanceArn, string cluster, CancellationToken cancellationToken)
    {
        if (desired.Tasks.Count > 0)
        {
            await LearnCgroupDriverAsync(cancellationToken);
        }

        foreach (var task in desired.Tasks)
        {
            var status = task.DesiredStatus == "STOPPED" ? DesiredStatus.Stopped : DesiredStatus.Running;
            if (_tasks.TryGetValue(task.TaskArn, out var known))
            {
                known.Supervisor.Desire(status);
                known.Supervisor.Deliver(task); // its secrets, once more (an adopted task has none until now)
            }
            else if (status == DesiredStatus.Running && task.TaskDefinition is not null)
            {
                Start(task, containerInstanceArn, cluster);
            }
            else if (status == DesiredStatus.Stopped)
            {
                // Stopped before it ever ran here (or run and cleaned up long ago): nothing to stop, and it
                // must not stay "not yet STOPPED" on the coordinator for want of a report.
                var now = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(time.GetUtcNow());
                Changed?.Invoke(new TaskStateChange { TaskArn = task.TaskArn, LastStatus = "STOPPED", DesiredStatus = "STOPPED", StoppedAt = now, ExecutionStoppedAt = now });
            }
        }

        if (desired.Full)
        {
            // A full set may come in parts: what it names adds up, and only its last part stops the rest.
            if (desired.Part == 0)
            {
                _wantedByFullSet.Clear();
            }

            _wantedByFullSet.UnionWith(desired.Tasks.Select(t => t.TaskArn));
            if (!desired.More)
            {
                foreach (var (arn, known) in _tasks.Where(t => !_wantedByFullSet.Contains(t.Key)))
                {
                    known.Supervisor.Desire(DesiredStatus.Stopped, "UserInitiated", "The coordinator no longer wants this task");
                }

                _wantedByFullSet.Clear();
            }
        }
    }

    /// <summary>
    /// How the engine names cgroups, needed for the tasks' cgroup parents. An engine that does not answer
    /// (restarting) must not cost the agent its channel: the answer is learnt on a later task instead.
    /// </summary>
    private async Task LearnCgroupDriverAsync(CancellationToken cancellationToken)
    {
        if (_cgroupDriver is not null)
        {
            return;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            _cgroupDriver = await docker.CgroupDriverAsync(timeout.Token);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && DockerErrors.Classify(e) is not null)
        {
            LogNoCgroupDriver(logger, DockerErrors.Message(e));
        }
    }

    /// <summary>A container's logs, while the agent keeps the task (until its cleanup after STOPPED).</summary>
    public async IAsyncEnumerable<LogChunk> LogsAsync(LogRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_tasks.TryGetValue(request.TaskArn, out var task))
        {
            throw new LogsUnavailableException($"ResourceNotFoundException: task {request.TaskArn} is not on this host, or its containers were already cleaned up");
        }

        var (id, tty, group, stream) = task.Supervisor.LogSource(request.ContainerName);

        // Open first, then answer with the names at once: a follower then knows that every line written
        // from now on will reach it, before any line arrives.
        var logs = await docker.OpenLogsAsync(id, tty, request.HasTail ? request.Tail : null, request.Follow, request.Since?.ToDateTimeOffset(), cancellationToken);
        try
        {
            yield return new LogChunk { LogGroupName = group ?? "", LogStreamName = stream ?? "" };
            await foreach (var batch in DockerRuntime.ReadLogsAsync(logs, cancellationToken))
            {
                yield return new LogChunk { Events = { batch } };
            }
        }
        finally
        {
            logs.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await Task.WhenAll(_tasks.Values.Select(t => t.Running).Append(_watching ?? Task.CompletedTask).Append(_cleaningImages ?? Task.CompletedTask)).ContinueWith(_ => { }, TaskScheduler.Default);
        docker.Dispose();
    }

    /// <summary>
    /// One Docker event stream for the whole host wakes the supervisor of the task an event is about.
    /// Each subscription asks Docker for the events since the last one seen (at first, since before any
    /// container of this engine existed): an oom that happens while the stream is still being opened,
    /// or is reopened, is replayed rather than lost. If the stream breaks (Docker restarted), every
    /// supervisor also looks again once it is back.
    /// </summary>
    private async Task WatchAsync(string containerInstanceArn, CancellationToken cancellationToken)
    {
        var since = time.GetUtcNow();
        var attempt = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var watching = docker.WatchAsync(containerInstanceArn, change =>
                {
                    since = change.Time; // a replayed duplicate is harmless: both uses below are idempotent
                    if (_tasks.TryGetValue(change.TaskArn, out var task))
                    {
                        if (change.Action == "oom")
                        {
                            task.Supervisor.OutOfMemory(change.ContainerId);
                        }

                        task.Supervisor.Wake();
                    }
                }, cancellationToken, since);
                foreach (var task in _tasks.Values)
                {
                    task.Supervisor.Wake();
                }

                await watching;
                attempt = 0;
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogEventsLost(logger, e.Message);
            }

            await Task.Delay(Backoff.Delay(attempt++, Random.Shared.NextDouble()), time, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private void Start(DesiredTask task, string containerInstanceArn, string cluster, IReadOnlyDictionary<string, string>? adopted = null)
    {
        _watching ??= WatchAsync(containerInstanceArn, _stopping.Token);
        if (_images is null)
        {
            _images = new ImageCleaner(docker, settings, time, logger,
                () => _tasks.Values.SelectMany(t => t.Supervisor.Images));
            _cleaningImages = _images.RunAsync(_stopping.Token);
        }

        var definition = task.TaskDefinition;
        var networkMode = definition.HasNetworkMode ? definition.NetworkMode : "bridge";
        var taskId = task.TaskArn[(task.TaskArn.LastIndexOf('/') + 1)..];
        TaskCgroup? cgroup = null;
        try
        {
            cgroup = TaskCgroup.Create(taskId, Units(definition.HasCpu ? definition.Cpu : null), Units(definition.HasMemory ? definition.Memory : null), _cgroupDriver ?? "cgroupfs");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogNoCgroup(logger, task.TaskArn, e.Message);
        }

        var context = new TaskContext(task.TaskArn, definition.Family, definition.Revision, cluster, containerInstanceArn, networkMode,
            [.. definition.Volumes], settings.HostPortAddress, cgroup?.Parent);
        if (adopted is null)
        {
            store.Save(task);
        }

        var supervisor = new TaskSupervisor(task, context, docker, settings, _timings, time, logger, change => Changed?.Invoke(change), adopted);

        // In the table before it runs: an event about its first container must find it. The supervisor
        // ends every failure in a reported state itself; the task leaves the table once cleaned up.
        var run = new Task<Task>(async () =>
        {
            try
            {
                await supervisor.RunAsync(_stopping.Token);
                await supervisor.CleanUpAsync(settings.TaskCleanupWaitDuration, _stopping.Token);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return; // the agent stops; the task stays, to be adopted on its return
            }
            catch (Exception e)
            {
                LogCleanupFailed(logger, task.TaskArn, e);
            }

            cgroup?.Remove();
            store.Remove(task.TaskArn);
            _tasks.TryRemove(task.TaskArn, out _);
        });
        _tasks[task.TaskArn] = (supervisor, run.Unwrap());
        run.Start(TaskScheduler.Default);
        // Recorded once the task is in the table, whose images the cleaner never removes.
        foreach (var container in definition.ContainerDefinitions)
        {
            _images.Used(container.Image);
        }

        if (adopted is null)
        {
            LogStarted(logger, task.TaskArn, $"{definition.Family}:{definition.Revision}");
        }
        else
        {
            LogAdopted(logger, task.TaskArn, adopted.Count);
        }
    }

    /// <summary>Task-level cpu and memory arrive in registered (numeric) form.</summary>
    private static int? Units(string? value) => int.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var units) ? units : null;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Docker's event stream broke ({Reason}); reconnecting, and polling meanwhile")]
    private static partial void LogEventsLost(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskArn} runs without its task-level cgroup limits: {Reason}")]
    private static partial void LogNoCgroup(ILogger logger, string taskArn, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskArn} ({TaskDefinition}) wanted: starting")]
    private static partial void LogStarted(ILogger logger, string taskArn, string taskDefinition);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskArn} adopted after a restart, with its {Containers} containers")]
    private static partial void LogAdopted(ILogger logger, string taskArn, int containers);

    [LoggerMessage(Level = LogLevel.Error, Message = "Task {TaskArn} could not be cleaned up")]
    private static partial void LogCleanupFailed(ILogger logger, string taskArn, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Docker engine did not say its cgroup driver ({Reason}); assuming cgroupfs for now")]
    private static partial void LogNoCgroupDriver(ILogger logger, string reason);
}
