using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Tagging;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;
using KeyValuePair = EcsLite.Api.V1.KeyValuePair;
using TaskStatus = EcsLite.Coordinator.Core.State.TaskStatus;

namespace EcsLite.Coordinator.Core.Tasks;

/// <summary>
/// RunTask, StartTask, StopTask, DescribeTasks and ListTasks, and the agents' reports of their tasks.
/// Placement runs inside the command, against the newest state, so two calls can never both take the
/// same capacity: the state machine runs commands one at a time.
/// </summary>
public static class TaskCommands
{
    public const int MaxCount = 10;
    private static readonly string[] LaunchTypes = ["EC2", "FARGATE", "EXTERNAL"];

    /// <param name="candidates">The cluster's placement candidates as <see cref="Candidates"/> makes them; a caller
    /// running many RunTasks in one command (the schedules' pass) keeps them current itself, for what only changed.</param>
    public static Mutation<RunTaskResponse> Run(CoordinatorState state, RunTaskRequest request, CommandContext context, Random random, Func<string> newId,
        Func<CoordinatorState, string, List<Candidate>>? candidates = null)
    {
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        var count = Count(request);
        var token = request.HasClientToken ? request.ClientToken : "";
        if (token.Length > 36 || token.Any(c => c is < '!' or > '~'))
        {
            throw EcsException.InvalidParameter("clientToken", "must be up to 36 ASCII characters from '!' to '~'.");
        }

        // A retry of a call that already placed its tasks (same token) gets those tasks, and places none.
        if (token.Length > 0 && state.Tasks.Values.Where(t => t.Cluster == cluster.ClusterName && t.ClientToken == token).ToList() is { Count: > 0 } earlier)
        {
            return new([], new RunTaskResponse { Tasks = { earlier.Select(t => t.Task) } });
        }

        var prepared = Prepare(state, request.TaskDefinition, request.HasLaunchType ? request.LaunchType : null, request.Overrides, request.Tags);
        // The task definition's constraints and the call's both apply; each is checked under its own name.
        var fromDefinition = DefinitionConstraints(prepared.Effective);
        TaskPlacement.ParseConstraints(fromDefinition, "taskDefinition.placementConstraints");
        TaskPlacement.ParseConstraints(request.PlacementConstraints, "placementConstraints");
        TaskPlacement.ValidateStrategies(request.PlacementStrategy, "placementStrategy");
        if (request.PlacementStrategy.Count > 5)
        {
            throw EcsException.InvalidParameter("placementStrategy", "at most 5 strategies may be given.");
        }

        return Place(state, cluster, [request], [count], prepared, Group(request, prepared.Effective), [.. fromDefinition.Concat(request.PlacementConstraints)],
            [.. request.PlacementStrategy], context, random, newId, candidates ?? Candidates)[0];
    }

    /// <summary>
    /// RunTask calls that place alike, as one plan: what schedules firing at one slot make. They share the
    /// cluster, task definition, launch type and overrides, and give no placement constraints or strategies
    /// of their own (the default placement); one plan then serves them all, at the cost of one look at the
    /// cluster's instances instead of one per call (10,000 schedules of one slot over 1,000 hosts spent
    /// most of their time there). Each call keeps its own tasks (group, startedBy, tags) and failures.
    /// Null if the task definition's constraints (memberOf only) ask about task groups: then each call is its own RunTask.
    /// </summary>
    public static List<Mutation<RunTaskResponse>>? RunAlike(CoordinatorState state, IReadOnlyList<RunTaskRequest> requests, CommandContext context, Random random, Func<string> newId,
        Func<CoordinatorState, string, List<Candidate>> candidates)
    {
        var first = requests[0];
        var cluster = ClusterCommands.Active(state, first.HasCluster ? first.Cluster : null);
        var counts = requests.Select(Count).ToList();
        var prepared = Prepare(state, first.TaskDefinition, first.HasLaunchType ? first.LaunchType : null, first.Overrides, first.Tags);
        foreach (var request in requests.Skip(1))
        {
            TagRules.Validate(request.Tags, "tags");
        }

        var constraints = DefinitionConstraints(prepared.Effective);
        if (constraints.Any(c => c.Expression.Contains("task:group", StringComparison.Ordinal)))
        {
            return null;
        }

        // The plan's own group: the calls' groups differ, and nothing in a default placement depends on them.
        return Place(state, cluster, requests, counts, prepared, $"family:{prepared.Effective.Family}", constraints, [], context, random, newId, candidates);
    }

    /// <summary>
    /// One plan for the tasks of <paramref name="requests"/> (one task definition, one placement), handed out
    /// in call order: each call gets its tasks (its own group, startedBy, tags and client token), then its failures.
    /// </summary>
    private static List<Mutation<RunTaskResponse>> Place(
        CoordinatorState state, Cluster cluster, IReadOnlyList<RunTaskRequest> requests, IReadOnlyList<int> counts,
        (StoredTaskDefinition Stored, TaskDefinition Effective, string LaunchType) prepared, string planGroup,
        List<PlacementConstraint> constraints, List<PlacementStrategy> strategies,
        CommandContext context, Random random, Func<string> newId, Func<CoordinatorState, string, List<Candidate>> candidates)
    {
        var inCluster = candidates(state, cluster.ClusterName);
        if (inCluster.Count == 0)
        {
            throw EcsException.InvalidParameter("cluster", "No Container Instances were found in your cluster.");
        }

        var (stored, definition, launchType) = prepared;
        var plan = TaskPlacement.Plan(
            new PlacementRequest(TaskNeeds.Of(definition), counts.Sum(), planGroup, constraints, strategies, [.. definition.RequiresAttributes]),
            inCluster, random);
        context.PlacementFailures.AddRange(plan.Failures.Select(f => (cluster.ClusterName, f.Reason)));
        var results = new List<Mutation<RunTaskResponse>>(requests.Count);
        var (placed, failed) = (0, 0);
        for (var r = 0; r < requests.Count; r++)
        {
            var request = requests[r];
            var response = new RunTaskResponse();
            var changes = new List<StateChange>();
            for (var t = 0; t < counts[r]; t++)
            {
                if (placed == plan.Placed.Count)
                {
                    response.Failures.Add(plan.Failures[failed++]);
                    continue;
                }

                var task = NewTask(stored, definition, cluster, plan.Placed[placed++], Group(request, definition), launchType,
                    request.HasStartedBy ? request.StartedBy : null, request.Overrides, request.Tags, context, newId());
                task.ClientToken = request.HasClientToken ? request.ClientToken : "";
                changes.Add(new TaskPut(task));
                response.Tasks.Add(task.Task);
            }

            results.Add(new(changes, response));
        }

        return results;
    }

    private static int Count(RunTaskRequest request)
    {
        var count = request.HasCount ? request.Count : 1;
        return count is < 1 or > MaxCount
            ? throw EcsException.InvalidParameter("count", $"must be between 1 and {MaxCount} (got {count}).")
            : count;
    }

    private static string Group(RunTaskRequest request, TaskDefinition definition) =>
        request.HasGroup && request.Group.Length > 0 ? request.Group : $"family:{definition.Family}";

    private static List<PlacementConstraint> DefinitionConstraints(TaskDefinition definition) =>
        [.. definition.PlacementConstraints.Select(c => new PlacementConstraint { Type = c.Type, Expression = c.Expression })];

    /// <summary>The custom-scheduler path: one task on each named instance, if it has room.</summary>
    public static Mutation<StartTaskResponse> Start(CoordinatorState state, StartTaskRequest request, CommandContext context, Func<string> newId)
    {
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        if (request.ContainerInstances.Count is < 1 or > MaxCount)
        {
            throw EcsException.InvalidParameter("containerInstances", $"name between 1 and {MaxCount} container instances (got {request.ContainerInstances.Count}).");
        }

        var instances = request.ContainerInstances
            .Select((reference, i) => ContainerInstanceCommands.Find(state, reference, cluster.ClusterName, context.Arns, $"containerInstances[{i}]").ContainerInstance.ContainerInstanceArn)
            .ToList();
        var (stored, definition, launchType) = Prepare(state, request.TaskDefinition, null, request.Overrides, request.Tags);
        var group = request.HasGroup && request.Group.Length > 0 ? request.Group : $"family:{definition.Family}";
        var needs = TaskNeeds.Of(definition);
        // Copies: this call takes resources from them one task at a time.
        var candidates = Candidates(state, cluster.ClusterName).ToDictionary(c => c.Arn, c => c.Copy(), StringComparer.Ordinal);
        var response = new StartTaskResponse();
        var changes = new List<StateChange>();
        foreach (var arn in instances)
        {
            var candidate = candidates[arn];
            if (TaskPlacement.Lacks(candidate, new PlacementRequest(needs, 1, group, [], [], [.. definition.RequiresAttributes]), []) is { } lack)
            {
                response.Failures.Add(new Failure { Arn = arn, Reason = lack.Reason, Detail = lack.Detail });
                continue;
            }

            candidate.Take(needs, group);
            var task = NewTask(stored, definition, cluster, arn, group, launchType, request.HasStartedBy ? request.StartedBy : null, request.Overrides, request.Tags, context, newId());
            changes.Add(new TaskPut(task));
            response.Tasks.Add(task.Task);
        }

        return new(changes, response);
    }

    public static Mutation<StopTaskResponse> Stop(CoordinatorState state, StopTaskRequest request, CommandContext context)
    {
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        var stored = Find(state, request.Task, cluster.ClusterName, context.Arns, "task")
            ?? throw EcsException.InvalidParameter("task", $"The referenced task was not found: '{request.Task}' in cluster '{cluster.ClusterName}'.");
        if (stored.Task.DesiredStatus == TaskStatus.Stopped)
        {
            return new([], new StopTaskResponse { Task = stored.Task });
        }

        var next = Stopped(state, stored, "UserInitiated", request.HasReason && request.Reason.Length > 0 ? request.Reason : "Task stopped by user", context.Now);
        return new([new TaskPut(next)], new StopTaskResponse { Task = next.Task });
    }

    /// <summary>The task with desiredStatus STOPPED, its stop code and reason; its agent stops it.</summary>
    public static StoredTask Stopped(CoordinatorState state, StoredTask stored, string stopCode, string reason, DateTimeOffset now)
    {
        var next = Changing(stored);
        var task = next.Task;
        task.DesiredStatus = TaskStatus.Stopped;
        task.StopCode = stopCode;
        task.StoppedReason = reason;
        task.StoppingAt = Timestamp.FromDateTimeOffset(now);
        task.Version++;

        // Never handed to an agent (its instance went away before it started): nothing to wait for.
        if (task.LastStatus == TaskStatus.Provisioning && !state.IsConnected(task.ContainerInstanceArn))
        {
            task.LastStatus = TaskStatus.Stopped;
            task.StoppedAt = task.StoppingAt;
            task.ExecutionStoppedAt = task.StoppingAt;
        }

        return next;
    }

    /// <summary>
    /// The tasks among <paramref name="changes"/> that their agents must hear of: new ones, and those whose
    /// desired status changed while they had not yet stopped. Every command's changes go through this one
    /// rule (the state machine applies it after each commit), so no caller has to remember to tell agents;
    /// an agent's own reports, which change only what it said, send it nothing back.
    /// </summary>
    public static List<string> ForAgents(CoordinatorState before, IEnumerable<StateChange> changes)
    {
        var arns = new List<string>();
        foreach (var change in changes)
        {
            if (change is TaskPut { Task.Task: var task } && task.LastStatus != TaskStatus.Stopped
                && (!before.Tasks.TryGetValue(task.TaskArn, out var previous) || previous.Task.DesiredStatus != task.DesiredStatus))
            {
                arns.Add(task.TaskArn);
            }
        }

        return arns;
    }

    /// <summary>
    /// Tasks too large to send to their agent in one message: they can never run, so they are STOPPED
    /// at once, with the reason (only a definition stored before its size was limited can be so large).
    /// </summary>
    public static Mutation<int> Undeliverable(CoordinatorState state, IEnumerable<string> taskArns, int limitBytes, CommandContext context)
    {
        var changes = new List<StateChange>();
        foreach (var arn in taskArns)
        {
            if (state.Tasks.TryGetValue(arn, out var stored) && stored.Task.LastStatus != TaskStatus.Stopped)
            {
                var next = Stopped(state, stored, "TaskFailedToStart",
                    $"CannotStartContainerError: the task and its definition are larger than the {limitBytes} bytes its agent can be sent at once", context.Now);
                next.Task.LastStatus = TaskStatus.Stopped;
                next.Task.StoppedAt = next.Task.StoppingAt;
                next.Task.ExecutionStoppedAt = next.Task.StoppingAt;
                changes.Add(new TaskPut(next));
            }
        }

        return new(changes, changes.Count);
    }

    public static DescribeTasksResponse Describe(CoordinatorState state, DescribeTasksRequest request, ArnFormat arns)
    {
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        if (request.Tasks.Count is < 1 or > 100)
        {
            throw EcsException.InvalidParameter("tasks", $"name between 1 and 100 tasks (got {request.Tasks.Count}).");
        }

        var include = request.Include.ToHashSet(StringComparer.Ordinal);
        if (include.FirstOrDefault(i => i != "TAGS") is { } unknown)
        {
            throw EcsException.InvalidParameter("include", $"'{unknown}' is not one of TAGS.");
        }

        var response = new DescribeTasksResponse();
        foreach (var reference in request.Tasks)
        {
            if (Find(state, reference, cluster.ClusterName, arns, "tasks") is { } stored)
            {
                var task = stored.Task.Clone();
                if (!include.Contains("TAGS"))
                {
                    task.Tags.Clear();
                }

                response.Tasks.Add(task);
            }
            else
            {
                response.Failures.Add(new Failure { Arn = reference, Reason = "MISSING" });
            }
        }

        return response;
    }

    public static ListTasksResponse List(CoordinatorState state, ListTasksRequest request, ArnFormat arns)
    {
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        var desired = request.HasDesiredStatus ? request.DesiredStatus : TaskStatus.Running;
        if (desired is not (TaskStatus.Running or TaskStatus.Pending or TaskStatus.Stopped))
        {
            throw EcsException.InvalidParameter("desiredStatus", $"'{desired}' is not one of RUNNING, PENDING, STOPPED.");
        }

        string? instance = null;
        if (request.HasContainerInstance && request.ContainerInstance.Length > 0)
        {
            instance = ContainerInstanceCommands.Find(state, request.ContainerInstance, cluster.ClusterName, arns, "containerInstance").ContainerInstance.ContainerInstanceArn;
        }

        if (request.HasLaunchType && !LaunchTypes.Contains(request.LaunchType))
        {
            throw EcsException.InvalidParameter("launchType", $"'{request.LaunchType}' is not one of {string.Join(", ", LaunchTypes)}.");
        }

        var tasks = state.Tasks.Values.Where(t =>
            t.Cluster == cluster.ClusterName
            && (desired == TaskStatus.Pending ? t.Task.DesiredStatus == TaskStatus.Running && TaskStatus.Rank(t.Task.LastStatus) < TaskStatus.Rank(TaskStatus.Running) : t.Task.DesiredStatus == desired)
            && (instance is null || t.Task.ContainerInstanceArn == instance)
            && (!request.HasFamily || t.TaskDefinition.Family == request.Family)
            && (!request.HasStartedBy || t.Task.StartedBy == request.StartedBy)
            && (!request.HasServiceName || t.Task.Group == $"service:{request.ServiceName}")
            && (!request.HasLaunchType || t.Task.LaunchType == request.LaunchType));
        var (page, next) = Paging.Take(tasks, t => t.Task.TaskArn, request.HasMaxResults, request.MaxResults, request.HasNextToken ? request.NextToken : null);
        var response = new ListTasksResponse { TaskArns = { page.Select(t => t.Task.TaskArn) } };
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    /// <summary>
    /// An agent's report of a task on its instance: the task's status and containers follow it, never
    /// backwards. A report about a task this coordinator does not know, or that lives on another
    /// instance, changes nothing (the agent stops such a task once the full desired set says so).
    /// </summary>
    public static Mutation<bool> Report(CoordinatorState state, string containerInstanceArn, TaskStateChange report, CommandContext context) =>
        Reported(state.Tasks.GetValueOrDefault(report.TaskArn), containerInstanceArn, report, context) is { } next
            ? new([new TaskPut(next)], true)
            : new([], false);

    /// <summary>The task as the report leaves it; null if the report changes nothing.</summary>
    private static StoredTask? Reported(StoredTask? stored, string containerInstanceArn, TaskStateChange report, CommandContext context)
    {
        if (stored is null || stored.Task.ContainerInstanceArn != containerInstanceArn)
        {
            return null;
        }

        if (TaskStatus.Rank(report.LastStatus) < TaskStatus.Rank(stored.Task.LastStatus) && stored.Task.LastStatus != TaskStatus.Provisioning)
        {
            return null;
        }

        var next = Changing(stored);
        var task = next.Task;
        task.LastStatus = report.LastStatus;
        if (report.DesiredStatus == TaskStatus.Stopped && task.DesiredStatus != TaskStatus.Stopped)
        {
            task.DesiredStatus = TaskStatus.Stopped; // the agent stopped it on its own (an essential container exited)
        }

        if (report.StopCode.Length > 0 && !task.HasStopCode)
        {
            task.StopCode = report.StopCode;
            task.StoppedReason = report.StoppedReason;
        }

        task.PullStartedAt = report.PullStartedAt ?? task.PullStartedAt;
        task.PullStoppedAt = report.PullStoppedAt ?? task.PullStoppedAt;
        task.StartedAt = report.StartedAt ?? task.StartedAt;
        task.StoppingAt = task.StoppingAt ?? report.StoppingAt;
        task.StoppedAt = report.StoppedAt ?? task.StoppedAt;
        task.ExecutionStoppedAt = report.ExecutionStoppedAt ?? task.ExecutionStoppedAt;
        if (task.LastStatus == TaskStatus.Running)
        {
            task.Connectivity = "CONNECTED";
            task.ConnectivityAt ??= Timestamp.FromDateTimeOffset(context.Now);
        }

        string? address = null;
        foreach (var reported in report.Containers)
        {
            var container = task.Containers.FirstOrDefault(c => c.Name == reported.ContainerName);
            if (container is null)
            {
                continue;
            }

            container.LastStatus = reported.LastStatus;
            container.HealthStatus = reported.HealthStatus.Length > 0 ? reported.HealthStatus : "UNKNOWN";
            if (reported.RuntimeId.Length > 0)
            {
                container.RuntimeId = reported.RuntimeId;
            }

            if (reported.ImageDigest.Length > 0)
            {
                container.ImageDigest = reported.ImageDigest;
            }

            if (reported.HasExitCode)
            {
                container.ExitCode = reported.ExitCode;
            }

            if (reported.Reason.Length > 0)
            {
                container.Reason = reported.Reason;
            }

            container.NetworkBindings.Clear();
            container.NetworkBindings.Add(reported.NetworkBindings.Select(b => new NetworkBinding { BindIP = b.BindIP, ContainerPort = b.ContainerPort, HostPort = b.HostPort, Protocol = b.Protocol }));
            address ??= reported.PrivateIPv4Address.Length > 0 ? reported.PrivateIPv4Address : null;
        }

        // A STOPPED task has no container still going, whatever its agent last said of each.
        if (task.LastStatus == TaskStatus.Stopped)
        {
            foreach (var container in task.Containers.Where(c => c.LastStatus != TaskStatus.Stopped))
            {
                container.LastStatus = TaskStatus.Stopped;
            }
        }

        task.HealthStatus = Health(task);
        if (address is not null && task.Attachments.FirstOrDefault(a => a.Type == "ElasticNetworkInterface") is { } eni)
        {
            eni.Status = task.LastStatus == TaskStatus.Stopped ? "DELETED" : "ATTACHED";
            if (!eni.Details.Any(d => d.Name == "privateIPv4Address"))
            {
                eni.Details.Add(new KeyValuePair { Name = "privateIPv4Address", Value = address });
            }
        }

        if (next.Equals(stored))
        {
            return null;
        }

        task.Version++;
        return next;
    }

    /// <summary>
    /// Several reports of one instance in order, as one command (every task an agent reports in its hello,
    /// or a burst on its stream). A task reported more than once (PENDING, RUNNING, STOPPED in one burst)
    /// is written once, as the last report left it.
    /// </summary>
    public static Mutation<int> ReportAll(CoordinatorState state, string containerInstanceArn, IEnumerable<TaskStateChange> reports, CommandContext context) =>
        ReportMany(state, [(containerInstanceArn, reports)], context);

    /// <summary>
    /// The reports of many instances as one command, each instance's in order: what a busy coordinator
    /// does with the reports that queued up while it committed the last ones (one store write for a
    /// thousand agents rather than a thousand). The state it returns already holds them.
    /// </summary>
    public static Mutation<int> ReportMany(CoordinatorState state, IEnumerable<(string ContainerInstanceArn, IEnumerable<TaskStateChange> Reports)> instances, CommandContext context)
    {
        // A task reported twice is read back from what the first report left; the state is updated once, at the end.
        var changed = new Dictionary<string, StoredTask>(StringComparer.Ordinal);
        foreach (var (containerInstanceArn, reports) in instances)
        {
            foreach (var report in reports)
            {
                var stored = changed.GetValueOrDefault(report.TaskArn) ?? state.Tasks.GetValueOrDefault(report.TaskArn);
                if (Reported(stored, containerInstanceArn, report, context) is { } next)
                {
                    changed[report.TaskArn] = next;
                }
            }
        }

        List<StateChange> puts = [.. changed.Values.Select(t => new TaskPut(t))];
        return new(puts, changed.Count) { After = state.Apply(puts) };
    }

    /// <summary>
    /// What only history needs goes once it is older than the retention (ECS: about an hour): STOPPED
    /// tasks, INACTIVE services and deregistered container instances that hold no task any more. Without
    /// this the state (and the store) would grow with every task, service and host there ever was.
    /// </summary>
    public static Mutation<int> Purge(CoordinatorState state, CommandContext context, TimeSpan retention)
    {
        bool Expired(Timestamp? since) => since is not null && since.ToDateTimeOffset() + retention <= context.Now;
        var expired = state.Tasks.Values
            .Where(t => t.Task.LastStatus == TaskStatus.Stopped && Expired(t.Task.StoppedAt ?? t.Task.StoppingAt ?? t.Task.CreatedAt))
            .Select(t => (StateChange)new TaskRemoved(t.Task.TaskArn, t.Cluster))
            .ToList();
        var gone = expired.Select(t => ((TaskRemoved)t).TaskArn).ToHashSet(StringComparer.Ordinal);
        expired.AddRange(state.Services.Values
            .Where(s => s.Service.Status == ServiceStatus.Inactive && Expired(s.InactiveSince))
            .Select(s => new ServiceRemoved(s.Cluster, s.Service.ServiceName)));
        expired.AddRange(state.ContainerInstances.Values
            .Where(i => i.ContainerInstance.Status == ContainerInstanceStatus.Inactive && Expired(i.InactiveSince)
                && state.TasksByInstance.GetValueOrDefault(i.ContainerInstance.ContainerInstanceArn)?.All(gone.Contains) != false)
            .Select(i => new ContainerInstanceRemoved(i.ContainerInstance.ContainerInstanceArn, i.Cluster)));
        return new(expired, expired.Count);
    }

    /// <summary>
    /// A copy of the task to change. Its definition is shared, not copied: definitions in the state are
    /// never changed, and every report would otherwise copy one (100,000 tasks, 200,000 reports).
    /// </summary>
    public static StoredTask Changing(StoredTask stored) => stored.With(stored.Task.Clone(), stored.TaskDefinition);

    /// <summary>What the instance's agent should run: every task there not yet STOPPED, with its definition.</summary>
    public static IEnumerable<DesiredTask> DesiredFor(CoordinatorState state, string containerInstanceArn) =>
        state.ActiveTasks(containerInstanceArn: containerInstanceArn).Select(Desired);

    public static DesiredTask Desired(StoredTask task) =>
        new() { TaskArn = task.Task.TaskArn, DesiredStatus = task.Task.DesiredStatus, TaskDefinition = task.TaskDefinition };

    /// <summary>A task given as an id or ARN, within a cluster; null when there is none.</summary>
    public static StoredTask? Find(CoordinatorState state, string reference, string cluster, ArnFormat arns, string field)
    {
        if (string.IsNullOrEmpty(reference))
        {
            throw EcsException.InvalidParameter(field, "a task ARN or id is required.");
        }

        var arn = reference.StartsWith("arn:", StringComparison.Ordinal) ? reference : arns.Task(cluster, reference);
        return state.Tasks.TryGetValue(arn, out var task) && task.Cluster == cluster ? task : null;
    }

    /// <summary>
    /// Each instance of the cluster as placement sees it: what its running tasks leave of its registered
    /// CPU, memory and ports, and whether it can take tasks at all (ACTIVE, agent connected). Reads the
    /// state's running usage per instance: linear in instances, whatever the number of tasks.
    /// </summary>
    /// <remarks>
    /// Candidates are shared between calls (callers copy one before taking from it): an instance's
    /// candidate is made again only when its record, its usage or its connection changed, so a call
    /// in a cluster of 1,000 hosts costs a lookup per host rather than building 1,000 of them.
    /// </remarks>
    public static List<Candidate> Candidates(CoordinatorState state, string cluster)
    {
        var candidates = new List<Candidate>();
        foreach (var stored in ContainerInstanceCommands.InCluster(state, cluster))
        {
            var instance = stored.ContainerInstance;
            if (instance.Status == ContainerInstanceStatus.Inactive)
            {
                continue;
            }

            candidates.Add(Candidate(state, stored));
        }

        return candidates;
    }

    /// <summary>One instance's candidate (an ACTIVE or DRAINING instance), from the cache unless its record, usage or connection changed.</summary>
    public static Candidate Candidate(CoordinatorState state, StoredContainerInstance stored)
    {
        var arn = stored.ContainerInstance.ContainerInstanceArn;
        var usage = state.UsageOf(arn);
        var connected = state.IsConnected(arn);
        var slot = CandidateCache.GetOrCreateValue(stored);
        if (slot.Latest is not { } cached || cached.Usage != usage || cached.Connected != connected)
        {
            slot.Latest = cached = new CachedCandidate(usage, connected, NewCandidate(state, stored, usage, connected));
        }

        return cached.Candidate;
    }

    /// <summary>
    /// The candidate of an instance after <paramref name="tasks"/> (new tasks, all on it) were added to the
    /// state <paramref name="earlier"/> was made from: a copy that takes them, remembered for the state
    /// <paramref name="state"/> they are in, so the next look at the instance need not make it again.
    /// </summary>
    public static Candidate Took(CoordinatorState state, Candidate earlier, IEnumerable<StoredTask> tasks)
    {
        var candidate = earlier.Copy();
        foreach (var task in tasks)
        {
            candidate.Take(TaskNeeds.Of(task.TaskDefinition), task.Task.Group);
        }

        var stored = state.ContainerInstances[candidate.Arn];
        CandidateCache.GetOrCreateValue(stored).Latest = new CachedCandidate(state.UsageOf(candidate.Arn), state.IsConnected(candidate.Arn), candidate);
        return candidate;
    }

    // One slot per instance record, its candidate replaced in place: replacing the table's entry instead
    // (10,000 times in a slot of schedules) filled the table with dead entries and made it copy itself.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<StoredContainerInstance, CandidateSlot> CandidateCache = [];

    private sealed class CandidateSlot
    {
        public volatile CachedCandidate? Latest;
    }

    private sealed record CachedCandidate(InstanceUsage Usage, bool Connected, Candidate Candidate);

    internal static Candidate NewCandidate(CoordinatorState state, StoredContainerInstance stored, InstanceUsage usage, bool connected)
    {
        var instance = stored.ContainerInstance;
        var registered = instance.RegisteredResources;
        return new Candidate(
            instance.ContainerInstanceArn,
            connected && instance.Status == ContainerInstanceStatus.Active,
            connected ? "INSTANCE" : "AGENT",
            Integer(registered, "CPU") - usage.Cpu,
            Integer(registered, "MEMORY") - usage.Memory,
            Ports(registered, "PORTS").Concat(usage.TcpPorts.Keys),
            Ports(registered, "PORTS_UDP").Concat(usage.UdpPorts.Keys),
            ContainerInstanceCommands.Facts(state, stored, usage.Tasks, []), // the candidate's facts take their groups from its own
            usage.Groups);
    }

    private static int Integer(IEnumerable<Resource> resources, string name) =>
        resources.FirstOrDefault(r => r.Name == name) is { } r ? (r.HasIntegerValue ? r.IntegerValue : (int)r.LongValue) : 0;

    private static IEnumerable<int> Ports(IEnumerable<Resource> resources, string name) =>
        resources.FirstOrDefault(r => r.Name == name)?.StringSetValue.Select(p => int.TryParse(p, out var port) ? port : 0).Where(p => p > 0) ?? [];

    /// <summary>Resolves the task definition, checks the launch type, overrides and tags, and applies the overrides.</summary>
    private static (StoredTaskDefinition Stored, TaskDefinition Effective, string LaunchType) Prepare(
        CoordinatorState state, string reference, string? launchType, TaskOverride? overrides, IEnumerable<Tag> tags)
    {
        if (string.IsNullOrEmpty(reference))
        {
            throw EcsException.InvalidParameter("taskDefinition", "is required: a family, family:revision or task definition ARN.");
        }

        var stored = TaskDefinitionCommands.Resolve(state, reference, "taskDefinition");
        var definition = stored.TaskDefinition;
        if (definition.Status != TaskDefinitionStatus.Active)
        {
            throw EcsException.Client("taskDefinition", $"TaskDefinition is inactive: '{reference}' was deregistered; run an ACTIVE revision.");
        }

        var checkedLaunchType = LaunchType(definition, launchType);
        TagRules.Validate(tags, "tags");
        if (overrides is not null && Google.Protobuf.JsonFormatter.Default.Format(overrides).Length is var length && length > Limits.OverridesCharacters)
        {
            throw EcsException.InvalidParameter("overrides", $"the overrides are {length} characters of JSON; ECS allows at most {Limits.OverridesCharacters}.");
        }

        return (stored, TaskOverrides.Apply(definition, overrides), checkedLaunchType);
    }

    /// <summary>The launch type asked for, checked against the task definition's compatibilities; without one, its first.</summary>
    internal static string LaunchType(TaskDefinition definition, string? launchType)
    {
        var compatible = definition.RequiresCompatibilities.Count > 0 ? definition.RequiresCompatibilities.ToList() : ["EC2"];
        if (launchType is null)
        {
            return compatible[0];
        }

        if (!LaunchTypes.Contains(launchType))
        {
            throw EcsException.InvalidParameter("launchType", $"'{launchType}' is not one of {string.Join(", ", LaunchTypes)}.");
        }

        if (!compatible.Contains(launchType) && !(launchType == "EC2" && definition.RequiresCompatibilities.Count == 0))
        {
            throw EcsException.Client("launchType", $"Task definition does not support launch_type {launchType}: it requires {string.Join(" or ", compatible)}.");
        }

        return launchType;
    }

    internal static StoredTask NewTask(StoredTaskDefinition stored, TaskDefinition definition, Cluster cluster, string instance, string group, string launchType,
        string? startedBy, TaskOverride? overrides, IEnumerable<Tag> tags, CommandContext context, string id)
    {
        var arn = context.Arns.Task(cluster.ClusterName, id);
        var task = new Api.V1.Task
        {
            TaskArn = arn,
            ClusterArn = cluster.ClusterArn,
            TaskDefinitionArn = stored.TaskDefinition.TaskDefinitionArn,
            ContainerInstanceArn = instance,
            LastStatus = TaskStatus.Provisioning,
            DesiredStatus = TaskStatus.Running,
            CreatedAt = Timestamp.FromDateTimeOffset(context.Now),
            Group = group,
            LaunchType = launchType,
            Cpu = TaskSize(definition.Cpu, definition.ContainerDefinitions.Sum(c => c.Cpu)),
            Memory = TaskSize(definition.Memory, definition.ContainerDefinitions.Sum(c => c.HasMemory ? c.Memory : c.MemoryReservation)),
            Overrides = overrides?.Clone() ?? new TaskOverride(),
            HealthStatus = "UNKNOWN",
            Version = 1,
        };
        if (startedBy is not null)
        {
            task.StartedBy = startedBy;
        }

        task.Tags.Add(tags);
        foreach (var container in definition.ContainerDefinitions)
        {
            var view = new Container
            {
                ContainerArn = context.Arns.Container(cluster.ClusterName, id, container.Name),
                TaskArn = arn,
                Name = container.Name,
                Image = container.Image,
                LastStatus = TaskStatus.Pending,
                HealthStatus = "UNKNOWN",
                Cpu = container.Cpu.ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            if (container.HasMemory)
            {
                view.Memory = container.Memory.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            if (container.HasMemoryReservation)
            {
                view.MemoryReservation = container.MemoryReservation.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            task.Containers.Add(view);
        }

        if (definition.NetworkMode == "awsvpc")
        {
            task.Attachments.Add(new Attachment
            {
                Id = id,
                Type = "ElasticNetworkInterface",
                Status = "PRECREATED",
                Details = { new KeyValuePair { Name = "networkInterfaceId", Value = $"eni-{id[..Math.Min(17, id.Length)]}" } },
            });
        }

        return new StoredTask { Task = task, TaskDefinition = definition, Cluster = cluster.ClusterName };
    }

    private static string TaskSize(string taskLevel, int sum) =>
        taskLevel.Length > 0 ? taskLevel : sum.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>ECS's task health: UNHEALTHY if an essential container is; HEALTHY if all essential ones with checks are; else UNKNOWN.</summary>
    private static string Health(Api.V1.Task task)
    {
        var reported = task.Containers.Select(c => c.HealthStatus).Where(h => h is "HEALTHY" or "UNHEALTHY").ToList();
        return reported.Contains("UNHEALTHY") ? "UNHEALTHY" : reported.Count > 0 && reported.All(h => h == "HEALTHY") ? "HEALTHY" : "UNKNOWN";
    }
}
