using System.Collections.Immutable;
using System.Globalization;
using EcsLite.Api.V1;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Core.State;

/// <summary>
/// The cluster state as one immutable value. Commands read it and return <see cref="StateChange"/>s;
/// <see cref="Apply(StateChange)"/> is the only way it changes, both for new commands and when the
/// host rebuilds it from the store, so the two can never disagree.
/// Messages held here are never mutated: commands clone before changing one.
/// </summary>
public sealed record CoordinatorState(
    ImmutableSortedDictionary<string, Cluster> Clusters,
    ImmutableSortedDictionary<string, TaskDefinitionFamily> Families,
    ImmutableSortedDictionary<string, StoredContainerInstance> ContainerInstances,
    ImmutableDictionary<string, AgentConnection> Connections,
    ImmutableSortedDictionary<string, StoredTask> Tasks,
    ImmutableDictionary<string, ImmutableHashSet<string>> TasksByInstance,
    ImmutableSortedDictionary<string, StoredService> Services,
    ImmutableDictionary<string, InstanceUsage> Usage,
    ImmutableDictionary<string, ImmutableDictionary<string, StoredTask>> TasksByService)
{
    /// <summary>
    /// How the big maps compare the record they replace with the new one: by reference, as records held here are
    /// never changed (an equal new one is rare, and comparing every field of each replaced one cost more than it saves).
    /// Declared before <see cref="Empty"/>, which uses it: static fields are set in the order they are written.
    /// </summary>
    private static readonly IEqualityComparer<object> ByReference = ReferenceEqualityComparer.Instance;

    public static CoordinatorState Empty { get; } = new(
        ImmutableSortedDictionary.Create<string, Cluster>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, TaskDefinitionFamily>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, StoredContainerInstance>(StringComparer.Ordinal),
        ImmutableDictionary.Create<string, AgentConnection>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, StoredTask>(StringComparer.Ordinal, ByReference),
        ImmutableDictionary.Create<string, ImmutableHashSet<string>>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, StoredService>(StringComparer.Ordinal),
        ImmutableDictionary.Create<string, InstanceUsage>(StringComparer.Ordinal),
        ImmutableDictionary.Create<string, ImmutableDictionary<string, StoredTask>>(StringComparer.Ordinal));

    /// <summary>Schedules by name (only the default schedule group exists).</summary>
    public ImmutableSortedDictionary<string, StoredSchedule> Schedules { get; init; } = ImmutableSortedDictionary.Create<string, StoredSchedule>(StringComparer.Ordinal, ByReference);

    /// <summary>Services are keyed by cluster and name: the same name may exist in two clusters.</summary>
    public static string ServiceKey(string cluster, string serviceName) => $"{cluster}/{serviceName}";

    public CoordinatorState Apply(StateChange change) => change switch
    {
        ClusterPut put => this with { Clusters = Clusters.SetItem(put.Cluster.ClusterName, put.Cluster) },
        FamilyPut put => this with { Families = Families.SetItem(put.Family, Family(put.Family) with { LastRevision = put.LastRevision }) },
        TaskDefinitionPut put => WithFamily(put.Definition.TaskDefinition.Family, f => f.With(put.Definition)),
        TaskDefinitionRemoved removed => WithFamily(removed.Family, f => f.Without(removed.Revision)),
        ContainerInstancePut put => this with { ContainerInstances = ContainerInstances.SetItem(put.Instance.ContainerInstance.ContainerInstanceArn, put.Instance) },
        TaskPut or TaskRemoved => ApplyTasks([change]),
        ServicePut put => this with { Services = Services.SetItem(ServiceKey(put.Service.Cluster, put.Service.Service.ServiceName), put.Service) },
        ServiceRemoved removed => this with { Services = Services.Remove(ServiceKey(removed.Cluster, removed.ServiceName)) },
        ContainerInstanceRemoved removed => this with
        {
            ContainerInstances = ContainerInstances.Remove(removed.ContainerInstanceArn),
            Connections = Connections.Remove(removed.ContainerInstanceArn),
        },
        SchedulePut put => this with { Schedules = Schedules.SetItem(put.Schedule.Schedule.Name, put.Schedule) },
        ScheduleRemoved removed => this with { Schedules = Schedules.Remove(removed.Name) },
        AgentConnectionChanged changed => this with { Connections = Connections.SetItem(changed.ContainerInstanceArn, new AgentConnection(changed.Connected, changed.At, changed.Holder)) },
        _ => throw new ArgumentOutOfRangeException(nameof(change), change, "unknown state change"),
    };

    /// <summary>The stored revision a task definition ARN names, if it is still stored.</summary>
    public StoredTaskDefinition? Revision(string taskDefinitionArn)
    {
        var name = taskDefinitionArn[(taskDefinitionArn.LastIndexOf('/') + 1)..];
        var colon = name.LastIndexOf(':');
        return colon > 0 && int.TryParse(name.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var revision)
            ? Families.GetValueOrDefault(name[..colon])?.Revisions.GetValueOrDefault(revision)
            : null;
    }

    /// <summary>
    /// Whether the task runs its task definition as registered (no overrides): then its store record
    /// names the revision instead of holding a copy, which keeps a big store small and quick to load.
    /// </summary>
    public bool RunsRegistered(StoredTask task) =>
        task.TaskDefinition is { } definition &&
        ReferenceEquals(definition, Families.GetValueOrDefault(definition.Family)?.Revisions.GetValueOrDefault(definition.Revision)?.TaskDefinition);

    /// <summary>The changes in turn; each run of task changes in one update of the task maps (see <see cref="ApplyTasks"/>).</summary>
    public CoordinatorState Apply(IEnumerable<StateChange> changes)
    {
        var state = this;
        var tasks = new List<StateChange>();
        foreach (var change in changes)
        {
            if (change is TaskPut or TaskRemoved)
            {
                tasks.Add(change);
                continue;
            }

            if (tasks.Count > 0)
            {
                state = state.ApplyTasks(tasks);
                tasks.Clear();
            }

            state = state.Apply(change);
        }

        return tasks.Count > 0 ? state.ApplyTasks(tasks) : state;
    }

    /// <summary>
    /// Task puts and removals, in order, through builders of the task maps and their indexes: a RunTask's or
    /// a schedule pass's thousand new tasks cost one copy of the paths they touch, not a persistent update each.
    /// An index entry is only ever added by a put and taken away by a removal (a task never changes instance or group).
    /// </summary>
    private CoordinatorState ApplyTasks(List<StateChange> changes)
    {
        var tasks = Tasks.ToBuilder();
        var byInstance = new Dictionary<string, ImmutableHashSet<string>.Builder>(StringComparer.Ordinal);
        var byService = new Dictionary<string, ImmutableDictionary<string, StoredTask>.Builder>(StringComparer.Ordinal);
        var usage = new Dictionary<string, InstanceUsage>(StringComparer.Ordinal);

        ImmutableHashSet<string>.Builder OnInstance(StoredTask task)
        {
            var instance = task.Task.ContainerInstanceArn;
            return byInstance.TryGetValue(instance, out var set)
                ? set
                : byInstance[instance] = (TasksByInstance.GetValueOrDefault(instance) ?? ImmutableHashSet.Create<string>(StringComparer.Ordinal)).ToBuilder();
        }

        ImmutableDictionary<string, StoredTask>.Builder? OfService(StoredTask task)
        {
            if (!task.Task.Group.StartsWith("service:", StringComparison.Ordinal))
            {
                return null;
            }

            var key = ServiceKey(task.Cluster, task.Task.Group["service:".Length..]);
            return byService.TryGetValue(key, out var service)
                ? service
                : byService[key] = (TasksByService.GetValueOrDefault(key) ?? ImmutableDictionary.Create<string, StoredTask>(StringComparer.Ordinal)).ToBuilder();
        }

        void Use(StoredTask task, int sign)
        {
            var instance = task.Task.ContainerInstanceArn;
            usage[instance] = (usage.TryGetValue(instance, out var held) ? held : UsageOf(instance)).With(task, sign);
        }

        static bool Holds(StoredTask? t) => t is not null && t.Task.LastStatus != TaskStatus.Stopped;
        foreach (var change in changes)
        {
            var (arn, after) = change is TaskPut put ? (put.Task.Task.TaskArn, put.Task) : (((TaskRemoved)change).TaskArn, null);
            var before = tasks.GetValueOrDefault(arn);
            if (after is not null)
            {
                tasks[arn] = after;
                OnInstance(after).Add(arn);
                OfService(after)?[arn] = after;
            }
            else if (before is not null)
            {
                tasks.Remove(arn);
                OnInstance(before).Remove(arn);
                OfService(before)?.Remove(arn);
            }

            if (Holds(before) && Holds(after) && before!.Task.ContainerInstanceArn == after!.Task.ContainerInstanceArn && before.Task.Group == after.Task.Group)
            {
                continue; // a status report: what the task holds is unchanged
            }

            if (Holds(before))
            {
                Use(before!, -1);
            }

            if (Holds(after))
            {
                Use(after!, 1);
            }
        }

        return this with
        {
            Tasks = tasks.ToImmutable(),
            TasksByInstance = Updated(TasksByInstance, byInstance.Select(i => (i.Key, i.Value.ToImmutable())), set => set.IsEmpty),
            TasksByService = Updated(TasksByService, byService.Select(s => (s.Key, s.Value.ToImmutable())), tasks => tasks.IsEmpty),
            Usage = Updated(Usage, usage.Select(u => (u.Key, u.Value)), used => used.Tasks == 0),
        };
    }

    /// <summary>The map with the entries given set, or removed where <paramref name="empty"/>.</summary>
    private static ImmutableDictionary<string, T> Updated<T>(ImmutableDictionary<string, T> map, IEnumerable<(string Key, T Value)> entries, Func<T, bool> empty)
    {
        var builder = map.ToBuilder();
        foreach (var (key, value) in entries)
        {
            if (empty(value))
            {
                builder.Remove(key);
            }
            else
            {
                builder[key] = value;
            }
        }

        return builder.ToImmutable();
    }

    /// <summary>
    /// The schedule changes among <paramref name="changes"/> (a schedule pass's thousand), as <see cref="Apply(StateChange)"/>
    /// of each would, in one update of the schedules rather than a persistent update each.
    /// </summary>
    public CoordinatorState ApplySchedules(IEnumerable<StateChange> changes)
    {
        var schedules = Schedules.ToBuilder();
        foreach (var change in changes)
        {
            if (change is SchedulePut put)
            {
                schedules[put.Schedule.Schedule.Name] = put.Schedule;
            }
            else if (change is ScheduleRemoved removed)
            {
                schedules.Remove(removed.Name);
            }
        }

        return this with { Schedules = schedules.ToImmutable() };
    }

    /// <summary>
    /// The state the stored records make, as <see cref="Apply(StateChange)"/> of each would, but with
    /// tasks (most of a big store) and their indexes built in bulk rather than one persistent update each.
    /// A task record without its task definition runs its registered revision (see <see cref="RunsRegistered"/>).
    /// </summary>
    public static CoordinatorState Load(IEnumerable<StateChange> records)
    {
        var puts = new List<StoredTask>();
        var others = new List<StateChange>();
        foreach (var record in records)
        {
            if (record is TaskPut put)
            {
                puts.Add(put.Task);
            }
            else
            {
                others.Add(record);
            }
        }

        var basis = Empty.Apply(others);
        var tasks = Empty.Tasks.ToBuilder();

        // Tasks of one definition hold one copy of it: the registered revision where they run it
        // unchanged (records from before tasks referred to it held equal copies), else the first seen.
        var definitions = new Dictionary<TaskDefinition, TaskDefinition>();
        foreach (var task in puts)
        {
            var registered = basis.Revision(task.Task.TaskDefinitionArn)?.TaskDefinition;
            var definition = task.TaskDefinition
                ?? registered
                ?? throw new InvalidDataException($"the stored task {task.Task.TaskArn} refers to the task definition {task.Task.TaskDefinitionArn}, which is not stored");
            definition = registered is not null && definition.Equals(registered) ? registered
                : definitions.TryGetValue(definition, out var same) ? same
                : definitions[definition] = definition;

            tasks[task.Task.TaskArn] = ReferenceEquals(definition, task.TaskDefinition) ? task : task.With(task.Task, definition);
        }

        var byInstance = new Dictionary<string, ImmutableHashSet<string>.Builder>(StringComparer.Ordinal);
        var byService = new Dictionary<string, ImmutableDictionary<string, StoredTask>.Builder>(StringComparer.Ordinal);
        var active = new Dictionary<string, List<StoredTask>>(StringComparer.Ordinal);
        foreach (var (arn, task) in tasks)
        {
            var instance = task.Task.ContainerInstanceArn;
            (byInstance.TryGetValue(instance, out var set) ? set : byInstance[instance] = ImmutableHashSet.CreateBuilder<string>(StringComparer.Ordinal)).Add(arn);
            if (task.Task.Group.StartsWith("service:", StringComparison.Ordinal))
            {
                var key = ServiceKey(task.Cluster, task.Task.Group["service:".Length..]);
                (byService.TryGetValue(key, out var list) ? list : byService[key] = ImmutableDictionary.CreateBuilder<string, StoredTask>(StringComparer.Ordinal))[arn] = task;
            }

            if (task.Task.LastStatus != TaskStatus.Stopped)
            {
                (active.TryGetValue(instance, out var held) ? held : active[instance] = []).Add(task);
            }
        }

        return basis with
        {
            Tasks = tasks.ToImmutable(),
            TasksByInstance = byInstance.ToImmutableDictionary(i => i.Key, i => i.Value.ToImmutable(), StringComparer.Ordinal),
            TasksByService = byService.ToImmutableDictionary(s => s.Key, s => s.Value.ToImmutable(), StringComparer.Ordinal),
            Usage = active.ToImmutableDictionary(a => a.Key, a => InstanceUsage.Of(a.Value), StringComparer.Ordinal),
        };
    }

    /// <summary>Whether the instance's agent is connected now; never connected since this coordinator started counts as not.</summary>
    public bool IsConnected(string containerInstanceArn) => Connections.TryGetValue(containerInstanceArn, out var c) && c.Connected;

    /// <summary>Tasks not yet STOPPED (they hold their instance's resources), in a cluster or on an instance.</summary>
    public IEnumerable<StoredTask> ActiveTasks(string? cluster = null, string? containerInstanceArn = null)
    {
        // An instance's tasks come from the index: views of many instances stay linear in what they show.
        var tasks = containerInstanceArn is null
            ? Tasks.Values
            : TasksByInstance.TryGetValue(containerInstanceArn, out var arns) ? arns.Select(arn => Tasks[arn]) : [];
        return tasks.Where(t => t.Task.LastStatus != TaskStatus.Stopped && (cluster is null || t.Cluster == cluster));
    }

    /// <summary>ECS's runningTasksCount and pendingTasksCount: started tasks, and those not started yet.</summary>
    /// <summary>
    /// ECS's runningTasksCount and pendingTasksCount: tasks whose lastStatus is RUNNING, and those not
    /// yet there (PROVISIONING, PENDING, ACTIVATING). A task on its way out (STOPPING, DEPROVISIONING) is neither.
    /// </summary>
    public (int Running, int Pending) TaskCounts(string? cluster = null, string? containerInstanceArn = null)
    {
        int running = 0, pending = 0;
        foreach (var task in ActiveTasks(cluster, containerInstanceArn))
        {
            running += task.Task.LastStatus == TaskStatus.Running ? 1 : 0;
            pending += TaskStatus.Rank(task.Task.LastStatus) < TaskStatus.Rank(TaskStatus.Running) ? 1 : 0;
        }

        return (running, pending);
    }

    /// <summary>A service's tasks (group service:NAME), any status, by ARN.</summary>
    public IEnumerable<StoredTask> ServiceTasks(string cluster, string serviceName) =>
        TasksByService.TryGetValue(ServiceKey(cluster, serviceName), out var tasks) ? tasks.Values : [];

    /// <summary>What an instance's tasks not yet STOPPED take from it.</summary>
    public InstanceUsage UsageOf(string containerInstanceArn) => Usage.GetValueOrDefault(containerInstanceArn) ?? InstanceUsage.None;

    public TaskDefinitionFamily Family(string name) =>
        Families.TryGetValue(name, out var family) ? family : TaskDefinitionFamily.New(name);

    private CoordinatorState WithFamily(string name, Func<TaskDefinitionFamily, TaskDefinitionFamily> change) =>
        this with { Families = Families.SetItem(name, change(Family(name))) };
}

/// <summary>
/// A task definition family: its revision counter, the revisions that still exist, and the newest
/// ACTIVE one (what a bare family name means), kept at hand so a describe by family is O(log n).
/// </summary>
public sealed record TaskDefinitionFamily(
    string Name,
    int LastRevision,
    ImmutableSortedDictionary<int, StoredTaskDefinition> Revisions,
    StoredTaskDefinition? LatestActive)
{
    public static TaskDefinitionFamily New(string name) => new(name, 0, ImmutableSortedDictionary<int, StoredTaskDefinition>.Empty, null);

    public bool HasActive => LatestActive is not null;

    internal TaskDefinitionFamily With(StoredTaskDefinition definition)
    {
        var revision = definition.TaskDefinition.Revision;
        var next = this with { Revisions = Revisions.SetItem(revision, definition) };
        var active = definition.TaskDefinition.Status == TaskDefinitionStatus.Active;
        if (active && revision >= (LatestActive?.TaskDefinition.Revision ?? 0))
        {
            return next with { LatestActive = definition };
        }

        return !active && revision == LatestActive?.TaskDefinition.Revision ? next.FindLatestActive() : next;
    }

    internal TaskDefinitionFamily Without(int revision)
    {
        var next = this with { Revisions = Revisions.Remove(revision) };
        return revision == LatestActive?.TaskDefinition.Revision ? next.FindLatestActive() : next;
    }

    private TaskDefinitionFamily FindLatestActive() => this with
    {
        LatestActive = Revisions.Values.LastOrDefault(d => d.TaskDefinition.Status == TaskDefinitionStatus.Active),
    };
}

/// <summary>What a command changes; the host turns each into a store write.</summary>
public abstract record StateChange;

public sealed record ClusterPut(Cluster Cluster) : StateChange;

public sealed record FamilyPut(string Family, int LastRevision) : StateChange;

public sealed record TaskDefinitionPut(StoredTaskDefinition Definition) : StateChange;

public sealed record TaskDefinitionRemoved(string Family, int Revision) : StateChange;

public sealed record ContainerInstancePut(StoredContainerInstance Instance) : StateChange;

public sealed record TaskPut(StoredTask Task) : StateChange;

public static class StoredTasks
{
    /// <summary>The stored task with another task object and definition (null: none); nothing else is copied.</summary>
    public static StoredTask With(this StoredTask stored, Api.V1.Task task, TaskDefinition? definition) =>
        new() { Task = task, TaskDefinition = definition, Cluster = stored.Cluster, ClientToken = stored.ClientToken };
}

public sealed record ServicePut(StoredService Service) : StateChange;

/// <summary>A STOPPED task purged after its retention.</summary>
public sealed record TaskRemoved(string TaskArn, string Cluster) : StateChange;

/// <summary>An INACTIVE service forgotten after the retention.</summary>
public sealed record ServiceRemoved(string Cluster, string ServiceName) : StateChange;

/// <summary>An INACTIVE (deregistered) container instance forgotten after the retention, once it holds no task.</summary>
public sealed record ContainerInstanceRemoved(string ContainerInstanceArn, string Cluster) : StateChange;

public sealed record SchedulePut(StoredSchedule Schedule) : StateChange;

public sealed record ScheduleRemoved(string Name) : StateChange;

/// <summary>
/// An agent connected or went away. <paramref name="Holder"/> is the coordinator that holds its stream
/// (its advertised URL; empty with one coordinator's embedded store).
/// </summary>
public sealed record AgentConnectionChanged(string ContainerInstanceArn, bool Connected, DateTimeOffset At, string Holder = "") : StateChange;

/// <summary>An agent's connection, since when, and the coordinator that holds its stream.</summary>
public sealed record AgentConnection(bool Connected, DateTimeOffset Since, string Holder = "");

/// <summary>A command's outcome: the changes to make durable and the reply to send once they are.</summary>
public sealed record Mutation<T>(IReadOnlyList<StateChange> Changes, T Result)
{
    /// <summary>
    /// The state with the changes applied, when the command has it already (it applied its own changes as
    /// it went, as a schedule pass does to place fire after fire): the state machine then need not apply
    /// them again, and what was derived from that state (placement candidates) stays valid after it.
    /// </summary>
    public CoordinatorState? After { get; init; }
}

/// <summary>What a command may know of the world besides the state: the time and the ARN format.</summary>
public sealed record CommandContext(DateTimeOffset Now, ArnFormat Arns)
{
    /// <summary>Tasks the command could not place, with the cluster and reason (RESOURCE:MEMORY, ...), counted once it is committed.</summary>
    public List<(string Cluster, string Reason)> PlacementFailures { get; } = [];
}

public static class TaskDefinitionStatus
{
    public const string Active = "ACTIVE";
    public const string Inactive = "INACTIVE";
    public const string DeleteInProgress = "DELETE_IN_PROGRESS";
}

public static class ContainerInstanceStatus
{
    public const string Active = "ACTIVE";
    public const string Draining = "DRAINING";
    public const string Inactive = "INACTIVE";

    /// <summary>Enrolled with a join token, its agent not yet connected.</summary>
    public const string Registering = "REGISTERING";
}

/// <summary>ECS's task statuses (lastStatus and desiredStatus).</summary>
public static class TaskStatus
{
    public const string Provisioning = "PROVISIONING";
    public const string Pending = "PENDING";
    public const string Activating = "ACTIVATING";
    public const string Running = "RUNNING";
    public const string Deactivating = "DEACTIVATING";
    public const string Stopping = "STOPPING";
    public const string Deprovisioning = "DEPROVISIONING";
    public const string Stopped = "STOPPED";

    private static readonly string[] Order = [Provisioning, Pending, Activating, Running, Deactivating, Stopping, Deprovisioning, Stopped];

    /// <summary>Statuses only move forward: a report older than what is known changes nothing.</summary>
    public static int Rank(string status) => Array.IndexOf(Order, status);
}

public static class ServiceStatus
{
    public const string Active = "ACTIVE";
    public const string Draining = "DRAINING";
    public const string Inactive = "INACTIVE";
}

public static class ClusterStatus
{
    public const string Active = "ACTIVE";
    public const string Inactive = "INACTIVE";
}
