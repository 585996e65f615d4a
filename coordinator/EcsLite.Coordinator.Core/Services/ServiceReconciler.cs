using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;
using TaskStatus = EcsLite.Coordinator.Core.State.TaskStatus;

namespace EcsLite.Coordinator.Core.Services;

/// <summary>An instance as the service scheduler sees it.</summary>
/// <param name="Since">When its agent connected or went away.</param>
/// <param name="MeetsConstraints">Whether it satisfies the service's constraints (what DAEMON services follow).</param>
public sealed record InstanceView(string Arn, string Status, bool Connected, DateTimeOffset Since, bool MeetsConstraints);

/// <summary>A task to stop, why, and with which stop code.</summary>
public sealed record TaskStop(StoredTask Task, string Reason);

/// <summary>
/// One pass's buckets, in Nomad's manner: tasks to place (a count for a REPLICA service, instances for
/// a DAEMON one), tasks to stop, and those kept; plus the service as it should now read (deployments,
/// counts, events) and when to look again even if nothing changes (a grace period or a throttle ending).
/// </summary>
public sealed record ReconcilePlan(
    int Place,
    IReadOnlyList<string> PlaceOn,
    IReadOnlyList<TaskStop> Stop,
    IReadOnlyList<StoredTask> Keep,
    StoredService Service,
    DateTimeOffset? RecheckAt);

/// <summary>
/// The service scheduler's decisions, pure: a service, its tasks, the cluster's instances and the time
/// in; a <see cref="ReconcilePlan"/> out. It writes nothing; <see cref="ServiceScheduler"/> applies it.
/// Level-triggered: the same inputs give the same plan, so a pass can run again at any time.
/// </summary>
public static class ServiceReconciler
{
    public const string LostReason = "Task stopped because its container instance was lost";
    public const string UnhealthyReason = "Task failed container health checks";
    public const string DrainingReason = "Task stopped because its container instance is DRAINING";
    public const int MaxEvents = 100;

    /// <summary>Failures in a row before new tasks wait, and the longest wait (ECS's service throttle).</summary>
    public const int FailuresBeforeThrottle = 3;

    public static readonly TimeSpan MaxThrottle = TimeSpan.FromMinutes(5);

    /// <summary>An event with the same words as one said this recently is not said again.</summary>
    public static readonly TimeSpan EventRepeat = TimeSpan.FromMinutes(5);

    public static ReconcilePlan Reconcile(
        StoredService stored, IReadOnlyList<StoredTask> tasks, IReadOnlyDictionary<string, InstanceView> instances,
        DateTimeOffset now, TimeSpan lostGrace, Random random)
    {
        var next = stored.Clone();
        var service = next.Service;
        var name = service.ServiceName;
        var daemon = service.SchedulingStrategy == "DAEMON";
        DateTimeOffset? recheck = null;
        void RecheckAt(DateTimeOffset at) => recheck = recheck is { } r && r <= at ? r : at;

        // Each task's instance, looked up once: ARNs are long, and a pass looks at every task several times.
        var on = new Dictionary<StoredTask, InstanceView?>(tasks.Count, ReferenceEqualityComparer.Instance);
        foreach (var task in tasks)
        {
            var instance = on[task] = instances.GetValueOrDefault(task.Task.ContainerInstanceArn);
            if (instance is { Connected: false } && task.Task.LastStatus != TaskStatus.Stopped && now - instance.Since < lostGrace)
            {
                RecheckAt(instance.Since + lostGrace); // then it counts as lost
            }
        }

        var stops = new List<TaskStop>();
        var live = new List<StoredTask>();
        foreach (var task in tasks.Where(t => t.Task.DesiredStatus == TaskStatus.Running))
        {
            var instance = on[task];
            if (IsLost(instance, now, lostGrace))
            {
                stops.Add(new(task, LostReason));
            }
            else if (instance!.Connected && Unhealthy(task, service, now, RecheckAt))
            {
                stops.Add(new(task, UnhealthyReason));
                Say(service, now, $"(service {name}) (task {TaskId(task)}) failed container health checks.");
            }
            else
            {
                live.Add(task);
            }
        }

        var primary = service.Deployments.First(d => d.Status == "PRIMARY");
        if (service.Status == ServiceStatus.Active)
        {
            TripCircuitBreaker(next, tasks, now, random);
            primary = service.Deployments.First(d => d.Status == "PRIMARY");
        }

        var desired = service.Status != ServiceStatus.Active ? 0
            : daemon ? instances.Values.Count(i => Usable(i) && i.MeetsConstraints)
            : service.DesiredCount;
        service.DesiredCount = desired;
        primary.DesiredCount = desired;
        var maximum = desired * service.DeploymentConfiguration.MaximumPercent / 100;
        var minimumHealthy = (desired * service.DeploymentConfiguration.MinimumHealthyPercent + 99) / 100;

        // A task on an instance being drained (or, for a daemon, one it no longer fits) must move; so
        // must every task of an older deployment.
        bool MustMove(StoredTask t)
        {
            var instance = on[t]!;
            return t.Task.StartedBy != primary.Id || instance.Status != ContainerInstanceStatus.Active || (daemon && !instance.MeetsConstraints);
        }

        var staying = live.Where(t => !MustMove(t)).ToList();
        var moving = live.Where(MustMove).ToList();
        var healthy = live.Count(Healthy);

        // Scale down: the surplus goes at once, those not yet running first.
        var scaling = $"Scaling activity initiated by (deployment {primary.Id})";
        var surplus = daemon && service.Status == ServiceStatus.Active
            ? staying.GroupBy(t => t.Task.ContainerInstanceArn, StringComparer.Ordinal).SelectMany(g => Surplus(g, 1)).ToList()
            : Surplus(staying, desired).ToList();
        foreach (var task in surplus)
        {
            stops.Add(new(task, scaling));
            staying.RemoveAll(t => ReferenceEquals(t, task)); // messages' Equals compares contents: slow, and not what is meant
            healthy -= Healthy(task) ? 1 : 0;
        }

        // Tasks that must move: the ones not serving go first; a serving one only while enough others
        // serve (minimumHealthyPercent), or once the primary has its full count serving.
        var stayingHealthy = staying.Count(Healthy);
        foreach (var task in moving.OrderBy(Healthy).ThenBy(t => t.Task.StartedBy == primary.Id))
        {
            var serving = Healthy(task);
            if (!serving || healthy - 1 >= minimumHealthy || stayingHealthy >= desired)
            {
                stops.Add(new(task, on[task]!.Status != ContainerInstanceStatus.Active ? DrainingReason : scaling));
                healthy -= serving ? 1 : 0;
            }
        }

        var stopping = stops.Select(s => s.Task).ToHashSet(ReferenceEqualityComparer.Instance);
        var keep = live.Where(t => !stopping.Contains(t)).ToList();

        // Place: up to the desired count of the primary, never more tasks alive than maximumPercent
        // (a stopping task counts until it has stopped; one on a lost instance does not), never while
        // the primary deployment is throttled.
        var alive = tasks.Where(t => t.Task.LastStatus != TaskStatus.Stopped && !IsLost(on[t], now, lostGrace)).ToList();
        var placing = primary.RolloutState != "FAILED" && service.Status == ServiceStatus.Active;
        var throttledUntil = ThrottledUntil([.. tasks.Where(t => t.Task.StartedBy == primary.Id)]);
        if (placing && throttledUntil > now)
        {
            placing = false;
            RecheckAt(throttledUntil.Value);
            Say(service, now, $"(service {name}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.");
        }

        var place = 0;
        var placeOn = new List<string>();
        if (placing && daemon)
        {
            // A daemon waits for the task it replaces on an instance to be gone (ports, resources).
            var occupied = tasks.Where(t => t.Task.LastStatus != TaskStatus.Stopped).Select(t => t.Task.ContainerInstanceArn).ToHashSet(StringComparer.Ordinal);
            placeOn.AddRange(instances.Values.Where(i => Usable(i) && i.MeetsConstraints && !occupied.Contains(i.Arn)).Select(i => i.Arn).Order(StringComparer.Ordinal));
        }
        else if (placing)
        {
            place = Math.Max(0, Math.Min(desired - staying.Count, maximum - alive.Count));
        }

        Count(service, primary, keep, now);
        Settle(next, keep, stops, alive, place + placeOn.Count, now);
        return new(place, placeOn, stops, keep, next, recheck);
    }

    /// <summary>ECS's failure threshold for the circuit breaker: half the desired count, at least 3, at most 200.</summary>
    public static int FailureThreshold(int desiredCount) => Math.Clamp((desiredCount + 1) / 2, 3, 200);

    /// <summary>A stopped task counts as failed when it never got going or its essential container died or failed its health checks.</summary>
    public static bool Failed(StoredTask task) =>
        task.Task.DesiredStatus == TaskStatus.Stopped
        && (task.Task.StopCode is "TaskFailedToStart" or "EssentialContainerExited" || task.Task.StoppedReason == UnhealthyReason);

    /// <summary>
    /// ECS's service throttle: after <see cref="FailuresBeforeThrottle"/> failed tasks in a row, new
    /// tasks wait, twice as long after each further failure, up to <see cref="MaxThrottle"/>.
    /// </summary>
    public static DateTimeOffset? ThrottledUntil(IReadOnlyList<StoredTask> tasks)
    {
        if (!tasks.Any(Failed))
        {
            return null;
        }

        // In a row: the failures since the newest task that got going and did not fail (tasks not yet
        // started count neither way).
        var newestSuccess = tasks.Where(t => !Failed(t) && t.Task.StartedAt is not null).Select(t => t.Task.CreatedAt.ToDateTimeOffset()).DefaultIfEmpty(DateTimeOffset.MinValue).Max();
        var failed = tasks.Where(t => Failed(t) && t.Task.CreatedAt.ToDateTimeOffset() >= newestSuccess).ToList();
        var failures = failed.Count;
        if (failures < FailuresBeforeThrottle)
        {
            return null;
        }

        var last = failed.Max(t => (t.Task.StoppedAt ?? t.Task.StoppingAt ?? t.Task.CreatedAt).ToDateTimeOffset());
        var delay = TimeSpan.FromSeconds(Math.Min(MaxThrottle.TotalSeconds, 10 * Math.Pow(2, failures - FailuresBeforeThrottle)));
        return last + delay;
    }

    /// <summary>Adds an event, newest first and bounded, unless the same words were said within <see cref="EventRepeat"/>.</summary>
    public static void Say(Service service, DateTimeOffset now, string message)
    {
        if (service.Events.Any(e => e.Message == message && now - e.CreatedAt.ToDateTimeOffset() < EventRepeat))
        {
            return;
        }

        service.Events.Insert(0, new ServiceEvent { Id = Guid.NewGuid().ToString(), CreatedAt = Timestamp.FromDateTimeOffset(now), Message = message });
        while (service.Events.Count > MaxEvents)
        {
            service.Events.RemoveAt(service.Events.Count - 1);
        }
    }

    public static string TaskId(StoredTask task) => task.Task.TaskArn[(task.Task.TaskArn.LastIndexOf('/') + 1)..];

    public static string InstanceId(string arn) => arn[(arn.LastIndexOf('/') + 1)..];

    /// <summary>A serving task: RUNNING and, when its definition has health checks, HEALTHY.</summary>
    public static bool Healthy(StoredTask task) =>
        task.Task.DesiredStatus == TaskStatus.Running && task.Task.LastStatus == TaskStatus.Running
        && (task.Task.HealthStatus == "HEALTHY" || !HasHealthCheck(task.TaskDefinition));

    private static bool HasHealthCheck(TaskDefinition definition)
    {
        foreach (var container in definition.ContainerDefinitions)
        {
            if (container.HealthCheck is not null)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Usable(InstanceView instance) => instance.Status == ContainerInstanceStatus.Active && instance.Connected;

    private static bool IsLost(InstanceView? instance, DateTimeOffset now, TimeSpan grace) =>
        instance is null
        || instance.Status == ContainerInstanceStatus.Inactive
        || (!instance.Connected && now - instance.Since >= grace);

    /// <summary>An essential container UNHEALTHY once the service's health check grace period is over.</summary>
    private static bool Unhealthy(StoredTask task, Service service, DateTimeOffset now, Action<DateTimeOffset> recheckAt)
    {
        if (task.Task.LastStatus != TaskStatus.Running || task.Task.HealthStatus != "UNHEALTHY")
        {
            return false;
        }

        var graceEnds = (task.Task.StartedAt ?? task.Task.CreatedAt).ToDateTimeOffset() + TimeSpan.FromSeconds(service.HealthCheckGracePeriodSeconds);
        if (graceEnds > now)
        {
            recheckAt(graceEnds);
            return false;
        }

        return true;
    }

    private static IEnumerable<StoredTask> Surplus(IEnumerable<StoredTask> tasks, int wanted)
    {
        var list = tasks.ToList();
        return list.Count <= wanted ? [] : list
            .OrderBy(Healthy)
            .ThenByDescending(t => t.Task.CreatedAt.ToDateTimeOffset())
            .Take(list.Count - wanted);
    }

    /// <summary>
    /// After the failure threshold of failed tasks in an IN_PROGRESS deployment with the breaker on, the
    /// deployment FAILS; with rollback, a new PRIMARY deployment returns to the last COMPLETED task definition.
    /// </summary>
    private static void TripCircuitBreaker(StoredService stored, IReadOnlyList<StoredTask> tasks, DateTimeOffset now, Random random)
    {
        var service = stored.Service;
        var primary = service.Deployments.First(d => d.Status == "PRIMARY");
        primary.FailedTasks = Math.Max(primary.FailedTasks, tasks.Count(t => t.Task.StartedBy == primary.Id && Failed(t)));
        var breaker = service.DeploymentConfiguration.DeploymentCircuitBreaker;
        if (breaker is not { Enable: true } || primary.RolloutState != "IN_PROGRESS" || primary.FailedTasks < FailureThreshold(service.DesiredCount))
        {
            return;
        }

        primary.RolloutState = "FAILED";
        primary.RolloutStateReason = "ECS deployment circuit breaker: tasks failed to start.";
        primary.UpdatedAt = Timestamp.FromDateTimeOffset(now);
        Say(service, now, $"(service {service.ServiceName}) (deployment {primary.Id}) deployment failed: tasks failed to start.");
        if (!breaker.Rollback || stored.CompletedTaskDefinition.Length == 0 || stored.CompletedTaskDefinition == primary.TaskDefinition)
        {
            return;
        }

        var rollback = NewDeployment(service, stored.CompletedTaskDefinition, now, random);
        Say(service, now, $"(service {service.ServiceName}) (deployment {primary.Id}) rolling back to (deployment {rollback.Id}) with {stored.CompletedTaskDefinition}.");
    }

    /// <summary>Makes a new PRIMARY deployment; the previous one becomes ACTIVE until its tasks are gone.</summary>
    public static Deployment NewDeployment(Service service, string taskDefinition, DateTimeOffset now, Random random)
    {
        foreach (var old in service.Deployments.Where(d => d.Status == "PRIMARY"))
        {
            old.Status = "ACTIVE";
            old.DesiredCount = 0;
            old.UpdatedAt = Timestamp.FromDateTimeOffset(now);
        }

        var id = $"ecs-svc/{random.NextInt64(1_000_000_000_000_000_000, long.MaxValue)}";
        var deployment = new Deployment
        {
            Id = id,
            Status = "PRIMARY",
            TaskDefinition = taskDefinition,
            DesiredCount = service.DesiredCount,
            PendingCount = 0,
            RunningCount = 0,
            FailedTasks = 0,
            CreatedAt = Timestamp.FromDateTimeOffset(now),
            UpdatedAt = Timestamp.FromDateTimeOffset(now),
            LaunchType = service.LaunchType,
            RolloutState = "IN_PROGRESS",
            RolloutStateReason = $"ECS deployment {id} in progress.",
        };
        service.Deployments.Insert(0, deployment);
        service.TaskDefinition = taskDefinition;
        return deployment;
    }

    private static void Count(Service service, Deployment primary, IReadOnlyList<StoredTask> keep, DateTimeOffset now)
    {
        service.RunningCount = keep.Count(t => t.Task.LastStatus == TaskStatus.Running);
        service.PendingCount = keep.Count(t => TaskStatus.Rank(t.Task.LastStatus) < TaskStatus.Rank(TaskStatus.Running));
        foreach (var deployment in service.Deployments)
        {
            var mine = keep.Where(t => t.Task.StartedBy == deployment.Id).ToList();
            var running = mine.Count(t => t.Task.LastStatus == TaskStatus.Running);
            var pending = mine.Count - running;
            if (deployment.RunningCount != running || deployment.PendingCount != pending || (deployment == primary && deployment.DesiredCount != service.DesiredCount))
            {
                deployment.RunningCount = running;
                deployment.PendingCount = pending;
                deployment.UpdatedAt = Timestamp.FromDateTimeOffset(now);
            }
        }
    }

    /// <summary>
    /// Deployment states and the service's own: an older deployment with no task left is dropped; the
    /// primary COMPLETES when it alone runs the desired count, all serving; a DRAINING service with no
    /// task left is INACTIVE; the steady-state event is said on arrival.
    /// </summary>
    private static void Settle(StoredService stored, List<StoredTask> keep, List<TaskStop> stops, List<StoredTask> alive, int placing, DateTimeOffset now)
    {
        var service = stored.Service;
        var name = service.ServiceName;
        var primary = service.Deployments.First(d => d.Status == "PRIMARY");
        var settled = stops.Count == 0 && placing == 0
            && keep.Count == service.DesiredCount
            && keep.All(t => t.Task.StartedBy == primary.Id && Healthy(t))
            && alive.All(new HashSet<StoredTask>(keep, ReferenceEqualityComparer.Instance).Contains);
        if (settled && primary.RolloutState == "IN_PROGRESS")
        {
            primary.RolloutState = "COMPLETED";
            primary.RolloutStateReason = "ECS deployment completed.";
            primary.UpdatedAt = Timestamp.FromDateTimeOffset(now);
            stored.CompletedTaskDefinition = primary.TaskDefinition;
            Say(service, now, $"(service {name}) (deployment {primary.Id}) deployment completed.");
        }

        // As ECS shows them: an older deployment with no task left is gone from the list (the AWS CLI's
        // services-stable waiter wants exactly one), a FAILED one once the rollback it caused completed.
        // What a rollback needs of older deployments, the task definition of the last COMPLETED one, is
        // kept beside the service (CompletedTaskDefinition).
        foreach (var old in service.Deployments.Where(d => d.Status == "INACTIVE" || (d.Status == "ACTIVE" && alive.All(t => t.Task.StartedBy != d.Id)
                     && (d.RolloutState != "FAILED" || primary.RolloutState == "COMPLETED"))).ToList())
        {
            service.Deployments.Remove(old);
        }

        if (service.Status == ServiceStatus.Draining && alive.Count == 0 && placing == 0)
        {
            service.Status = ServiceStatus.Inactive;
            stored.InactiveSince = Timestamp.FromDateTimeOffset(now);
        }

        if (settled && !stored.Steady && service.Status == ServiceStatus.Active)
        {
            Say(service, now, $"(service {name}) has reached a steady state.");
        }

        stored.Steady = settled;
    }
}
