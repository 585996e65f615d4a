using EcsLite.Agent.Core;
using EcsLite.Agent.Core.Tasks;
using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using Google.Protobuf.WellKnownTypes;
using ContainerState = EcsLite.Agent.Core.Tasks.ContainerState;
using TaskState = EcsLite.Agent.Core.Tasks.TaskState;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// The one owner of a task's state on this host: asks the core state machine what to do next, does it
/// through Docker, reads back what Docker says, and reports every change. Runs until the task is STOPPED.
/// </summary>
public sealed partial class TaskSupervisor
{
    // Docker's events wake the supervisor at once; the poll only covers events missed while the
    // event stream reconnects.
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(5);
    private const int MaxPassesWithoutWaiting = 16;
    private const string OutOfMemoryReason = "OutOfMemoryError: Container killed due to memory usage";

    private readonly DockerRuntime _docker;
    private readonly AgentSettings _settings;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TaskDefinition _definition;
    private readonly TaskContext _context;
    private readonly Action<TaskStateChange> _report;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _runtimeIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ContainerFacts> _facts = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _outOfMemory = new(StringComparer.Ordinal);
    private TaskState _state;
    private string _stopCode = "";
    private string _stoppedReason = "";
    private DateTimeOffset? _pullStartedAt, _pullStoppedAt, _startedAt, _stoppingAt, _stoppedAt;
    private TaskStateChange? _lastReported;

    private readonly IReadOnlyDictionary<string, string>? _adopted;

    /// <param name="adopted">Containers (by name) that already exist for this task, after an agent restart.</param>
    public TaskSupervisor(DesiredTask desired, TaskContext context, DockerRuntime docker, AgentSettings settings, TimeProvider time, ILogger logger,
        Action<TaskStateChange> report, IReadOnlyDictionary<string, string>? adopted = null)
    {
        _adopted = adopted;
        _definition = desired.TaskDefinition;
        _context = context;
        _docker = docker;
        _settings = settings;
        _time = time;
        _logger = logger;
        _report = report;
        _state = new TaskState(desired.TaskArn, desired.DesiredStatus == "STOPPED" ? DesiredStatus.Stopped : DesiredStatus.Running,
            [.. _definition.ContainerDefinitions.Select(Initial)]);
    }

    public string TaskArn => _state.TaskArn;

    public TaskStateChange Current => Snapshot();

    /// <summary>The images the task's containers run (or will, once pulled).</summary>
    public IEnumerable<string> Images => _definition.ContainerDefinitions.Select(c => c.Image);

    /// <summary>A new desired status; only a move forward (to STOPPED) has any effect.</summary>
    public void Desire(DesiredStatus status, string stopCode = "UserInitiated", string reason = "Task stopped by the coordinator")
    {
        var forward = TaskStateMachine.Forward(_state.Desired, status);
        if (forward != _state.Desired)
        {
            (_stopCode, _stoppedReason) = _stopCode.Length == 0 ? (stopCode, reason) : (_stopCode, _stoppedReason);
            _state = _state with { Desired = forward };
            _stoppingAt ??= _time.GetUtcNow();
        }

        Wake();
    }

    /// <summary>
    /// Where a container's logs are: its Docker container, whether it has a TTY (raw, not multiplexed
    /// output), and for awslogs the group and stream ECS would name (`prefix/container/task-id`).
    /// </summary>
    public (string RuntimeId, bool Tty, string? Group, string? Stream) LogSource(string containerName)
    {
        var containers = _definition.ContainerDefinitions;
        var container = containerName.Length == 0 && containers.Count == 1
            ? containers[0]
            : containers.FirstOrDefault(c => c.Name == containerName)
                ?? throw new LogsUnavailableException(containerName.Length == 0
                    ? $"InvalidParameterException: containerName: the task has {containers.Count} containers ({string.Join(", ", containers.Select(c => c.Name))}); name one"
                    : $"InvalidParameterException: containerName: the task has no container named '{containerName}'");
        if (!_runtimeIds.TryGetValue(container.Name, out var id))
        {
            throw new LogsUnavailableException($"ResourceNotFoundException: container '{container.Name}' has not been created yet, so it has no logs");
        }

        string? group = null, stream = null;
        if (container.LogConfiguration is { LogDriver: "awslogs" } awslogs)
        {
            group = awslogs.Options.GetValueOrDefault("awslogs-group");
            var prefix = awslogs.Options.GetValueOrDefault("awslogs-stream-prefix");
            stream = $"{(string.IsNullOrEmpty(prefix) ? "" : prefix + "/")}{container.Name}/{_context.TaskId}";
        }

        return (id, container.HasPseudoTerminal && container.PseudoTerminal, group, stream);
    }

    /// <summary>Something about the task's containers changed (a Docker event): look again now.</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    /// <summary>
    /// Docker said the kernel OOM-killed a process of this container. Inspect's OOMKilled flag alone
    /// misses kills whose event containerd delivers after the exit, so the event counts too.
    /// </summary>
    public void OutOfMemory(string containerId) => _outOfMemory[containerId] = true;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await PrepareNetworkAsync(cancellationToken);
        await AdoptAsync(cancellationToken);
        var passesWithoutWaiting = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var acted = false;
            foreach (var action in TaskStateMachine.Next(_state, _time.GetUtcNow()))
            {
                await ExecuteAsync(action, cancellationToken);
                acted = true;
            }

            await RefreshAsync(cancellationToken);

            // Finished only once the task is meant to stop: if every container exited while it was meant
            // to run, the next pass decides why (an essential exit) or restarts what the policy restarts.
            if (TaskStateMachine.LastStatus(_state) == "STOPPED" && _state.Desired == DesiredStatus.Stopped)
            {
                await RemoveNetworkAsync();
                Report();
                return;
            }

            if (TaskStateMachine.LastStatus(_state) == "STOPPED")
            {
                continue; // not reported: it has no stop code until the next pass gives it one
            }

            Report();

            // A pass that did something goes straight on to the next step (pull, create, start); the
            // bound keeps a step that never takes effect from spinning.
            if (!acted || ++passesWithoutWaiting > MaxPassesWithoutWaiting)
            {
                passesWithoutWaiting = 0;
                await _wake.WaitAsync(PollInterval, cancellationToken);
            }
        }
    }

    private async Task ExecuteAsync(TaskAction action, CancellationToken cancellationToken)
    {
        switch (action)
        {
            case TaskAction.Pull pull:
                _pullStartedAt ??= _time.GetUtcNow();
                try
                {
                    await _docker.PullAsync(Definition(pull.Container).Image, _settings.ImagePullBehavior, cancellationToken);
                    Set(pull.Container, c => c with { Known = ContainerStatus.Pulled });
                    if (_state.Containers.All(c => c.Known >= ContainerStatus.Pulled))
                    {
                        _pullStoppedAt ??= _time.GetUtcNow();
                    }
                }
                catch (CannotPullContainerException e)
                {
                    Fail(pull.Container, TaskStateMachine.TaskFailedToStart, e.Message);
                }

                break;
            case TaskAction.Create create:
                try
                {
                    await PrepareVolumesAsync(Definition(create.Container), cancellationToken);
                    var parameters = ContainerSpec.Build(_context, Definition(create.Container), Names());
                    if (_context.TaskNetwork is { } network)
                    {
                        parameters.NetworkingConfig = new NetworkingConfig
                        {
                            EndpointsConfig = new Dictionary<string, EndpointSettings> { [network] = new() { Aliases = [create.Container] } },
                        };
                    }

                    _runtimeIds[create.Container] = await _docker.CreateAsync(parameters, cancellationToken);
                    Set(create.Container, c => c with { Known = ContainerStatus.Created, CreatedAt = _time.GetUtcNow() });
                }
                catch (Exception e) when (e is DockerApiException or ArgumentException or InvalidOperationException)
                {
                    Fail(create.Container, TaskStateMachine.TaskFailedToStart, $"CannotCreateContainerError: {Message(e)}");
                }

                break;
            case TaskAction.Start or TaskAction.Restart:
                var name = action is TaskAction.Start s ? s.Container : ((TaskAction.Restart)action).Container;
                try
                {
                    await _docker.StartAsync(_runtimeIds[name], cancellationToken);
                    Set(name, c => c with { Known = ContainerStatus.Running, StartedAt = _time.GetUtcNow(), ExitCode = null, Reason = null });
                    _startedAt ??= TaskStateMachine.LastStatus(_state) == "RUNNING" ? _time.GetUtcNow() : null;
                }
                catch (DockerApiException e)
                {
                    Fail(name, TaskStateMachine.TaskFailedToStart, $"CannotStartContainerError: {Message(e)}");
                }

                break;
            case TaskAction.Stop stop:
                var timeout = Definition(stop.Container) is { HasStopTimeout: true } d ? TimeSpan.FromSeconds(d.StopTimeout) : _settings.ContainerStopTimeout;
                await _docker.StopAsync(_runtimeIds[stop.Container], timeout, cancellationToken);
                break;
            case TaskAction.MarkStopped mark:
                Set(mark.Container, c => c with { Known = ContainerStatus.Stopped });
                break;
            case TaskAction.StopTask stopTask:
                LogStopping(_logger, TaskArn, stopTask.StopCode, stopTask.Reason);
                Desire(DesiredStatus.Stopped, stopTask.StopCode, stopTask.Reason);
                break;
        }
    }

    /// <summary>Containers that exist already take the state Docker gives them; none is restarted.</summary>
    private async Task AdoptAsync(CancellationToken cancellationToken)
    {
        foreach (var (name, id) in _adopted ?? new Dictionary<string, string>())
        {
            var facts = await _docker.InspectAsync(id, cancellationToken);
            _runtimeIds[name] = id;
            _facts[name] = facts;
            var known = facts.Running ? ContainerStatus.Running : facts.Status == "created" ? ContainerStatus.Created : ContainerStatus.Stopped;
            Set(name, c => c with { Known = known, ExitCode = facts.ExitCode, StartedAt = facts.StartedAt, CreatedAt = _time.GetUtcNow() });
        }

        if (_adopted is { Count: > 0 })
        {
            _pullStartedAt ??= _time.GetUtcNow();
            _startedAt ??= _state.Containers.Min(c => c.StartedAt);
        }
    }

    /// <summary>
    /// Once STOPPED: after the cleanup wait, the task's containers and task-scoped volumes are removed.
    /// Until then a late Docker event (an oom that containerd sends after the exit) still corrects the report.
    /// </summary>
    public async Task CleanUpAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        var waited = Task.Delay(wait, _time, cancellationToken);
        while (await Task.WhenAny(waited, _wake.WaitAsync(cancellationToken)) != waited)
        {
            await RefreshAsync(cancellationToken);
            Report();
        }

        await waited;
        foreach (var id in _runtimeIds.Values)
        {
            await _docker.RemoveAsync(id, cancellationToken);
        }

        foreach (var volume in _definition.Volumes.Where(v => v.Host is not { HasSourcePath: true } && v.DockerVolumeConfiguration is not { Scope: "shared" }))
        {
            await _docker.RemoveVolumeAsync(ContainerSpec.VolumeName(_context, volume), cancellationToken);
        }
    }

    /// <summary>
    /// The Docker volumes a container mounts, before it is created: a task-scoped one is made with its
    /// driver, options and labels; a shared one is used if it exists (with the same driver) and made
    /// only when autoprovision allows. Task volumes without any configuration are made by Docker.
    /// </summary>
    private async Task PrepareVolumesAsync(ContainerDefinition container, CancellationToken cancellationToken)
    {
        foreach (var mount in container.MountPoints)
        {
            var volume = _context.Volumes.FirstOrDefault(v => v.Name == mount.SourceVolume);
            if (volume?.DockerVolumeConfiguration is not { } configuration)
            {
                continue;
            }

            var name = ContainerSpec.VolumeName(_context, volume);
            var driver = configuration.HasDriver ? configuration.Driver : "local";
            var existing = await _docker.VolumeDriverAsync(name, cancellationToken);
            var shared = configuration.Scope == "shared";
            if (existing is not null)
            {
                if (shared && configuration.HasDriver && existing != driver)
                {
                    throw new InvalidOperationException($"shared volume '{name}' exists with driver '{existing}', the task definition asks for '{driver}'");
                }

                continue;
            }

            if (shared && !(configuration.HasAutoprovision && configuration.Autoprovision))
            {
                throw new InvalidOperationException($"shared volume '{name}' does not exist and autoprovision is false");
            }

            var labels = new Dictionary<string, string>(configuration.Labels, StringComparer.Ordinal);
            if (!shared)
            {
                labels[ContainerSpec.TaskArnLabel] = TaskArn;
            }

            await _docker.CreateVolumeAsync(name, driver, configuration.DriverOpts, labels, cancellationToken);
        }
    }

    /// <summary>Reads each created container's state back from Docker: the known state follows what Docker says.</summary>
    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        foreach (var (name, id) in _runtimeIds)
        {
            var facts = await _docker.InspectAsync(id, cancellationToken);
            _facts[name] = facts;
            var container = _state.Containers.First(c => c.Name == name);
            var outOfMemory = facts.OomKilled || _outOfMemory.ContainsKey(id);
            if (container.Known == ContainerStatus.Running && !facts.Running && facts.Status is "exited" or "dead")
            {
                Set(name, c => c with { Known = ContainerStatus.Stopped, ExitCode = facts.ExitCode, Reason = outOfMemory ? OutOfMemoryReason : c.Reason });
            }
            else if (container.Known == ContainerStatus.Stopped && outOfMemory && container.Reason != OutOfMemoryReason)
            {
                Set(name, c => c with { Reason = OutOfMemoryReason }); // the oom event came after the exit
            }
            else if (container.Known == ContainerStatus.Created && facts.Status is "exited" or "dead")
            {
                Set(name, c => c with { Known = ContainerStatus.Stopped, ExitCode = facts.ExitCode });
            }

            Set(name, c => c with { Health = facts.Health switch { "healthy" => HealthStatus.Healthy, "unhealthy" => HealthStatus.Unhealthy, _ => HealthStatus.Unknown } });
        }

        if (TaskStateMachine.LastStatus(_state) == "STOPPED")
        {
            _stoppedAt ??= _time.GetUtcNow();
        }
    }

    private void Report()
    {
        var change = Snapshot();
        if (!change.Equals(_lastReported))
        {
            _lastReported = change;
            _report(change);
        }
    }

    private TaskStateChange Snapshot()
    {
        var change = new TaskStateChange
        {
            TaskArn = TaskArn,
            LastStatus = TaskStateMachine.LastStatus(_state),
            DesiredStatus = _state.Desired == DesiredStatus.Running ? "RUNNING" : "STOPPED",
            StopCode = _stopCode,
            StoppedReason = _stoppedReason,
            PullStartedAt = Stamp(_pullStartedAt),
            PullStoppedAt = Stamp(_pullStoppedAt),
            StartedAt = Stamp(_startedAt),
            StoppingAt = Stamp(_stoppingAt),
            StoppedAt = Stamp(_stoppedAt),
            ExecutionStoppedAt = Stamp(_stoppedAt),
        };
        foreach (var container in _state.Containers)
        {
            var state = new ContainerStateChange
            {
                ContainerName = container.Name,
                LastStatus = TaskStateMachine.LastStatus(container),
                RuntimeId = _runtimeIds.GetValueOrDefault(container.Name, ""),
                Reason = container.Reason ?? "",
                HealthStatus = container.Health switch { HealthStatus.Healthy => "HEALTHY", HealthStatus.Unhealthy => "UNHEALTHY", _ => "UNKNOWN" },
            };
            if (container.ExitCode is { } code)
            {
                state.ExitCode = code;
            }

            if (_facts.TryGetValue(container.Name, out var facts))
            {
                state.ImageDigest = facts.ImageId;
                if (_context.TaskNetwork is { } network && facts.Addresses.TryGetValue(network, out var address))
                {
                    state.PrivateIPv4Address = address;
                }

                if (facts.Running)
                {
                    state.NetworkBindings.Add(facts.Bindings.Select(b => new AgentNetworkBinding { BindIP = b.BindIp, ContainerPort = b.ContainerPort, HostPort = b.HostPort, Protocol = b.Protocol }));
                }
            }

            change.Containers.Add(state);
        }

        return change;
    }

    /// <summary>awsvpc: the task's own Docker network, on which its containers reach each other by name.</summary>
    private async Task PrepareNetworkAsync(CancellationToken cancellationToken)
    {
        if (_context.TaskNetwork is { } network)
        {
            await _docker.EnsureNetworkAsync(network, _context.TaskArn, cancellationToken);
        }
    }

    /// <summary>The stopped containers stay (for their logs, until cleanup); the task's network goes now.</summary>
    private async Task RemoveNetworkAsync()
    {
        if (_context.TaskNetwork is { } network)
        {
            await _docker.RemoveNetworkAsync(network, _runtimeIds.Values, CancellationToken.None);
        }
    }

    private void Fail(string container, string stopCode, string reason)
    {
        Set(container, c => c with { Reason = reason });
        LogStopping(_logger, TaskArn, stopCode, reason);
        Desire(DesiredStatus.Stopped, stopCode, reason);
    }

    private void Set(string name, Func<ContainerState, ContainerState> change) =>
        _state = _state with { Containers = [.. _state.Containers.Select(c => c.Name == name ? change(c) : c)] };

    private ContainerDefinition Definition(string name) => _definition.ContainerDefinitions.First(c => c.Name == name);

    private Dictionary<string, string> Names() =>
        _definition.ContainerDefinitions.ToDictionary(c => c.Name, c => ContainerSpec.Name(_context, c), StringComparer.Ordinal);

    private static ContainerState Initial(ContainerDefinition container) => new(
        container.Name,
        !container.HasEssential || container.Essential,
        ContainerStatus.None,
        [.. container.DependsOn.Select(d => new Dependency(d.ContainerName, System.Enum.Parse<DependencyCondition>(d.Condition, ignoreCase: true)))],
        StartTimeout: container.HasStartTimeout ? TimeSpan.FromSeconds(container.StartTimeout) : null,
        RestartPolicy: container.RestartPolicy is { Enabled: true } policy
            ? new RestartPolicy(true, policy.IgnoredExitCodes.ToHashSet(), policy.HasRestartAttemptPeriod ? TimeSpan.FromSeconds(policy.RestartAttemptPeriod) : RestartPolicy.DefaultAttemptPeriod)
            : null);

    private static Timestamp? Stamp(DateTimeOffset? time) => time is { } t ? Timestamp.FromDateTimeOffset(t) : null;

    private static string Message(Exception e) => e is DockerApiException api ? api.ResponseBody.Trim() : e.Message;

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskArn} stopping: {StopCode}: {Reason}")]
    private static partial void LogStopping(ILogger logger, string taskArn, string stopCode, string reason);
}
