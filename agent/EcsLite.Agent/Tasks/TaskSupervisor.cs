using System.Collections.Immutable;
using System.Threading.Channels;
using EcsLite.Agent.Core;
using EcsLite.Agent.Core.Tasks;
using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using Google.Protobuf.WellKnownTypes;
using ContainerState = EcsLite.Agent.Core.Tasks.ContainerState;
using TaskState = EcsLite.Agent.Core.Tasks.TaskState;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// The one owner of a task's state on this host (the ECS agent's managedTask): asks the core state
/// machine what to do next, does it through the container runtime, reads back what the runtime says,
/// and reports every change. Others reach it only through its inbox (desired status, engine events,
/// OOM notes) and read only the immutable view it publishes. Every way a call can fail ends in a
/// state: transient failures are tried again within bounds, then the task stops with ECS's stop code
/// and reason; an exception nobody foresaw stops the task too. Runs until the task is STOPPED.
/// </summary>
public sealed partial class TaskSupervisor
{
    private const int MaxPassesWithoutWaiting = 16;
    private const int MaxReasonLength = 1024;
    private const string OutOfMemoryReason = "OutOfMemoryError: Container killed due to memory usage";

    private readonly IContainerRuntime _docker;
    private readonly AgentSettings _settings;
    private readonly SupervisorTimings _timings;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TaskDefinition _definition;
    private readonly TaskContext _context;
    private readonly Action<TaskStateChange> _report;
    private readonly IReadOnlyDictionary<string, string>? _adopted;
    private readonly Random _jitter = new();

    // The only way in from other threads.
    private readonly Channel<Signal> _inbox = Channel.CreateUnbounded<Signal>(new UnboundedChannelOptions { SingleReader = true });
    private int _wakeQueued;

    // Cancelled by a stop: a pull, create or start in progress (or waiting to be tried again) gives up at once.
    private readonly CancellationTokenSource _stopWanted = new();

    // Owned by the loop alone.
    private TaskState _state;
    private string _stopCode = "";
    private string _stoppedReason = "";
    private DateTimeOffset? _pullStartedAt, _pullStoppedAt, _startedAt, _stoppingAt, _stoppedAt;
    private readonly Dictionary<string, string> _runtimeIds = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ContainerFacts> _facts = new(StringComparer.Ordinal); // also read by the metrics scrape
    private readonly Dictionary<string, int> _inspectFailures = new(StringComparer.Ordinal);
    private readonly HashSet<string> _outOfMemory = new(StringComparer.Ordinal);
    private string? _pauseId;

    // The task's secrets (values or the reason they could not be resolved), in memory only; null until
    // the coordinator sends them (an adopted task waits for the next full set). Set from other threads.
    private readonly bool _needsSecrets;
    private volatile DesiredTask? _secrets;
    private readonly TaskCompletionSource _secretsArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ContainerFacts? _pauseFacts;

    // What others read: replaced whole, never changed.
    private volatile View _view;

    /// <param name="adopted">Containers (by name) that already exist for this task, after an agent restart.</param>
    public TaskSupervisor(DesiredTask desired, TaskContext context, IContainerRuntime docker, AgentSettings settings, SupervisorTimings timings,
        TimeProvider time, ILogger logger, Action<TaskStateChange> report, IReadOnlyDictionary<string, string>? adopted = null)
    {
        _adopted = adopted;
        _definition = desired.TaskDefinition;
        _context = context;
        _docker = docker;
        _settings = settings;
        _timings = timings;
        _time = time;
        _logger = logger;
        _report = report;
        _state = new TaskState(desired.TaskArn, desired.DesiredStatus == "STOPPED" ? DesiredStatus.Stopped : DesiredStatus.Running,
            [.. _definition.ContainerDefinitions.Select(c => Initial(c, context.NetworkMode))],
            context.NetworkMode == "awsvpc" ? NetworkStatus.None : NetworkStatus.NotNeeded);
        _view = new View(Snapshot(), ImmutableDictionary<string, string>.Empty);
        _needsSecrets = _definition.ContainerDefinitions.Any(c =>
            c.Secrets.Count > 0 || c.LogConfiguration?.SecretOptions.Count > 0 || c.RepositoryCredentials is { HasCredentialsParameter: true });
        Deliver(desired);
    }

    /// <summary>The task's secrets as the coordinator sent them with the task (each full set brings them again).</summary>
    public void Deliver(DesiredTask desired)
    {
        if (_needsSecrets && (desired.Secrets.Count > 0 || desired.SecretsError.Length > 0))
        {
            _secrets = desired;
            if (_secretsArrived.TrySetResult())
            {
                LogSecretsReceived(_logger, desired.TaskArn, desired.Secrets.Count, desired.SecretsError.Length > 0 ? "; they could not all be resolved" : "");
            }
        }
    }

    public string TaskArn => _state.TaskArn;

    /// <summary>The task definition's family.</summary>
    public string Family => _definition.Family;

    /// <summary>The task's running containers and each one's first process, for reading their usage (from any thread).</summary>
    public IEnumerable<(string Container, int Pid)> RunningContainers() =>
        _facts.Where(f => f.Value is { Running: true, Pid: > 0 }).Select(f => (f.Key, f.Value.Pid));

    /// <summary>The task's state as last published: what the hello reports.</summary>
    public TaskStateChange Current => _view.Change;

    /// <summary>The images the task's containers run (or will, once pulled).</summary>
    public IEnumerable<string> Images => _definition.ContainerDefinitions.Select(c => c.Image);

    /// <summary>A new desired status; only a move forward (to STOPPED) has any effect.</summary>
    public void Desire(DesiredStatus status, string stopCode = "UserInitiated", string reason = "Task stopped by the coordinator")
    {
        _inbox.Writer.TryWrite(new Signal.Desire(status, stopCode, reason));
        if (status == DesiredStatus.Stopped)
        {
            _stopWanted.Cancel();
        }
    }

    /// <summary>Something about the task's containers changed (an engine event): look again now.</summary>
    public void Wake()
    {
        if (Interlocked.Exchange(ref _wakeQueued, 1) == 0)
        {
            _inbox.Writer.TryWrite(new Signal.Wake());
        }
    }

    /// <summary>
    /// The engine said the kernel OOM-killed a process of this container. Inspect's OOMKilled flag alone
    /// misses kills whose event containerd delivers after the exit, so the event counts too.
    /// </summary>
    public void OutOfMemory(string containerId) => _inbox.Writer.TryWrite(new Signal.OutOfMemory(containerId));

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
        if (!_view.RuntimeIds.TryGetValue(container.Name, out var id))
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

    /// <summary>
    /// Runs the task until it is STOPPED and reported so. Returns early only when the agent itself stops
    /// (<paramref name="stopping"/>): the containers then keep running, to be adopted on its return.
    /// </summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            await AdoptAsync(stopping);
            await LoopAsync(stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            await AbandonAsync(e, stopping);
        }
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        var passesWithoutWaiting = 0;
        var undecided = 0;
        while (true)
        {
            Drain();
            var acted = false;
            foreach (var action in TaskStateMachine.Next(_state, _time.GetUtcNow()))
            {
                if (_logger.IsEnabled(LogLevel.Debug))
                {
                    LogAction(_logger, TaskArn, action, string.Join(", ", _state.Containers.Select(c => $"{c.Name} {c.Known} exit {c.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}")), _state.Network);
                }

                await ExecuteAsync(action, stopping);
                acted = true;
            }

            Drain();
            await RefreshAsync(stopping);
            if (TaskStateMachine.LastStatus(_state) == "STOPPED" && _state.Desired == DesiredStatus.Stopped)
            {
                Report();
                return;
            }

            // Every container ended while the task is meant to run: the next pass says why (or restarts),
            // and only then is it reported.
            if (TaskStateMachine.AwaitingDecision(_state) && ++undecided <= MaxPassesWithoutWaiting)
            {
                continue;
            }

            undecided = 0;
            Report();

            // A pass that did something goes straight on to the next step (pull, create, start); the
            // bound keeps a step that never takes effect from spinning.
            if (!acted || ++passesWithoutWaiting > MaxPassesWithoutWaiting)
            {
                passesWithoutWaiting = 0;
                await WaitForSignalAsync(_timings.PollInterval, stopping);
            }
        }
    }

    private async Task ExecuteAsync(TaskAction action, CancellationToken stopping)
    {
        switch (action)
        {
            case TaskAction.Pull pull:
                await PullAsync(pull.Container, stopping);
                break;
            case TaskAction.Create create:
                await CreateAsync(create.Container, stopping);
                break;
            case TaskAction.Start or TaskAction.Restart:
                var name = action is TaskAction.Start s ? s.Container : ((TaskAction.Restart)action).Container;
                var started = await CallAsync(Void(ct => _docker.StartAsync(_runtimeIds[name], ct)), _timings.StartTimeout, Retry.StartPath, stopping);
                if (started.Ok)
                {
                    Set(name, c => c with { Known = ContainerStatus.Running, StartedAt = _time.GetUtcNow(), ExitCode = null, Reason = null });
                    _startedAt ??= TaskStateMachine.LastStatus(_state) == "RUNNING" ? _time.GetUtcNow() : null;
                }
                else
                {
                    // The engine may have started it before the call failed or was given up: to be stopped as if it had.
                    Set(name, c => c with { Known = ContainerStatus.Created });
                    if (!started.Aborted)
                    {
                        await FailAsync(name, $"CannotStartContainerError: {started.Message}", stopping);
                    }
                }

                break;
            case TaskAction.Stop stop:
                await StopContainerAsync(stop.Container, stopping);
                break;
            case TaskAction.MarkStopped mark:
                Set(mark.Container, c => c with { Known = ContainerStatus.Stopped });
                break;
            case TaskAction.StopTask stopTask:
                LogStopping(_logger, TaskArn, stopTask.StopCode, stopTask.Reason);
                Want(DesiredStatus.Stopped, stopTask.StopCode, stopTask.Reason);
                break;
            case TaskAction.SetUpNetwork:
                await SetUpNetworkAsync(stopping);
                break;
            case TaskAction.ReleaseNetwork:
                if (_pauseId is { } pause)
                {
                    await CallAsync(Void(ct => _docker.StopAsync(pause, TimeSpan.Zero, ct)), _timings.InspectTimeout, Retry.UntilDone, stopping);
                }

                _state = _state with { Network = NetworkStatus.Released };
                break;
        }
    }

    private async Task PullAsync(string container, CancellationToken stopping)
    {
        _pullStartedAt ??= _time.GetUtcNow();
        if (await SecretsAsync(stopping) is not { } secrets)
        {
            return;
        }

        var image = Definition(container).Image;
        var credentials = secrets.Where(s => s.ContainerName == container && s.Kind == SecretKinds.RegistryAuth).ToDictionary(s => s.Name, s => s.Value);
        var auth = credentials.Count == 2 ? new RegistryAuth(credentials["username"], credentials["password"]) : null;
        var pulled = await CallAsync(Void(ct => _docker.PullAsync(image, _settings.ImagePullBehavior, ct, auth)), _timings.PullTimeout, Retry.StartPath, stopping);
        if (pulled.Ok)
        {
            Set(container, c => c with { Known = ContainerStatus.Pulled });
            if (_state.Containers.All(c => c.Known >= ContainerStatus.Pulled))
            {
                _pullStoppedAt ??= _time.GetUtcNow();
            }
        }
        else if (!pulled.Aborted)
        {
            await FailAsync(container, $"CannotPullContainerError: pull image {image}: {pulled.Message}", stopping);
        }
    }

    private async Task CreateAsync(string container, CancellationToken stopping)
    {
        if (HostAccessCheck.Refusal(_definition, Definition(container), _settings, HostPaths.Real) is { } refused)
        {
            await FailAsync(container, $"CannotCreateContainerError: {refused}", stopping);
            return;
        }

        if (await SecretsAsync(stopping) is not { } secrets)
        {
            return;
        }

        CreateContainerParameters parameters;
        try
        {
            parameters = ContainerSpec.Build(_context with { PauseContainerId = _pauseId }, Definition(container), Names(), secrets);
            var volumes = await PrepareVolumesAsync(Definition(container), stopping);
            if (volumes is { Aborted: true })
            {
                return;
            }

            if (volumes is { } failed)
            {
                await FailAsync(container, $"CannotCreateContainerError: {failed.Message}", stopping);
                return;
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            await FailAsync(container, $"CannotCreateContainerError: {e.Message}", stopping);
            return;
        }

        var created = await CreateOrFindAsync(parameters, stopping);
        if (created.Ok)
        {
            _runtimeIds[container] = created.Value!;
            Set(container, c => c with { Known = ContainerStatus.Created, CreatedAt = _time.GetUtcNow() });
        }
        else if (!created.Aborted)
        {
            await FailAsync(container, $"CannotCreateContainerError: {created.Message}", stopping);
        }
    }

    /// <summary>
    /// The task's secrets, waiting (within the pull timeout) for an adopted task's to come with the next
    /// full set. Null when the task cannot have them: it is then stopping, with ECS's reason.
    /// </summary>
    private async Task<IReadOnlyList<ResolvedSecret>?> SecretsAsync(CancellationToken stopping)
    {
        if (!_needsSecrets)
        {
            return [];
        }

        if (_secrets is null)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stopping, _stopWanted.Token);
            wait.CancelAfter(_timings.PullTimeout);
            await _secretsArrived.Task.WaitAsync(wait.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            stopping.ThrowIfCancellationRequested();
        }

        var reason = _secrets switch
        {
            null when _stopWanted.IsCancellationRequested => null,
            null => $"ResourceInitializationError: unable to pull secrets or registry auth: the coordinator did not send the task's secrets within {_timings.PullTimeout.TotalSeconds:F0} s",
            { SecretsError.Length: > 0 } failed => failed.SecretsError,
            _ => null,
        };
        if (reason is not null)
        {
            reason = Bounded(reason);
            LogStopping(_logger, TaskArn, TaskStateMachine.TaskFailedToStart, reason);
            Want(DesiredStatus.Stopped, TaskStateMachine.TaskFailedToStart, reason);
        }

        return _secrets is { SecretsError.Length: 0 } delivered ? delivered.Secrets : null;
    }

    /// <summary>
    /// Creates a container; a name already taken means an earlier try did create it (the answer was lost
    /// to a timeout, or the agent restarted in between): the names carry the task id, so it is this one.
    /// </summary>
    private async Task<Outcome<string>> CreateOrFindAsync(CreateContainerParameters parameters, CancellationToken stopping)
    {
        var created = await CallAsync(ct => _docker.CreateAsync(parameters, ct), _timings.CreateTimeout, Retry.StartPath, stopping);
        if (created.Failure != CallFailure.Conflict || parameters.Name is not { } name)
        {
            return created;
        }

        var existing = await CallAsync(ct => _docker.InspectAsync(name, ct), _timings.InspectTimeout, Retry.StartPath, stopping);
        return existing.Ok ? new(existing.Value!.Id, null, "", false) : existing.Failed<string>();
    }

    /// <summary>Stops a container: tried until it works (a stop is never abandoned), or until the container is gone.</summary>
    private async Task StopContainerAsync(string container, CancellationToken stopping)
    {
        var timeout = Definition(container) is { HasStopTimeout: true } d ? TimeSpan.FromSeconds(d.StopTimeout) : _settings.ContainerStopTimeout;
        var id = _runtimeIds[container];
        var stopped = await CallAsync(Void(ct => _docker.StopAsync(id, timeout, ct)), timeout + _timings.StopGrace, Retry.UntilDone, stopping);
        if (stopped.Ok && _state.Containers.First(c => c.Name == container).Known == ContainerStatus.Created)
        {
            Set(container, c => c with { Known = ContainerStatus.Stopped }); // never started, or stopped now
        }
        else if (stopped.Failure == CallFailure.NotFound)
        {
            Set(container, c => c with { Known = ContainerStatus.Stopped, Reason = c.Reason ?? $"CannotInspectContainerError: No such container: {id}" });
        }
        else if (stopped.Failure is not null)
        {
            // The engine refuses the stop itself (a 4xx): kill it by removing it; its logs go with it.
            LogCannotStop(_logger, TaskArn, container, stopped.Message);
            await CallAsync(Void(ct => _docker.RemoveAsync(id, ct)), _timings.RemoveTimeout, Retry.UntilDone, stopping);
            Set(container, c => c with { Known = ContainerStatus.Stopped, Reason = c.Reason ?? $"CannotStopContainerError: {stopped.Message}" });
        }
    }

    /// <summary>
    /// awsvpc: the pause container (made from the agent's own image) holds the task's network namespace;
    /// every container of the task joins it. Set up before the first container is created, and again if
    /// it was lost while nothing of the task ran (the engine restarted).
    /// </summary>
    private async Task SetUpNetworkAsync(CancellationToken stopping)
    {
        var pause = await StartPauseAsync(stopping);
        if (pause.Ok)
        {
            _pauseFacts = pause.Value;
            _state = _state with { Network = NetworkStatus.Ready };
        }
        else if (!pause.Aborted)
        {
            var reason = Bounded($"ResourceInitializationError: failed to set up the task's network namespace: {pause.Message}");
            LogStopping(_logger, TaskArn, TaskStateMachine.TaskFailedToStart, reason);
            Want(DesiredStatus.Stopped, TaskStateMachine.TaskFailedToStart, reason);
        }
    }

    private async Task<Outcome<ContainerFacts>> StartPauseAsync(CancellationToken stopping)
    {
        if (_pauseId is null)
        {
            var image = await CallAsync(ct => PauseImage.EnsureAsync(_docker, ct), _timings.CreateTimeout, Retry.StartPath, stopping);
            if (!image.Ok)
            {
                return image.Failed<ContainerFacts>();
            }

            var created = await CreateOrFindAsync(ContainerSpec.Pause(_context, _definition.ContainerDefinitions, image.Value!), stopping);
            if (!created.Ok)
            {
                return created.Failed<ContainerFacts>();
            }

            _pauseId = created.Value!;
        }

        var id = _pauseId;
        var started = await CallAsync(Void(ct => _docker.StartAsync(id, ct)), _timings.StartTimeout, Retry.StartPath, stopping);
        if (!started.Ok)
        {
            return started.Failed<ContainerFacts>();
        }

        var inspected = await CallAsync(ct => _docker.InspectAsync(id, ct), _timings.InspectTimeout, Retry.StartPath, stopping);
        return inspected is { Ok: true, Value.Running: false } ? new(null, CallFailure.Transient, "the pause container exited at once", false) : inspected;
    }

    /// <summary>Containers that exist already take the state the engine gives them; none is restarted.</summary>
    private async Task AdoptAsync(CancellationToken stopping)
    {
        if (_adopted is not { Count: > 0 } adopted)
        {
            return;
        }

        foreach (var (name, id) in adopted)
        {
            var inspected = await CallAsync(ct => _docker.InspectAsync(id, ct), _timings.InspectTimeout, Retry.Once, stopping);
            if (name == ContainerSpec.PauseContainerName)
            {
                _pauseId = id;
                _pauseFacts = inspected.Value;
                var alive = inspected.Ok ? inspected.Value!.Running : inspected.Failure != CallFailure.NotFound;
                _state = _state with { Network = alive ? NetworkStatus.Ready : NetworkStatus.Lost };
                continue;
            }

            if (Definition(name, required: false) is null)
            {
                continue;
            }

            _runtimeIds[name] = id;
            if (inspected.Ok)
            {
                var facts = _facts[name] = inspected.Value!;
                var known = facts.Running ? ContainerStatus.Running : facts.Status == "created" ? ContainerStatus.Created : ContainerStatus.Stopped;
                Set(name, c => c with { Known = known, ExitCode = facts.ExitCode, StartedAt = facts.StartedAt, CreatedAt = _time.GetUtcNow() });
            }
            else
            {
                // Not known yet (the engine is not answering): the next inspection says; gone means stopped.
                var known = inspected.Failure == CallFailure.NotFound ? ContainerStatus.Stopped : ContainerStatus.Running;
                Set(name, c => c with { Known = known, CreatedAt = _time.GetUtcNow() });
            }
        }

        if (_state.Network == NetworkStatus.None && _runtimeIds.Count > 0)
        {
            _state = _state with { Network = NetworkStatus.Lost }; // its containers exist, its pause container does not
        }

        _pullStartedAt ??= _time.GetUtcNow();
        _startedAt ??= _state.Containers.Min(c => c.StartedAt);
    }

    /// <summary>
    /// The last line of defence: something nobody foresaw went wrong. The task stops, whatever of it still
    /// runs is killed, and STOPPED is reported with the error, so nothing is left holding the host.
    /// </summary>
    private async Task AbandonAsync(Exception error, CancellationToken stopping)
    {
        LogSupervisorFailed(_logger, TaskArn, error);
        var reason = Bounded($"InternalError: {error.GetType().Name}: {error.Message}");
        Want(DesiredStatus.Stopped, _startedAt is null ? TaskStateMachine.TaskFailedToStart : TaskStateMachine.EssentialContainerExited, reason);
        foreach (var id in _runtimeIds.Values.Append(_pauseId).OfType<string>())
        {
            try
            {
                await CallAsync(Void(ct => _docker.StopAsync(id, TimeSpan.Zero, ct)), _timings.InspectTimeout, Retry.Once, stopping);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stopping.IsCancellationRequested)
            {
                LogCannotStop(_logger, TaskArn, id, e.Message);
            }
        }

        foreach (var container in _state.Containers.Where(c => c.Known != ContainerStatus.Stopped))
        {
            Set(container.Name, c => c with { Known = ContainerStatus.Stopped });
        }

        _state = _state with { Network = _state.Network == NetworkStatus.NotNeeded ? NetworkStatus.NotNeeded : NetworkStatus.Released };
        _stoppedAt ??= _time.GetUtcNow();
        Report();
    }

    /// <summary>
    /// Once STOPPED: after the cleanup wait, every container of the task (found by its label, so one an
    /// interrupted create left behind goes too) and its task-scoped volumes are removed. Until then a late
    /// engine event (an oom that containerd sends after the exit) still corrects the report.
    /// </summary>
    public async Task CleanUpAsync(TimeSpan wait, CancellationToken stopping)
    {
        var deadline = _time.GetUtcNow() + wait;
        while (deadline - _time.GetUtcNow() is { Ticks: > 0 } left)
        {
            if (await WaitForSignalAsync(left, stopping))
            {
                Drain();
                await RefreshAsync(stopping);
                Report();
            }
        }

        var labelled = await CallAsync(ct => _docker.ListTaskContainersAsync(TaskArn, ct), _timings.InspectTimeout, Retry.Cleanup, stopping);
        var ids = _runtimeIds.Values.Append(_pauseId).OfType<string>().Concat(labelled.Value?.Select(c => c.ID) ?? []).Distinct(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            var removed = await CallAsync(Void(ct => _docker.RemoveAsync(id, ct)), _timings.RemoveTimeout, Retry.Cleanup, stopping);
            if (removed.Failure is not null)
            {
                LogCleanupFailed(_logger, TaskArn, id, removed.Message);
            }
        }

        foreach (var volume in _definition.Volumes.Where(v => v.Host is not { HasSourcePath: true } && v.DockerVolumeConfiguration is not { Scope: "shared" }))
        {
            var name = ContainerSpec.VolumeName(_context, volume);
            var removed = await CallAsync(Void(ct => _docker.RemoveVolumeAsync(name, ct)), _timings.RemoveTimeout, Retry.Cleanup, stopping);
            if (removed.Failure is not null)
            {
                LogCleanupFailed(_logger, TaskArn, name, removed.Message);
            }
        }
    }

    /// <summary>
    /// The Docker volumes a container mounts, before it is created: a task-scoped one is made with its
    /// driver, options and labels; a shared one is used if it exists (with the same driver) and made
    /// only when autoprovision allows. Task volumes without any configuration are made by Docker.
    /// Returns the failure, if any.
    /// </summary>
    private async Task<Outcome<bool>?> PrepareVolumesAsync(ContainerDefinition container, CancellationToken stopping)
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
            var existing = await CallAsync(ct => _docker.VolumeDriverAsync(name, ct), _timings.InspectTimeout, Retry.StartPath, stopping);
            if (!existing.Ok)
            {
                return existing.Failed<bool>();
            }

            var shared = configuration.Scope == "shared";
            if (existing.Value is { } found)
            {
                if (shared && configuration.HasDriver && found != driver)
                {
                    throw new InvalidOperationException($"shared volume '{name}' exists with driver '{found}', the task definition asks for '{driver}'");
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

            var created = await CallAsync(Void(ct => _docker.CreateVolumeAsync(name, driver, configuration.DriverOpts, labels, ct)), _timings.CreateTimeout, Retry.StartPath, stopping);
            if (!created.Ok)
            {
                return created;
            }
        }

        return null;
    }

    /// <summary>
    /// Reads each created container's state back from the engine: the known state follows what it says.
    /// An engine that is away tells nothing (the containers stay as last known); one that keeps failing
    /// to inspect a container, or says it no longer exists, loses it (CannotInspectContainerError).
    /// </summary>
    private async Task RefreshAsync(CancellationToken stopping)
    {
        foreach (var (name, id) in _runtimeIds)
        {
            var inspected = await CallAsync(ct => _docker.InspectAsync(id, ct), _timings.InspectTimeout, Retry.Once, stopping);
            var container = _state.Containers.First(c => c.Name == name);
            if (!inspected.Ok)
            {
                if (container.Known != ContainerStatus.Stopped && Lost(name, inspected))
                {
                    LogLost(_logger, TaskArn, name, inspected.Message);
                    // It may still run although the engine cannot say so: a task reported STOPPED runs nothing.
                    await CallAsync(Void(ct => _docker.StopAsync(id, TimeSpan.Zero, ct)), _timings.InspectTimeout, Retry.UntilDone, stopping);
                    Set(name, c => c with { Known = ContainerStatus.Stopped, Reason = c.Reason ?? Bounded($"CannotInspectContainerError: {inspected.Message}") });
                }

                continue;
            }

            _inspectFailures.Remove(name);
            var facts = _facts[name] = inspected.Value!;
            var outOfMemory = facts.OomKilled || _outOfMemory.Contains(id);
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

        if (_state.Network == NetworkStatus.Ready && _pauseId is { } pause)
        {
            var inspected = await CallAsync(ct => _docker.InspectAsync(pause, ct), _timings.InspectTimeout, Retry.Once, stopping);
            if (inspected.Ok)
            {
                _pauseFacts = inspected.Value;
                _state = inspected.Value!.Running ? _state : _state with { Network = NetworkStatus.Lost };
            }
            else if (Lost(ContainerSpec.PauseContainerName, inspected))
            {
                _state = _state with { Network = NetworkStatus.Lost };
            }
        }

        if (TaskStateMachine.LastStatus(_state) == "STOPPED")
        {
            _stoppedAt ??= _time.GetUtcNow();
        }
    }

    /// <summary>Whether a failed inspection means the container is gone: it does not exist, or the engine keeps failing to say.</summary>
    private bool Lost(string name, Outcome<ContainerFacts> inspected)
    {
        if (inspected.Failure == CallFailure.EngineUnavailable || inspected.Aborted)
        {
            return false;
        }

        var failures = _inspectFailures[name] = _inspectFailures.GetValueOrDefault(name) + 1;
        return inspected.Failure == CallFailure.NotFound || failures >= _timings.InspectFailures;
    }

    private enum Retry
    {
        /// <summary>On the way to RUNNING: tried within bounds, and given up at once when the task is to stop.</summary>
        StartPath,

        /// <summary>Tried until it works or fails for good (a 4xx): a stop.</summary>
        UntilDone,

        /// <summary>Tried within bounds, whatever the task wants: clean-up.</summary>
        Cleanup,

        /// <summary>Tried once: an inspection, which the next pass repeats anyway.</summary>
        Once,
    }

    private readonly record struct Outcome<T>(T? Value, CallFailure? Failure, string Message, bool Aborted)
    {
        public bool Ok => Failure is null && !Aborted;

        /// <summary>This failure (or abort) as the outcome of a call that would have returned a <typeparamref name="TOther"/>.</summary>
        public Outcome<TOther> Failed<TOther>() => new(default, Failure, Message, Aborted);
    }

    /// <summary>
    /// One engine call with its timeout. Transient failures are tried again with backoff, as
    /// <paramref name="retry"/> allows; a failure the engine will repeat comes back at once. Only the
    /// agent stopping throws; an exception no engine call throws (a bug) goes up to <see cref="RunAsync"/>.
    /// </summary>
    private async Task<Outcome<T>> CallAsync<T>(Func<CancellationToken, Task<T>> call, TimeSpan timeout, Retry retry, CancellationToken stopping)
    {
        var abort = retry == Retry.StartPath ? _stopWanted.Token : CancellationToken.None;
        var engineAwaySince = (DateTimeOffset?)null;
        for (var attempt = 0; ; attempt++)
        {
            CallFailure failure;
            string message;
            using (var timer = new CancellationTokenSource(timeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, abort, timer.Token))
            {
                try
                {
                    return new(await call(linked.Token), null, "", false);
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    throw;
                }
                catch (OperationCanceledException) when (abort.IsCancellationRequested)
                {
                    return new(default, null, "", true);
                }
                catch (Exception e) when (DockerErrors.Classify(e) is { } kind)
                {
                    (failure, message) = (kind, Bounded(DockerErrors.Message(e)));
                }
            }

            // An engine that is away (restarting) is waited for, up to a bound, without using up the tries
            // meant for an engine that answers but fails.
            engineAwaySince = failure == CallFailure.EngineUnavailable ? engineAwaySince ?? _time.GetUtcNow() : null;
            var waitingForEngine = engineAwaySince is { } away && _time.GetUtcNow() - away < _timings.EngineWait;
            if (waitingForEngine)
            {
                attempt = Math.Min(attempt, _timings.Attempts - 2);
            }

            var exhausted = retry switch
            {
                Retry.Once => true,
                Retry.UntilDone => false,
                _ => attempt + 1 >= _timings.Attempts,
            };
            if (failure is not (CallFailure.Transient or CallFailure.EngineUnavailable) || exhausted)
            {
                return new(default, failure, message, false);
            }

            var delay = _timings.Backoff(attempt, retry == Retry.UntilDone ? _timings.StopRetryCap : _timings.RetryCap, _jitter.NextDouble());
            LogRetrying(_logger, TaskArn, failure, message, delay.TotalMilliseconds);
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(stopping, abort);
            try
            {
                await Task.Delay(delay, _time, waiting.Token);
            }
            catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
            {
                return new(default, null, "", true);
            }
        }
    }

    private static Func<CancellationToken, Task<bool>> Void(Func<CancellationToken, Task> call) => async ct =>
    {
        await call(ct);
        return true;
    };

    /// <summary>Waits for a signal or for <paramref name="timeout"/>; true if a signal came.</summary>
    private async Task<bool> WaitForSignalAsync(TimeSpan timeout, CancellationToken stopping)
    {
        using var timer = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, timer.Token);
        try
        {
            return await _inbox.Reader.WaitToReadAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Takes in everything the inbox holds.</summary>
    private void Drain()
    {
        while (_inbox.Reader.TryRead(out var signal))
        {
            switch (signal)
            {
                case Signal.Desire desire:
                    Want(desire.Status, desire.StopCode, desire.Reason);
                    break;
                case Signal.Wake:
                    Interlocked.Exchange(ref _wakeQueued, 0);
                    break;
                case Signal.OutOfMemory oom:
                    _outOfMemory.Add(oom.ContainerId);
                    break;
            }
        }
    }

    /// <summary>On the loop: desired status moves forward; the first stop code and reason stay.</summary>
    private void Want(DesiredStatus status, string stopCode, string reason)
    {
        var forward = TaskStateMachine.Forward(_state.Desired, status);
        if (forward != _state.Desired)
        {
            (_stopCode, _stoppedReason) = _stopCode.Length == 0 ? (stopCode, reason) : (_stopCode, _stoppedReason);
            _state = _state with { Desired = forward };
            _stoppingAt ??= _time.GetUtcNow();
        }
    }

    private void Report()
    {
        var change = Snapshot();
        if (!change.Equals(_view.Change))
        {
            _view = new View(change, _runtimeIds.ToImmutableDictionary(StringComparer.Ordinal));
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
                if (facts.Running)
                {
                    // awsvpc: the task's address and published ports are its pause container's.
                    var bindings = _pauseFacts is { } pause
                        ? pause.Bindings.Where(b => Definition(container.Name).PortMappings.Any(p => p.ContainerPort == b.ContainerPort))
                        : facts.Bindings;
                    state.NetworkBindings.Add(bindings.Select(b => new AgentNetworkBinding { BindIP = b.BindIp, ContainerPort = b.ContainerPort, HostPort = b.HostPort, Protocol = b.Protocol }));
                }
            }

            if (_pauseFacts?.Addresses.Values.FirstOrDefault() is { } address)
            {
                state.PrivateIPv4Address = address;
            }

            change.Containers.Add(state);
        }

        return change;
    }

    /// <summary>
    /// A container could not be pulled, created or started. As on ECS, that fails the task to start if
    /// the container is essential; otherwise the container alone ends, with the reason, and the task goes on.
    /// </summary>
    private async Task FailAsync(string container, string reason, CancellationToken stopping)
    {
        reason = Bounded(reason);
        Set(container, c => c with { Reason = reason });
        if (_state.Containers.First(c => c.Name == container).Essential)
        {
            LogStopping(_logger, TaskArn, TaskStateMachine.TaskFailedToStart, reason);
            Want(DesiredStatus.Stopped, TaskStateMachine.TaskFailedToStart, reason);
            return;
        }

        LogContainerFailed(_logger, TaskArn, container, reason);
        if (_state.Containers.First(c => c.Name == container).Known == ContainerStatus.Created)
        {
            await StopContainerAsync(container, stopping); // a start that failed late may have started it
        }

        Set(container, c => c with { Known = ContainerStatus.Stopped });
    }

    private void Set(string name, Func<ContainerState, ContainerState> change) =>
        _state = _state with { Containers = [.. _state.Containers.Select(c => c.Name == name ? change(c) : c)] };

    private ContainerDefinition Definition(string name) => Definition(name, required: true)!;

    private ContainerDefinition? Definition(string name, bool required) =>
        _definition.ContainerDefinitions.FirstOrDefault(c => c.Name == name)
            ?? (required ? throw new InvalidOperationException($"the task has no container '{name}'") : null);

    private Dictionary<string, string> Names() =>
        _definition.ContainerDefinitions.ToDictionary(c => c.Name, c => ContainerSpec.Name(_context, c), StringComparer.Ordinal);

    private static ContainerState Initial(ContainerDefinition container, string networkMode) => new(
        container.Name,
        !container.HasEssential || container.Essential,
        ContainerStatus.None,
        [.. container.DependsOn.Select(d => new Dependency(d.ContainerName, System.Enum.Parse<DependencyCondition>(d.Condition, ignoreCase: true)))],
        StartTimeout: container.HasStartTimeout ? TimeSpan.FromSeconds(container.StartTimeout) : null,
        RestartPolicy: container.RestartPolicy is { Enabled: true } policy
            ? new RestartPolicy(true, policy.IgnoredExitCodes.ToHashSet(), policy.HasRestartAttemptPeriod ? TimeSpan.FromSeconds(policy.RestartAttemptPeriod) : RestartPolicy.DefaultAttemptPeriod)
            : null,
        VolumesFrom: [.. container.VolumesFrom.Select(v => v.SourceContainer)],
        Links: networkMode == "bridge" ? [.. container.Links.Select(l => l.Split(':', 2)[0])] : []);

    private static Timestamp? Stamp(DateTimeOffset? time) => time is { } t ? Timestamp.FromDateTimeOffset(t) : null;

    /// <summary>Engine messages go into reports and logs: bounded and printable, whatever the engine (or an image name) holds.</summary>
    private static string Bounded(string text) => LogText.Printable(text, MaxReasonLength);

    private abstract record Signal
    {
        public sealed record Desire(DesiredStatus Status, string StopCode, string Reason) : Signal;

        public sealed record Wake : Signal;

        public sealed record OutOfMemory(string ContainerId) : Signal;
    }

    private sealed record View(TaskStateChange Change, ImmutableDictionary<string, string> RuntimeIds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task {TaskArn}: {Action} (containers: {Containers}; network {Network})")]
    private static partial void LogAction(ILogger logger, string taskArn, TaskAction action, string containers, NetworkStatus network);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskArn}: {Count} secret values received from the coordinator, kept in memory only{Failure}")]
    private static partial void LogSecretsReceived(ILogger logger, string taskArn, int count, string failure);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskArn} stopping: {StopCode}: {Reason}")]
    private static partial void LogStopping(ILogger logger, string taskArn, string stopCode, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskArn}: non-essential container {Container} failed: {Reason}")]
    private static partial void LogContainerFailed(ILogger logger, string taskArn, string container, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskArn}: an engine call failed ({Failure}: {Reason}); trying again in {DelayMs:F0} ms")]
    private static partial void LogRetrying(ILogger logger, string taskArn, CallFailure failure, string reason, double delayMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskArn}: container {Container} cannot be stopped ({Reason}); removing it")]
    private static partial void LogCannotStop(ILogger logger, string taskArn, string container, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskArn}: container {Container} is lost to the engine: {Reason}")]
    private static partial void LogLost(ILogger logger, string taskArn, string container, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskArn}: {Item} could not be removed at cleanup: {Reason}")]
    private static partial void LogCleanupFailed(ILogger logger, string taskArn, string item, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The supervisor of task {TaskArn} failed; stopping the task")]
    private static partial void LogSupervisorFailed(ILogger logger, string taskArn, Exception exception);
}
