using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Core.Services;

/// <summary>What a scheduler pass did: the tasks whose agents must hear of them, and when to look again.</summary>
public sealed record ServicePass(IReadOnlyList<string> ChangedTasks, DateTimeOffset? RecheckAt);

/// <summary>How the service scheduler treats instances whose agents are away.</summary>
/// <param name="LostGrace">How long an instance may be disconnected before its service tasks are replaced elsewhere.</param>
/// <param name="UnseenSince">For instances not seen since this coordinator started: when to count them as disconnected from.</param>
public sealed record ServiceSchedulerSettings(TimeSpan LostGrace, DateTimeOffset UnseenSince);

/// <summary>
/// The plan applier: runs <see cref="ServiceReconciler"/> for every service not yet INACTIVE and turns
/// its buckets into state changes: tasks placed with <see cref="TaskPlacement"/> against the newest
/// state (each service sees what the ones before it placed), tasks stopped, the service's new face.
/// A pass that finds nothing to do changes nothing, so running it again is always safe.
/// </summary>
public static class ServiceScheduler
{
    /// <param name="memo">Kept by the caller from pass to pass: services whose inputs have not changed are skipped.</param>
    public static Mutation<ServicePass> Run(CoordinatorState state, CommandContext context, ServiceSchedulerSettings settings, Random random, Func<string> newId,
        ServicePassMemo? memo = null)
    {
        var current = state;
        var clusters = new Dictionary<string, ClusterView>(StringComparer.Ordinal);
        var changes = new List<StateChange>();
        var changed = new List<string>();
        DateTimeOffset? recheck = null;
        memo?.Forget(state);
        foreach (var stored in state.Services.Values.Where(s => s.Service.Status != ServiceStatus.Inactive))
        {
            var key = CoordinatorState.ServiceKey(stored.Cluster, stored.Service.ServiceName);
            if (memo is not null && memo.Unchanged(key, current, stored, context.Now, out var quietUntil))
            {
                recheck = Earlier(recheck, quietUntil);
                continue;
            }

            Mutation<(DateTimeOffset? RecheckAt, bool Unplaced)> step;
            try
            {
                if (!clusters.TryGetValue(stored.Cluster, out var view))
                {
                    clusters[stored.Cluster] = view = new ClusterView(current, stored.Cluster, settings);
                }

                view.State = current;
                step = Step(view, stored, [.. current.ServiceTasks(stored.Cluster, stored.Service.ServiceName)], context, settings, random, newId);
                if (step.Changes.Any(c => c is TaskPut))
                {
                    view.Invalidate(); // placed tasks take resources the next service must see gone
                }
            }
            catch (EcsException e)
            {
                // A service that cannot be scheduled (its task definition deleted) says so; the others go on.
                var next = stored.Clone();
                ServiceReconciler.Say(next.Service, context.Now, $"(service {stored.Service.ServiceName}) is unable to schedule tasks: {e.Message}");
                step = new(next.Equals(stored) ? [] : [new ServicePut(next)], (null, false));
            }

            if (step.Changes.Count == 0)
            {
                // A daemon's instances are judged by constraints that may ask what runs there (runningTasksCount).
                memo?.Remember(key, current, stored, step.Result.RecheckAt, step.Result.Unplaced || stored.Service.SchedulingStrategy == "DAEMON");
            }

            current = current.Apply(step.Changes);
            changes.AddRange(step.Changes);
            changed.AddRange(step.Changes.OfType<TaskPut>().Select(t => t.Task.Task.TaskArn));
            recheck = Earlier(recheck, step.Result.RecheckAt);
        }

        return new(changes, new ServicePass(changed, recheck));
    }

    private static DateTimeOffset? Earlier(DateTimeOffset? a, DateTimeOffset? b) => a is null ? b : b is null ? a : a < b ? a : b;

    /// <summary>
    /// A cluster as one pass sees it, made once per pass rather than once per service: its instances
    /// (which a pass never changes) and placement's candidates (made again after a service placed tasks).
    /// </summary>
    private sealed class ClusterView(CoordinatorState state, string cluster, ServiceSchedulerSettings settings)
    {
        private List<Candidate>? _candidates;
        private Dictionary<string, Candidate>? _byArn;

        public CoordinatorState State { get; set; } = state;

        public Dictionary<string, InstanceView> Instances { get; } = ContainerInstanceCommands.InCluster(state, cluster).ToDictionary(
            i => i.ContainerInstance.ContainerInstanceArn,
            i =>
            {
                var arn = i.ContainerInstance.ContainerInstanceArn;
                var connection = state.Connections.GetValueOrDefault(arn) ?? new AgentConnection(false, settings.UnseenSince);
                return new InstanceView(arn, i.ContainerInstance.Status, connection.Connected, connection.Since, MeetsConstraints: true);
            },
            StringComparer.Ordinal);

        public List<Candidate> Candidates => _candidates ??= TaskCommands.Candidates(State, cluster);

        public Candidate? Candidate(string arn) => (_byArn ??= Candidates.ToDictionary(c => c.Arn, StringComparer.Ordinal)).GetValueOrDefault(arn);

        public void Invalidate() => (_candidates, _byArn) = (null, null);
    }

    private static Mutation<(DateTimeOffset? RecheckAt, bool Unplaced)> Step(
        ClusterView view, StoredService stored, IReadOnlyList<StoredTask> tasks, CommandContext context,
        ServiceSchedulerSettings settings, Random random, Func<string> newId)
    {
        var state = view.State;
        var service = stored.Service;
        var daemon = service.SchedulingStrategy == "DAEMON";
        var definition = TaskDefinitionCommands.Resolve(state, service.TaskDefinition, "taskDefinition");
        var constraints = Constraints(service, definition.TaskDefinition);
        var parsed = TaskPlacement.ParseConstraints(constraints, "placementConstraints");
        var group = $"service:{service.ServiceName}";
        var request = new PlacementRequest(TaskNeeds.Of(definition.TaskDefinition), 1, group, constraints, [.. service.PlacementStrategy], [.. definition.TaskDefinition.RequiresAttributes]);
        IReadOnlyDictionary<string, InstanceView> instances = view.Instances;
        if (daemon)
        {
            // Only a daemon follows constraints instance by instance; the fixed ones (attributes,
            // memberOf) decide, not whether there is room now.
            instances = view.Instances.Values.ToDictionary(i => i.Arn, i => i with
            {
                MeetsConstraints = view.Candidate(i.Arn) is { } candidate && TaskPlacement.Lacks(candidate, request, parsed) is not { Reason: "ATTRIBUTE" or "MemberOf" },
            }, StringComparer.Ordinal);
        }

        var plan = ServiceReconciler.Reconcile(stored, tasks, instances, context.Now, settings.LostGrace, random);
        var next = plan.Service;
        var changes = new List<StateChange>();
        var name = service.ServiceName;

        var stopped = new List<string>();
        foreach (var stop in plan.Stop)
        {
            changes.Add(new TaskPut(TaskCommands.Stopped(state, stop.Task, "ServiceSchedulerInitiated", stop.Reason, context.Now)));
            stopped.Add($"(task {ServiceReconciler.TaskId(stop.Task)})");
        }

        if (stopped.Count > 0)
        {
            ServiceReconciler.Say(next.Service, context.Now, $"(service {name}) has stopped {stopped.Count} running tasks: {Listed(stopped)}.");
        }

        // Placing for the primary deployment's task definition (after a rollback, not the service's newest).
        var primary = next.Service.Deployments.First(d => d.Status == "PRIMARY");
        var effective = primary.TaskDefinition == definition.TaskDefinition.TaskDefinitionArn
            ? definition
            : TaskDefinitionCommands.Resolve(state, primary.TaskDefinition, "taskDefinition");
        request = request with { Needs = TaskNeeds.Of(effective.TaskDefinition), Count = plan.Place };
        var placed = new List<string>();
        var failures = new List<Failure>();
        if (plan.Place > 0)
        {
            var result = TaskPlacement.Plan(request, view.Candidates, random);
            placed.AddRange(result.Placed);
            failures.AddRange(result.Failures);
        }

        foreach (var arn in plan.PlaceOn)
        {
            if (TaskPlacement.Lacks(view.Candidate(arn)!, request with { Count = 1 }, parsed) is { } lack)
            {
                failures.Add(new Failure { Arn = arn, Reason = lack.Reason, Detail = lack.Detail });
            }
            else
            {
                placed.Add(arn);
            }
        }

        var started = new List<string>();
        var cluster = state.Clusters[stored.Cluster];
        context.PlacementFailures.AddRange(failures.Select(f => (cluster.ClusterName, f.Reason)));
        foreach (var instance in placed)
        {
            var task = TaskCommands.NewTask(effective, effective.TaskDefinition, cluster, instance, group, service.LaunchType, primary.Id, null, Tags(next, effective), context, newId());
            changes.Add(new TaskPut(task));
            started.Add($"(task {ServiceReconciler.TaskId(task)})");
        }

        if (started.Count > 0)
        {
            next.Service.PendingCount += started.Count;
            primary.PendingCount += started.Count;
            ServiceReconciler.Say(next.Service, context.Now, $"(service {name}) has started {started.Count} tasks: {Listed(started)}.");
            next.Steady = false;
        }

        if (failures.FirstOrDefault() is { } failure)
        {
            ServiceReconciler.Say(next.Service, context.Now, UnableToPlace(name, failure));
        }

        if (!next.Equals(stored))
        {
            changes.Add(new ServicePut(next));
        }

        return new(changes, (plan.RecheckAt, failures.Count > 0));
    }

    /// <summary>The tasks an event names: the first 10, then how many more (a service record holds 100 events).</summary>
    private static string Listed(List<string> tasks) =>
        string.Join(" ", tasks.Take(10)) + (tasks.Count > 10 ? $" and {tasks.Count - 10} more" : "");

    /// <summary>What the closest instance lacks, by placement failure reason, in ECS's words.</summary>
    private static readonly (string Reason, string Lacks)[] Lacking =
    [
        ("RESOURCE:CPU", "has insufficient CPU units available"),
        ("RESOURCE:MEMORY", "has insufficient memory available"),
        ("RESOURCE:PORTS", "is already using a port required by your task"),
        ("RESOURCE:PORTS_UDP", "is already using a port required by your task"),
        ("AGENT", "is missing its agent connection"),
        ("ATTRIBUTE", "is missing an attribute required by your task"),
        ("MemberOf", "does not meet the placement constraints"),
        ("DistinctInstance", "does not meet the placement constraints"),
        ("INACTIVE", "is not ACTIVE"),
    ];

    /// <summary>ECS's event when a task fits nowhere, naming the closest instance and what it lacks.</summary>
    public static string UnableToPlace(string service, Failure failure)
    {
        var lacks = Lacking.FirstOrDefault(l => l.Reason == failure.Reason, Lacking[^1]).Lacks;
        return $"(service {service}) was unable to place a task because no container instance met all of its requirements. " +
            $"The closest matching (container-instance {ServiceReconciler.InstanceId(failure.Arn)}) {lacks}. " +
            "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";
    }

    /// <summary>The placement failure reason an <see cref="UnableToPlace"/> event names, or null for another event.</summary>
    public static string? UnableToPlaceReason(string message) =>
        message.Contains(" was unable to place a task because ", StringComparison.Ordinal)
            ? Lacking.FirstOrDefault(l => message.Contains($") {l.Lacks}. ", StringComparison.Ordinal), Lacking[^1]).Reason
            : null;

    /// <summary>The task definition's constraints and the service's both apply.</summary>
    public static List<PlacementConstraint> Constraints(Service service, TaskDefinition definition) =>
    [
        .. definition.PlacementConstraints.Select(c => new PlacementConstraint { Type = c.Type, Expression = c.Expression }),
        .. service.PlacementConstraints,
    ];

    /// <summary>propagateTags: the service's tags or the task definition's go onto each task it starts.</summary>
    private static IEnumerable<Tag> Tags(StoredService service, StoredTaskDefinition definition) => service.Service.PropagateTags switch
    {
        "SERVICE" => service.Service.Tags,
        "TASK_DEFINITION" => definition.Tags,
        _ => [],
    };
}

/// <summary>
/// What earlier passes found nothing to do about. Every input of a service's pass is an immutable value,
/// so a service whose inputs are the very same objects as when a pass last left it alone, and whose
/// next timer has not come, would be left alone again: it is skipped. A pass then costs what changed,
/// not the whole cluster. Owned by one caller (the scheduler loop); not thread-safe.
/// </summary>
public sealed class ServicePassMemo
{
    private readonly Dictionary<string, Inputs> _quiet = new(StringComparer.Ordinal);

    /// <summary>Whether the service's inputs are unchanged since a quiet pass, and then its next timer.</summary>
    internal bool Unchanged(string key, CoordinatorState state, StoredService service, DateTimeOffset now, out DateTimeOffset? recheckAt)
    {
        recheckAt = null;
        if (!_quiet.TryGetValue(key, out var seen)
            || !ReferenceEquals(seen.Service, service)
            || !ReferenceEquals(seen.Tasks, state.TasksByService.GetValueOrDefault(key))
            || !ReferenceEquals(seen.Instances, state.ContainerInstances)
            || !ReferenceEquals(seen.Connections, state.Connections)
            || !ReferenceEquals(seen.Families, state.Families)
            || (seen.Usage is not null && !ReferenceEquals(seen.Usage, state.Usage))
            || (seen.RecheckAt is { } at && at <= now))
        {
            return false;
        }

        recheckAt = seen.RecheckAt;
        return true;
    }

    /// <summary>
    /// Drops what it remembers of services that are INACTIVE or gone: each entry holds a state of its
    /// time, so a memo of every service there ever was would keep old states alive.
    /// </summary>
    internal void Forget(CoordinatorState state)
    {
        foreach (var key in _quiet.Keys.Where(k => state.Services.GetValueOrDefault(k)?.Service.Status is null or ServiceStatus.Inactive).ToList())
        {
            _quiet.Remove(key);
        }
    }

    /// <param name="followsUsage">Whether what instances hold matters (a task found no room; a daemon): then any change of it is a reason to look again.</param>
    internal void Remember(string key, CoordinatorState state, StoredService service, DateTimeOffset? recheckAt, bool followsUsage) =>
        _quiet[key] = new Inputs(service, state.TasksByService.GetValueOrDefault(key), state.ContainerInstances, state.Connections, state.Families,
            followsUsage ? state.Usage : null, recheckAt);

    private sealed record Inputs(StoredService Service, object? Tasks, object Instances, object Connections, object Families, object? Usage, DateTimeOffset? RecheckAt);
}
