namespace EcsLite.Agent.Core.Tasks;

/// <summary>A container's status as the agent knows it, in the order a container goes through them.</summary>
public enum ContainerStatus
{
    None = 0,
    Pulled = 1,
    Created = 2,
    Running = 3,
    Stopped = 4,
}

/// <summary>What a task should be: only ever moves forward, from Running to Stopped.</summary>
public enum DesiredStatus
{
    Running = 3,
    Stopped = 4,
}

public enum HealthStatus
{
    Unknown,
    Healthy,
    Unhealthy,
}

/// <summary>ECS's dependency conditions (containerDefinitions[].dependsOn[].condition).</summary>
public enum DependencyCondition
{
    Start,
    Complete,
    Success,
    Healthy,
}

public sealed record Dependency(string ContainerName, DependencyCondition Condition);

/// <summary>ECS's container restart policy: restart in place unless the exit code is ignored or it ran too briefly.</summary>
public sealed record RestartPolicy(bool Enabled, IReadOnlySet<int> IgnoredExitCodes, TimeSpan AttemptPeriod)
{
    public static readonly TimeSpan DefaultAttemptPeriod = TimeSpan.FromSeconds(300);
}

/// <summary>
/// An awsvpc task's network namespace, held by the task's pause container: set up before any container
/// of the task is created, and released once all of them have stopped.
/// </summary>
public enum NetworkStatus
{
    /// <summary>Not an awsvpc task: its containers use the host's or Docker's networks.</summary>
    NotNeeded,
    None,
    Ready,

    /// <summary>The pause container exited (the engine restarted, or someone stopped it).</summary>
    Lost,
    Released,
}

/// <summary>One container of a task as the agent knows it now.</summary>
/// <param name="VolumesFrom">Containers whose volumes this one mounts: created before it, as the ECS agent orders them.</param>
/// <param name="Links">Containers this one links to (bridge mode): running before it is created.</param>
public sealed record ContainerState(
    string Name,
    bool Essential,
    ContainerStatus Known,
    IReadOnlyList<Dependency> DependsOn,
    int? ExitCode = null,
    HealthStatus Health = HealthStatus.Unknown,
    DateTimeOffset? StartedAt = null,
    DateTimeOffset? CreatedAt = null,
    TimeSpan? StartTimeout = null,
    RestartPolicy? RestartPolicy = null,
    string? Reason = null,
    IReadOnlyList<string>? VolumesFrom = null,
    IReadOnlyList<string>? Links = null)
{
    /// <summary>Containers that must be stopped after this one: those it depends on or links to.</summary>
    public IEnumerable<string> Needs => DependsOn.Select(d => d.ContainerName).Concat(Links ?? []);
}

/// <summary>A task as the agent knows it: what is wanted, each container's known state, and its network.</summary>
public sealed record TaskState(string TaskArn, DesiredStatus Desired, IReadOnlyList<ContainerState> Containers, NetworkStatus Network = NetworkStatus.NotNeeded);

/// <summary>What the supervisor should do next for a task; the core decides, the supervisor calls Docker.</summary>
public abstract record TaskAction
{
    public sealed record Pull(string Container) : TaskAction;

    public sealed record Create(string Container) : TaskAction;

    public sealed record Start(string Container) : TaskAction;

    /// <summary>Restart an exited container in place (restart policy).</summary>
    public sealed record Restart(string Container) : TaskAction;

    /// <summary>SIGTERM, then SIGKILL after the stop timeout; a container that never started just counts as stopped after it.</summary>
    public sealed record Stop(string Container) : TaskAction;

    /// <summary>A container that was never created needs no Docker call to count as stopped.</summary>
    public sealed record MarkStopped(string Container) : TaskAction;

    /// <summary>The task must stop: its desired status becomes STOPPED with ECS's stop code and reason.</summary>
    public sealed record StopTask(string StopCode, string Reason) : TaskAction;

    /// <summary>awsvpc: create and start the task's pause container (again, if it was lost while nothing ran).</summary>
    public sealed record SetUpNetwork : TaskAction;

    /// <summary>awsvpc: every container has stopped; the pause container goes.</summary>
    public sealed record ReleaseNetwork : TaskAction;
}

/// <summary>
/// The agent's task state machine, after the ECS agent's task engine: ordered statuses, a desired status
/// that only moves forward, and a pure "next transitions" function of the task's known state and the
/// time. It returns every action that can proceed now (pulls and creates in parallel, starts once their
/// dependencies are met, stops dependents before what they depend on).
/// </summary>
public static class TaskStateMachine
{
    public const string EssentialContainerExited = "EssentialContainerExited";
    public const string TaskFailedToStart = "TaskFailedToStart";

    public static IReadOnlyList<TaskAction> Next(TaskState task, DateTimeOffset now)
    {
        return task.Desired == DesiredStatus.Stopped ? StopAll(task) : Advance(task, now);
    }

    /// <summary>
    /// Every container has ended while the task is still meant to run: the next <see cref="Next"/> decides
    /// why the task stops (or restarts what the policy restarts). Nothing is reported in between.
    /// </summary>
    public static bool AwaitingDecision(TaskState task) =>
        task.Desired == DesiredStatus.Running && task.Containers.All(c => c.Known == ContainerStatus.Stopped);

    /// <summary>The task's status as ECS reports it (lastStatus).</summary>
    public static string LastStatus(TaskState task)
    {
        var containers = task.Containers;
        if (containers.All(c => c.Known == ContainerStatus.Stopped))
        {
            return Unreleased(task) && task.Desired == DesiredStatus.Stopped ? "DEPROVISIONING" : "STOPPED";
        }

        if (task.Desired == DesiredStatus.Stopped)
        {
            return containers.Any(c => c.Known == ContainerStatus.Running) ? "STOPPING" : "DEPROVISIONING";
        }

        var started = containers.All(c => c.Known == ContainerStatus.Running || (c.Known == ContainerStatus.Stopped && !c.Essential));
        return started ? "RUNNING" : task.Network == NetworkStatus.None ? "PROVISIONING" : "PENDING";
    }

    /// <summary>
    /// An awsvpc task's network is released even if it never became ready: a set-up cut short by a stop
    /// may have started the pause container.
    /// </summary>
    private static bool Unreleased(TaskState task) => task.Network is NetworkStatus.None or NetworkStatus.Ready or NetworkStatus.Lost;

    /// <summary>Desired status only moves forward: a task once told to stop never runs again.</summary>
    public static DesiredStatus Forward(DesiredStatus current, DesiredStatus requested) =>
        requested > current ? requested : current;

    /// <summary>ECS's lastStatus of a container.</summary>
    public static string LastStatus(ContainerState container) => container.Known switch
    {
        ContainerStatus.Running => "RUNNING",
        ContainerStatus.Stopped => "STOPPED",
        _ => "PENDING",
    };

    private static List<TaskAction> Advance(TaskState task, DateTimeOffset now)
    {
        var byName = task.Containers.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var actions = new List<TaskAction>();
        if (task.Network == NetworkStatus.Lost)
        {
            // Containers still running sit in a namespace nobody holds any more (the engine stopped the pause
            // container first): they are stopped too, and then handled as any exit is (restarted in a new
            // namespace if their policy says so; otherwise an essential one stops the task).
            var stranded = task.Containers.Where(c => c.Known == ContainerStatus.Running).ToList();
            if (stranded.Count > 0)
            {
                return [.. stranded.Select(c => new TaskAction.Stop(c.Name))];
            }

            actions.Add(new TaskAction.SetUpNetwork());
        }
        else if (task.Network == NetworkStatus.None)
        {
            actions.Add(new TaskAction.SetUpNetwork());
        }

        var networkReady = task.Network is NetworkStatus.NotNeeded or NetworkStatus.Ready;
        foreach (var container in task.Containers.Where(c => c.Known == ContainerStatus.Stopped))
        {
            if (Restartable(container, now))
            {
                if (networkReady)
                {
                    actions.Add(new TaskAction.Restart(container.Name));
                }
            }
            else if (container.Essential)
            {
                return [new TaskAction.StopTask(EssentialContainerExited, "Essential container in task exited")];
            }
        }

        foreach (var container in task.Containers)
        {
            switch (container.Known)
            {
                case ContainerStatus.None:
                    actions.Add(new TaskAction.Pull(container.Name));
                    break;
                case ContainerStatus.Pulled:
                    var (creatable, notCreatable) = CanCreate(container, byName);
                    if (notCreatable is not null)
                    {
                        return [new TaskAction.StopTask(TaskFailedToStart, notCreatable)];
                    }

                    if (creatable && networkReady)
                    {
                        actions.Add(new TaskAction.Create(container.Name));
                    }

                    break;
                case ContainerStatus.Created:
                    var (ready, failure) = DependenciesMet(container, byName, now);
                    if (failure is not null)
                    {
                        return [new TaskAction.StopTask(TaskFailedToStart, failure)];
                    }

                    if (ready)
                    {
                        actions.Add(new TaskAction.Start(container.Name));
                    }

                    break;
            }
        }

        // Every container ended and none will be restarted: the task is over, even without an essential one.
        if (!actions.Any(a => a is TaskAction.Restart) && task.Containers.All(c => c.Known == ContainerStatus.Stopped)
            && !task.Containers.Any(c => Restartable(c, now)))
        {
            return [new TaskAction.StopTask(EssentialContainerExited, "Essential container in task exited")];
        }

        return actions;
    }

    /// <summary>
    /// Stop running containers, dependents (and linkers) before the containers they need; never-started
    /// ones just count as stopped; the network goes last.
    /// </summary>
    private static List<TaskAction> StopAll(TaskState task)
    {
        var actions = new List<TaskAction>();
        if (task.Containers.All(c => c.Known == ContainerStatus.Stopped))
        {
            return Unreleased(task) ? [new TaskAction.ReleaseNetwork()] : actions;
        }

        foreach (var container in task.Containers)
        {
            switch (container.Known)
            {
                case ContainerStatus.None or ContainerStatus.Pulled:
                    actions.Add(new TaskAction.MarkStopped(container.Name));
                    break;
                case ContainerStatus.Created:
                    // A start whose answer was lost may have started it after all: stopped to be sure.
                    actions.Add(new TaskAction.Stop(container.Name));
                    break;
                case ContainerStatus.Running:
                    var dependentsStillRunning = task.Containers.Any(other =>
                        other.Known == ContainerStatus.Running && other.Needs.Contains(container.Name, StringComparer.Ordinal));
                    if (!dependentsStillRunning)
                    {
                        actions.Add(new TaskAction.Stop(container.Name));
                    }

                    break;
            }
        }

        return actions;
    }

    /// <summary>
    /// Docker resolves volumesFrom and links when it creates a container, so, as the ECS agent orders them,
    /// volumesFrom sources are created first and link targets are running first; or why that can never be.
    /// </summary>
    private static (bool Ready, string? Failure) CanCreate(ContainerState container, Dictionary<string, ContainerState> byName)
    {
        var ready = true;
        foreach (var source in container.VolumesFrom ?? [])
        {
            if (!byName.TryGetValue(source, out var target))
            {
                return (false, $"Container '{container.Name}' mounts volumes from '{source}', which is not in the task");
            }

            ready &= target.Known >= ContainerStatus.Created;
        }

        foreach (var link in container.Links ?? [])
        {
            if (!byName.TryGetValue(link, out var target))
            {
                return (false, $"Container '{container.Name}' links to '{link}', which is not in the task");
            }

            if (target.Known == ContainerStatus.Stopped)
            {
                return (false, $"Container '{container.Name}' links to '{link}', which stopped before it could be created");
            }

            ready &= target.Known == ContainerStatus.Running;
        }

        return (ready, null);
    }

    /// <summary>Whether every dependency's condition holds; or why it never can (the task then fails to start).</summary>
    private static (bool Ready, string? Failure) DependenciesMet(ContainerState container, Dictionary<string, ContainerState> byName, DateTimeOffset now)
    {
        var ready = true;
        foreach (var dependency in container.DependsOn)
        {
            if (!byName.TryGetValue(dependency.ContainerName, out var target))
            {
                return (false, $"Container '{container.Name}' depends on '{dependency.ContainerName}', which is not in the task");
            }

            var (met, failure) = dependency.Condition switch
            {
                DependencyCondition.Start => (target.Known >= ContainerStatus.Running, null),
                DependencyCondition.Complete => (target.Known == ContainerStatus.Stopped, null),
                DependencyCondition.Success => target.Known == ContainerStatus.Stopped
                    ? (target.ExitCode == 0, target.ExitCode == 0 ? null : $"Container '{container.Name}' depends on '{target.Name}' exiting successfully, but it exited with {target.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no code"}")
                    : (false, (string?)null),
                DependencyCondition.Healthy => target.Known == ContainerStatus.Stopped
                    ? (false, $"Container '{container.Name}' depends on '{target.Name}' becoming healthy, but it stopped")
                    : (target.Health == HealthStatus.Healthy, null),
                _ => (false, null),
            };
            if (failure is not null)
            {
                return (false, failure);
            }

            ready &= met;
        }

        if (!ready && container is { StartTimeout: { } timeout, CreatedAt: { } created } && now - created > timeout)
        {
            return (false, $"Container '{container.Name}' timed out after {timeout.TotalSeconds:0} s waiting for its dependencies (startTimeout)");
        }

        return (ready, null);
    }

    private static bool Restartable(ContainerState container, DateTimeOffset now) =>
        container.RestartPolicy is { Enabled: true } policy
        && container.ExitCode is { } code && !policy.IgnoredExitCodes.Contains(code)
        && container.StartedAt is { } started && now - started >= policy.AttemptPeriod;
}
