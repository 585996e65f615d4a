using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Store.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Schedules;

/// <summary>What a pass did: how many slots it fired, and whether due schedules were left for the next pass.</summary>
public sealed record SchedulePass(int Fired, bool More);

/// <summary>
/// Fires the schedules whose slot has come, as one command: each fire's record and the tasks its RunTask
/// places are in the same store write, so a coordinator that stops at any moment has either fired a
/// slot, tasks and all, or not at all; a restart can never fire a slot twice. A slot missed while the
/// coordinator was not running is fired late if it is still within its window (the flexible window, or
/// a minute with Mode OFF), else recorded as SKIPPED. Tasks that do not fit are retried, with a growing
/// delay, as the target's RetryPolicy allows.
/// </summary>
public static class ScheduleRunner
{
    /// <summary>How late a slot of a schedule without a flexible window may still fire.</summary>
    public static readonly TimeSpan OffWindow = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Fires of one pass (one command): a pass holds every other command back while it runs (about 0.1 s
    /// for 1,000 fires over 1,000 hosts), and its tasks go to their agents only once it is committed.
    /// </summary>
    public const int MaxFiresPerPass = 1000;

    private const int MaxFiresPerSchedule = 100;
    private const int DefaultRetryAttempts = 185;
    private const int DefaultEventAgeSeconds = 86400;
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromMinutes(1);

    public static Mutation<SchedulePass> Run(CoordinatorState state, CommandContext context, Random random, Func<string> newId)
    {
        var now = context.Now;
        var changes = new List<StateChange>();
        var current = state;
        var fired = 0;
        var attempts = 0; // fires and retries: what a pass is bounded by
        var pool = new CandidatePool();
        var alike = new List<Pending>();
        var expressions = new Dictionary<string, ScheduleExpression>(StringComparer.Ordinal); // schedules often share one
        foreach (var stored in state.Schedules.Values)
        {
            if (stored.Schedule.State != "ENABLED")
            {
                continue;
            }

            if (Due(stored) is not { } due || due > now)
            {
                continue;
            }

            if (attempts >= MaxFiresPerPass)
            {
                return Done(RunAlike(current, alike, context, random, newId, changes, pool), changes, new SchedulePass(fired, More: true));
            }

            var next = stored.Clone();
            var runs = 0;
            if (next.Retrying is not null && next.RetryAt.ToDateTimeOffset() <= now)
            {
                current = Retry(current, next, context, random, newId, changes, pool);
                runs++;
                attempts++;
            }

            if (!expressions.TryGetValue(next.Schedule.ScheduleExpression, out var expression))
            {
                expressions[next.Schedule.ScheduleExpression] = expression = ScheduleExpression.Parse(next.Schedule.ScheduleExpression);
            }

            while (next.Schedule.NextInvocation is { } slotTime && FireAt(next.Schedule, slotTime.ToDateTimeOffset()) <= now && runs < MaxFiresPerSchedule)
            {
                var slot = slotTime.ToDateTimeOffset();
                if (now > slot + Window(next.Schedule))
                {
                    // Missed (the coordinator was not running): said once, and on to the first slot still in its window.
                    Record(next, new ScheduleFire
                    {
                        SlotTime = slotTime, FiredAt = Timestamp.FromDateTimeOffset(now), Status = "SKIPPED",
                        Failures = { $"missed: the coordinator was not running between this slot and {now:u}; slots more than {Window(next.Schedule).TotalMinutes:0} minute(s) late are not fired" },
                    });
                    var resume = ScheduleCommands.NextSlot(next.Schedule, expression, now - Window(next.Schedule) - TimeSpan.FromTicks(1));
                    next.Schedule.NextInvocation = resume is { } r && !expression.OneTime ? Timestamp.FromDateTimeOffset(r) : null;
                    continue;
                }

                current = Fire(current, next, slot, context, random, newId, changes, pool, alike);
                fired++;
                runs++;
                attempts++;
                next.Schedule.NextInvocation = ScheduleCommands.NextSlot(next.Schedule, expression, slot) is { } n ? Timestamp.FromDateTimeOffset(n) : null;
            }

            if (next.Schedule.NextInvocation is null && next.Retrying is null && next.Schedule.ActionAfterCompletion == "DELETE")
            {
                changes.Add(new ScheduleRemoved(next.Schedule.Name));
                continue;
            }

            changes.Add(new SchedulePut(next));
        }

        return Done(RunAlike(current, alike, context, random, newId, changes, pool), changes, new SchedulePass(fired, More: false));
    }

    /// <summary>The pass's changes, and the state after them: the tasks are in <paramref name="placed"/> already, the schedules are not.</summary>
    private static Mutation<SchedulePass> Done(CoordinatorState placed, List<StateChange> changes, SchedulePass pass) =>
        new(changes, pass) { After = placed.ApplySchedules(changes) };

    /// <summary>The RunTask a fire makes: the target's parameters, startedBy ecslite-scheduler/NAME, group schedule:NAME unless given.</summary>
    public static RunTaskRequest RunTaskRequest(string scheduleName, Target target, int count)
    {
        var p = target.EcsParameters;
        var request = new RunTaskRequest
        {
            Cluster = target.Arn,
            TaskDefinition = p.TaskDefinitionArn,
            Count = count,
            StartedBy = $"ecslite-scheduler/{scheduleName}",
            Group = p.HasGroup ? p.Group : $"schedule:{scheduleName}",
            PlacementConstraints = { p.PlacementConstraints },
            PlacementStrategy = { p.PlacementStrategy },
            CapacityProviderStrategy = { p.CapacityProviderStrategy },
        };
        if (p.HasLaunchType)
        {
            request.LaunchType = p.LaunchType;
        }

        if (p.HasEnableECSManagedTags)
        {
            request.EnableECSManagedTags = p.EnableECSManagedTags;
        }

        if (p.HasEnableExecuteCommand)
        {
            request.EnableExecuteCommand = p.EnableExecuteCommand;
        }

        if (p.HasPlatformVersion)
        {
            request.PlatformVersion = p.PlatformVersion;
        }

        if (p.HasPropagateTags)
        {
            request.PropagateTags = p.PropagateTags;
        }

        if (p.HasReferenceId)
        {
            request.ReferenceId = p.ReferenceId;
        }

        if (p.NetworkConfiguration?.AwsvpcConfiguration is { } vpc)
        {
            var awsvpc = new AwsVpcConfiguration { Subnets = { vpc.Subnets }, SecurityGroups = { vpc.SecurityGroups } };
            if (vpc.HasAssignPublicIp)
            {
                awsvpc.AssignPublicIp = vpc.AssignPublicIp;
            }

            request.NetworkConfiguration = new NetworkConfiguration { AwsvpcConfiguration = awsvpc };
        }

        for (var i = 0; i < p.Tags.Count; i++)
        {
            if (p.Tags[i].Fields.Count != 1 || p.Tags[i].Fields.Single() is not { Value.KindCase: Value.KindOneofCase.StringValue } tag)
            {
                throw SchedulerErrors.Validation($"Target.EcsParameters.Tags[{i}]", "must be an object of one key and its string value, e.g. {\"team\": \"ops\"}.");
            }

            request.Tags.Add(new Tag { Key = tag.Key, Value = tag.Value.StringValue });
        }

        if (target.HasInput)
        {
            try
            {
                request.Overrides = JsonParser.Default.Parse<TaskOverride>(target.Input);
            }
            catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
            {
                throw SchedulerErrors.Validation("Target.Input", $"must be RunTask's overrides as JSON (e.g. {{\"containerOverrides\": [{{\"name\": \"app\", \"command\": [\"backup\"]}}]}}): {e.Message}");
            }
        }

        return request;
    }

    /// <summary>When the slot fires: at once with Mode OFF; with FLEXIBLE, at a point of the window fixed by the schedule and slot, so that many schedules of one slot spread out.</summary>
    public static DateTimeOffset FireAt(GetScheduleResponse schedule, DateTimeOffset slot)
    {
        if (schedule.FlexibleTimeWindow.Mode != "FLEXIBLE")
        {
            return slot;
        }

        var hash = 14695981039346656037UL;
        foreach (var c in schedule.Arn)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        hash = (hash ^ (ulong)slot.UtcTicks) * 1099511628211UL;
        return slot + TimeSpan.FromSeconds((double)(hash % (ulong)(schedule.FlexibleTimeWindow.MaximumWindowInMinutes * 60)));
    }

    /// <summary>How late after its slot a fire may still happen.</summary>
    public static TimeSpan Window(GetScheduleResponse schedule) =>
        schedule.FlexibleTimeWindow.Mode == "FLEXIBLE" ? TimeSpan.FromMinutes(schedule.FlexibleTimeWindow.MaximumWindowInMinutes) : OffWindow;

    /// <summary>When the next pass is due: the earliest slot or retry of the enabled schedules; null if none has one.</summary>
    public static DateTimeOffset? NextDue(CoordinatorState state)
    {
        DateTimeOffset? earliest = null;
        foreach (var stored in state.Schedules.Values)
        {
            if (stored.Schedule.State == "ENABLED")
            {
                earliest = Earliest(earliest, Due(stored));
            }
        }

        return earliest;
    }

    /// <summary>When the schedule next needs a pass: its next slot's fire or its retry, whichever is first.</summary>
    private static DateTimeOffset? Due(StoredSchedule stored)
    {
        var slot = stored.Schedule.NextInvocation is { } s ? FireAt(stored.Schedule, s.ToDateTimeOffset()) : (DateTimeOffset?)null;
        return Earliest(slot, stored.Retrying is null ? null : stored.RetryAt.ToDateTimeOffset());
    }

    private static DateTimeOffset? Earliest(DateTimeOffset? a, DateTimeOffset? b) => a is null ? b : b is null ? a : a < b ? a : b;

    private static CoordinatorState Fire(CoordinatorState state, StoredSchedule stored, DateTimeOffset slot, CommandContext context, Random random, Func<string> newId, List<StateChange> changes, CandidatePool pool, List<Pending> alike)
    {
        if (stored.Retrying is { } abandoned)
        {
            abandoned.Status = "FAILED";
            abandoned.Failures.Add("not all tasks were placed before the next slot");
            stored.Retrying = null;
            Update(stored, abandoned);
        }

        var target = stored.Schedule.Target;
        var fire = new ScheduleFire { SlotTime = Timestamp.FromDateTimeOffset(slot), FiredAt = Timestamp.FromDateTimeOffset(context.Now) };
        Record(stored, fire);
        var count = target.EcsParameters.HasTaskCount ? target.EcsParameters.TaskCount : 1;

        // Fires with the default placement are placed together at the end of the pass (TaskCommands.RunAlike);
        // a schedule deleted after its one fire is not, as whether it is done depends on that fire.
        var p = target.EcsParameters;
        if (p.PlacementConstraints.Count == 0 && p.PlacementStrategy.Count == 0 && stored.Schedule.ActionAfterCompletion != "DELETE")
        {
            alike.Add(new Pending(stored, fire, count));
            return state;
        }

        return Attempt(state, stored, fire, count, context, random, newId, changes, pool);
    }

    private static CoordinatorState Retry(CoordinatorState state, StoredSchedule stored, CommandContext context, Random random, Func<string> newId, List<StateChange> changes, CandidatePool pool)
    {
        var fire = stored.Retrying;
        var retry = stored.Schedule.Target.RetryPolicy;
        var attempts = retry?.HasMaximumRetryAttempts == true ? retry.MaximumRetryAttempts : DefaultRetryAttempts;
        var age = TimeSpan.FromSeconds(retry?.HasMaximumEventAgeInSeconds == true ? retry.MaximumEventAgeInSeconds : DefaultEventAgeSeconds);
        if (fire.Attempts > attempts || context.Now - fire.SlotTime.ToDateTimeOffset() > age)
        {
            fire.Status = "FAILED";
            stored.Retrying = null;
            Update(stored, fire);
            return state;
        }

        var next = Attempt(state, stored, fire, stored.RetryTaskCount, context, random, newId, changes, pool);
        Update(stored, fire);
        return next;
    }

    /// <summary>One RunTask for the fire; what it placed is added to the state the next fire of this pass sees.</summary>
    private static CoordinatorState Attempt(CoordinatorState state, StoredSchedule stored, ScheduleFire fire, int count, CommandContext context, Random random, Func<string> newId, List<StateChange> changes, CandidatePool pool)
    {
        fire.Attempts++;
        Mutation<RunTaskResponse> run;
        try
        {
            run = TaskCommands.Run(state, RunTaskRequest(stored.Schedule.Name, stored.Schedule.Target, count), context, random, newId, pool.For);
        }
        catch (EcsException e)
        {
            Failed(stored, fire, e);
            return state;
        }

        Settle(stored, fire, count, run, context, changes);
        var next = state.Apply(run.Changes);
        pool.Update(next, run.Changes);
        return next;
    }

    /// <summary>A fire waiting to be placed with the others of its pass that place alike.</summary>
    private sealed record Pending(StoredSchedule Stored, ScheduleFire Fire, int Count);

    /// <summary>The pass's default-placement fires: one plan for each group of alike RunTasks; the state with their tasks.</summary>
    private static CoordinatorState RunAlike(CoordinatorState state, List<Pending> alike, CommandContext context, Random random, Func<string> newId, List<StateChange> changes, CandidatePool pool)
    {
        var requests = alike.Select(f => RunTaskRequest(f.Stored.Schedule.Name, f.Stored.Schedule.Target, f.Count)).ToList();
        foreach (var group in Enumerable.Range(0, alike.Count).GroupBy(i => AlikeKey(requests[i])))
        {
            var fires = group.ToList();
            List<Mutation<RunTaskResponse>>? runs;
            try
            {
                runs = TaskCommands.RunAlike(state, [.. fires.Select(i => requests[i])], context, random, newId, pool.For);
            }
            catch (EcsException e)
            {
                fires.ForEach(i => Failed(alike[i].Stored, alike[i].Fire, e));
                continue;
            }

            if (runs is null)
            {
                // Their placement depends on each fire's group: one RunTask each, each seeing the tasks of the one before.
                fires.ForEach(i => state = Attempt(state, alike[i].Stored, alike[i].Fire, alike[i].Count, context, random, newId, changes, pool));
                continue;
            }

            var placed = new List<StateChange>();
            for (var f = 0; f < fires.Count; f++)
            {
                var (stored, fire, count) = alike[fires[f]];
                fire.Attempts++;
                Settle(stored, fire, count, runs[f], context, changes);
                placed.AddRange(runs[f].Changes);
            }

            state = state.Apply(placed);
            pool.Update(state, placed);
        }

        alike.Clear();
        return state;
    }

    /// <summary>What makes RunTasks place alike: the same cluster, task definition, launch type and overrides.</summary>
    private static string AlikeKey(RunTaskRequest request) =>
        $"{request.Cluster}\n{request.TaskDefinition}\n{request.LaunchType}\n{request.Overrides?.ToByteString().ToBase64()}";

    /// <summary>The cluster or task definition is gone or refuses: no retry makes that right.</summary>
    private static void Failed(StoredSchedule stored, ScheduleFire fire, EcsException e)
    {
        fire.Failures.Clear();
        fire.Failures.Add(e.ToString());
        fire.Status = "FAILED";
        stored.Retrying = null;
    }

    /// <summary>What the fire's RunTask did: its tasks, its failures, and a retry for the tasks that did not fit.</summary>
    private static void Settle(StoredSchedule stored, ScheduleFire fire, int count, Mutation<RunTaskResponse> run, CommandContext context, List<StateChange> changes)
    {
        if (stored.Retrying is { } earlier && !ReferenceEquals(earlier, fire))
        {
            // An earlier slot of the same pass (placed together with this one) still short of tasks.
            earlier.Status = "FAILED";
            earlier.Failures.Add("not all tasks were placed before the next slot");
            stored.Retrying = null;
        }

        changes.AddRange(run.Changes);
        fire.TaskArns.Add(run.Result.Tasks.Select(t => t.TaskArn));
        fire.Failures.Clear();
        fire.Failures.Add(run.Result.Failures.Select(f => string.IsNullOrEmpty(f.Detail) ? f.Reason : $"{f.Reason}: {f.Detail}").Distinct());
        var missing = count - run.Result.Tasks.Count;
        if (missing == 0)
        {
            fire.Status = "SUCCEEDED";
            stored.Retrying = null;
        }
        else
        {
            fire.Status = "RETRYING";
            stored.Retrying = fire;
            stored.RetryTaskCount = missing;
            var delay = TimeSpan.FromSeconds(Math.Min(MaxRetryDelay.TotalSeconds, Math.Pow(2, Math.Min(fire.Attempts - 1, 10))));
            stored.RetryAt = Timestamp.FromDateTimeOffset(context.Now + delay);
        }
    }

    /// <summary>
    /// Each cluster's placement candidates, made once per pass and then kept current for the instances
    /// the pass's own tasks land on (nothing else changes the state during one command): one RunTask then
    /// costs its placement, not a look at every instance of the cluster.
    /// </summary>
    private sealed class CandidatePool
    {
        private readonly Dictionary<string, (List<Candidate> List, Dictionary<string, int> Index)> _clusters = new(StringComparer.Ordinal);

        public List<Candidate> For(CoordinatorState state, string cluster)
        {
            if (!_clusters.TryGetValue(cluster, out var pool))
            {
                var list = TaskCommands.Candidates(state, cluster);
                _clusters[cluster] = pool = (list, list.Select((c, i) => (c.Arn, i)).ToDictionary(p => p.Arn, p => p.i, StringComparer.Ordinal));
            }

            return pool.List;
        }

        /// <param name="changes">The new tasks a RunTask of the pass placed; <paramref name="state"/> has them.</param>
        public void Update(CoordinatorState state, IEnumerable<StateChange> changes)
        {
            foreach (var placed in changes.OfType<TaskPut>().Select(p => p.Task).GroupBy(t => (t.Cluster, t.Task.ContainerInstanceArn)))
            {
                if (_clusters.TryGetValue(placed.Key.Cluster, out var pool) && pool.Index.TryGetValue(placed.Key.ContainerInstanceArn, out var i))
                {
                    pool.List[i] = TaskCommands.Took(state, pool.List[i], placed);
                }
            }
        }
    }

    /// <summary>The fire (a retried one, a copy since the stored schedule was cloned) in place of its slot's entry in the last fires.</summary>
    private static void Update(StoredSchedule stored, ScheduleFire fire)
    {
        var fires = stored.Schedule.LastFires;
        for (var i = 0; i < fires.Count; i++)
        {
            if (fires[i].SlotTime.Equals(fire.SlotTime))
            {
                fires[i] = fire;
                return;
            }
        }
    }

    /// <summary>Adds a fire to the schedule's last fires, newest first.</summary>
    private static void Record(StoredSchedule stored, ScheduleFire fire)
    {
        var fires = stored.Schedule.LastFires;
        fires.Insert(0, fire);
        while (fires.Count > ScheduleCommands.MaxFiresShown)
        {
            fires.RemoveAt(fires.Count - 1);
        }
    }
}
