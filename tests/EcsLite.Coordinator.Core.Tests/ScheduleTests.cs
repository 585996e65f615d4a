using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Schedules;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static EcsLite.Coordinator.Core.Tests.Fixtures;

namespace EcsLite.Coordinator.Core.Tests;

public class ScheduleTests
{
    private static readonly ArnFormat Arns = new();
    private int _ids;

    private string NewId() => $"{++_ids:D32}";

    private static CommandContext At(DateTimeOffset now) => new(now, Arns);

    /// <summary>The default cluster, one instance of 1024 CPU and <paramref name="memory"/> MiB, and the family "job" (256 MiB).</summary>
    private static CoordinatorState Cluster(int memory = 1024)
    {
        var state = Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context())).State;
        state = Run(state, s => ContainerInstanceCommands.Join(s, ContainerInstanceCommandsTests.Hello(cpu: 1024, memory: memory, hostname: "aaaa"), Context(), "aaaa")).State;
        return Run(state, s => TaskDefinitionCommands.Register(s, Simple("job", memory: 256), Context())).State;
    }

    private static CreateScheduleRequest Schedule(string name, string expression, string json = "") => JsonParser.Default.Parse<CreateScheduleRequest>($$"""
        {
          "Name": "{{name}}", "ScheduleExpression": "{{expression}}", "FlexibleTimeWindow": { "Mode": "OFF" },
          "Target": { "Arn": "{{Arns.Cluster("default")}}", "RoleArn": "arn:aws:iam::000000000000:role/scheduler", "EcsParameters": { "TaskDefinitionArn": "job" } }
          {{json}}
        }
        """);

    private (CoordinatorState State, SchedulePass Pass) Pass(CoordinatorState state, DateTimeOffset now) =>
        Run(state, s => ScheduleRunner.Run(s, At(now), new Random(1), NewId));

    private static List<Api.V1.Task> Started(CoordinatorState state, string name) =>
        [.. state.Tasks.Values.Select(t => t.Task).Where(t => t.StartedBy == $"ecslite-scheduler/{name}")];

    [Fact]
    public void A_rate_schedule_fires_once_per_slot_and_records_each_fire()
    {
        var created = Now.AddSeconds(10);
        var state = Run(Cluster(), s => ScheduleCommands.Create(s, Schedule("every-minute", "rate(1 minute)"), At(created))).State;
        Assert.Equal(Now.AddMinutes(1), state.Schedules["every-minute"].Schedule.NextInvocation.ToDateTimeOffset());

        // Before the slot nothing fires; at it, one task; passes in between (any change wakes them) fire nothing more.
        state = Pass(state, Now.AddSeconds(59)).State;
        Assert.Empty(Started(state, "every-minute"));
        foreach (var second in new[] { 60, 61, 90, 119, 120 })
        {
            state = Pass(state, Now.AddSeconds(second)).State;
        }

        var tasks = Started(state, "every-minute");
        Assert.Equal(2, tasks.Count);
        Assert.All(tasks, t => Assert.Equal("schedule:every-minute", t.Group));
        var schedule = ScheduleCommands.Get(state, new GetScheduleRequest { Name = "every-minute" });
        Assert.Equal([Now.AddMinutes(2), Now.AddMinutes(1)], schedule.LastFires.Select(f => f.SlotTime.ToDateTimeOffset()));
        Assert.All(schedule.LastFires, f => Assert.Equal("SUCCEEDED", f.Status));
        Assert.Equal(tasks.Select(t => t.TaskArn).Order(), schedule.LastFires.SelectMany(f => f.TaskArns).Order());
        Assert.Equal(Now.AddMinutes(3), schedule.NextInvocation.ToDateTimeOffset());
    }

    [Fact]
    public void Slots_missed_while_down_are_skipped_and_said_unless_within_the_flexible_window()
    {
        var state = Cluster(memory: 65536);
        state = Run(state, s => ScheduleCommands.Create(s, Schedule("strict", "rate(1 minute)"), At(Now))).State;
        state = Run(state, s => ScheduleCommands.Create(s, Schedule("flexible", "rate(5 minutes)", """, "FlexibleTimeWindow": { "Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15 }"""), At(Now))).State;

        // The coordinator was down for twenty minutes: the strict schedule says it skipped, then runs the
        // slot still within a minute; the flexible one runs the slots of its last 15 minutes, once each.
        state = Pass(state, Now.AddMinutes(20).AddSeconds(30)).State;
        var strict = state.Schedules["strict"].Schedule;
        Assert.Equal(["SUCCEEDED", "SKIPPED"], strict.LastFires.Select(f => f.Status));
        Assert.Equal(Now.AddMinutes(1), strict.LastFires[1].SlotTime.ToDateTimeOffset());
        Assert.Contains("missed", strict.LastFires[1].Failures.Single(), StringComparison.Ordinal);
        Assert.Equal(Now.AddMinutes(20), strict.LastFires[0].SlotTime.ToDateTimeOffset());
        Assert.Single(Started(state, "strict"));

        // The flexible one fires each slot of its window once, at a point within the window fixed by the
        // schedule and slot (so that many schedules spread out). Its slots are +1, +6, +11, ... (from the
        // first whole minute after its creation); +1 is more than 15 minutes late.
        for (var now = Now.AddMinutes(20).AddSeconds(30); now <= Now.AddMinutes(50); now = now.AddSeconds(30))
        {
            state = Pass(state, now).State;
        }

        var flexible = state.Schedules["flexible"].Schedule;
        var expected = Enumerable.Range(1, 10).Select(i => Now.AddMinutes(1 + (5 * i)))
            .Where(slot => ScheduleRunner.FireAt(flexible, slot) <= Now.AddMinutes(50)).ToList();
        var fired = flexible.LastFires.Where(f => f.Status == "SUCCEEDED").OrderBy(f => f.SlotTime.ToDateTimeOffset()).ToList();
        Assert.Equal(expected, fired.Select(f => f.SlotTime.ToDateTimeOffset()));
        Assert.All(fired, f => Assert.InRange(f.FiredAt.ToDateTimeOffset() - f.SlotTime.ToDateTimeOffset(), TimeSpan.Zero, TimeSpan.FromMinutes(15)));
        Assert.Equal(Now.AddMinutes(1), flexible.LastFires.Single(f => f.Status == "SKIPPED").SlotTime.ToDateTimeOffset());
        Assert.Equal(fired.Count, Started(state, "flexible").Count);
    }

    [Fact]
    public void A_fire_whose_tasks_do_not_fit_is_retried_until_they_do()
    {
        // Three tasks of 512 MiB on 1024 MiB: two fit, one is retried; once a task stops, it fits.
        var state = Run(Cluster(), s => TaskDefinitionCommands.Register(s, Simple("job", memory: 512), Context())).State;
        state = Run(state, s => ScheduleCommands.Create(s, Schedule("big", "cron(0 * * * ? *)", """, "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default", "EcsParameters": { "TaskDefinitionArn": "job", "TaskCount": 3 } }"""), At(Now))).State;
        state = Pass(state, Now.AddHours(1)).State;
        var fire = state.Schedules["big"].Schedule.LastFires.Single();
        Assert.Equal(("RETRYING", 2, 1), (fire.Status, fire.TaskArns.Count, fire.Attempts));
        Assert.Contains(fire.Failures, f => f.StartsWith("RESOURCE:MEMORY", StringComparison.Ordinal));

        // Still no room: the next try waits longer.
        state = Pass(state, Now.AddHours(1).AddSeconds(1)).State;
        var retryAt = state.Schedules["big"].RetryAt.ToDateTimeOffset();
        Assert.Equal(2, state.Schedules["big"].Schedule.LastFires.Single().Attempts);
        Assert.True(retryAt > Now.AddHours(1).AddSeconds(2));

        // One task ends (its agent says so): its memory is free again.
        var ended = Started(state, "big")[0].TaskArn;
        state = Run(state, s => TaskCommands.Report(s, state.Tasks[ended].Task.ContainerInstanceArn,
            new TaskStateChange { TaskArn = ended, LastStatus = "STOPPED", DesiredStatus = "STOPPED" }, At(Now.AddHours(1)))).State;
        state = Pass(state, retryAt).State;
        fire = state.Schedules["big"].Schedule.LastFires.Single();
        Assert.Equal(("SUCCEEDED", 3, 3), (fire.Status, fire.TaskArns.Count, fire.Attempts));
        Assert.Null(state.Schedules["big"].Retrying);
    }

    [Fact]
    public void Fires_of_one_slot_are_placed_together_each_with_its_own_tasks_and_those_that_do_not_fit_are_retried()
    {
        // Four instances with room for 8 tasks of 256 MiB each (32), and 40 schedules of the same slot.
        var state = Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context())).State;
        foreach (var host in new[] { "aaaa", "bbbb", "cccc", "dddd" })
        {
            state = Run(state, s => ContainerInstanceCommands.Join(s, ContainerInstanceCommandsTests.Hello(cpu: 8192, memory: 2048, hostname: host), Context(), host)).State;
        }

        state = Run(state, s => TaskDefinitionCommands.Register(s, Simple("job", memory: 256), Context())).State;
        for (var i = 0; i < 40; i++)
        {
            state = Run(state, s => ScheduleCommands.Create(s, Schedule($"s{i:D2}", "cron(0 * * * ? *)"), At(Now))).State;
        }

        state = Pass(state, Now.AddHours(1)).State;

        var fires = Enumerable.Range(0, 40).Select(i => state.Schedules[$"s{i:D2}"].Schedule.LastFires.Single()).ToList();
        Assert.All(fires.Take(32), f => Assert.Equal(("SUCCEEDED", 1), (f.Status, f.TaskArns.Count)));
        Assert.All(fires.Skip(32), f => Assert.Equal(("RETRYING", 0), (f.Status, f.TaskArns.Count)));
        Assert.All(fires.Skip(32), f => Assert.StartsWith("RESOURCE:MEMORY", Assert.Single(f.Failures), StringComparison.Ordinal));
        for (var i = 0; i < 32; i++)
        {
            var task = state.Tasks[fires[i].TaskArns.Single()].Task;
            Assert.Equal(($"ecslite-scheduler/s{i:D2}", $"schedule:s{i:D2}"), (task.StartedBy, task.Group));
        }

        // One plan for all of them spreads them as the default placement does: 8 on each instance.
        Assert.All(state.Tasks.Values.GroupBy(t => t.Task.ContainerInstanceArn), g => Assert.Equal(8, g.Count()));
    }

    [Fact]
    public void Fires_whose_definition_places_by_group_are_placed_one_by_one_and_never_overcommit()
    {
        // A constraint on task groups (each schedule's own): the fires cannot share one plan.
        // One instance of 1024 MiB, three fires of 512 MiB: two fit, the third is retried.
        var state = Run(Cluster(), s => TaskDefinitionCommands.Register(s, Parse("""
            { "family": "job", "placementConstraints": [{ "type": "memberOf", "expression": "not(task:group == schedule:none)" }],
              "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 512 }] }
            """), Context())).State;
        foreach (var name in new[] { "a", "b", "c" })
        {
            state = Run(state, s => ScheduleCommands.Create(s, Schedule(name, "cron(0 * * * ? *)"), At(Now))).State;
        }

        state = Pass(state, Now.AddHours(1)).State;

        Assert.Equal(["SUCCEEDED", "SUCCEEDED", "RETRYING"], new[] { "a", "b", "c" }.Select(n => state.Schedules[n].Schedule.LastFires.Single().Status));
        Assert.Equal(2, state.Tasks.Count);
    }

    [Fact]
    public void A_fire_the_cluster_refuses_fails_with_the_reason_and_the_schedule_goes_on()
    {
        var state = Run(Cluster(), s => ScheduleCommands.Create(s, Schedule("gone", "rate(1 minute)", """, "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default", "EcsParameters": { "TaskDefinitionArn": "missing" } }"""), At(Now))).State;
        state = Pass(state, Now.AddMinutes(1)).State;
        var fire = state.Schedules["gone"].Schedule.LastFires.Single();
        Assert.Equal("FAILED", fire.Status);
        Assert.Contains("missing", fire.Failures.Single(), StringComparison.Ordinal);
        Assert.Equal(Now.AddMinutes(2), state.Schedules["gone"].Schedule.NextInvocation.ToDateTimeOffset());
    }

    [Fact]
    public void One_time_schedules_fire_once_and_DELETE_removes_them_after()
    {
        var state = Cluster();
        state = Run(state, s => ScheduleCommands.Create(s, Schedule("once", "at(2026-11-25T13:00:00)"), At(Now))).State;
        state = Run(state, s => ScheduleCommands.Create(s, Schedule("once-then-gone", "at(2026-11-25T14:00:00)", """, "ScheduleExpressionTimezone": "Europe/Berlin", "ActionAfterCompletion": "DELETE" """), At(Now))).State;
        state = Pass(state, Now.AddHours(1)).State;
        state = Pass(state, Now.AddHours(2)).State;
        Assert.Single(Started(state, "once"));
        Assert.Null(state.Schedules["once"].Schedule.NextInvocation);
        // 14:00 in Berlin is 13:00 UTC: fired with the other, then deleted.
        Assert.Single(Started(state, "once-then-gone"));
        Assert.False(state.Schedules.ContainsKey("once-then-gone"));
    }

    [Fact]
    public void Disabled_schedules_do_not_fire_and_enabling_one_starts_from_now()
    {
        var state = Run(Cluster(), s => ScheduleCommands.Create(s, Schedule("paused", "rate(1 minute)", """, "State": "DISABLED" """), At(Now))).State;
        state = Pass(state, Now.AddMinutes(30)).State;
        Assert.Empty(Started(state, "paused"));
        Assert.Null(ScheduleRunner.NextDue(state));

        var update = JsonParser.Default.Parse<UpdateScheduleRequest>(JsonFormatter.Default.Format(Schedule("paused", "rate(1 minute)")));
        state = Run(state, s => ScheduleCommands.Update(s, update, At(Now.AddMinutes(30).AddSeconds(5)))).State;
        Assert.Equal(Now.AddMinutes(31), ScheduleRunner.NextDue(state));
        state = Pass(state, Now.AddMinutes(31)).State;
        Assert.Single(Started(state, "paused"));
    }

    [Fact]
    public void Start_and_end_dates_bound_a_recurring_schedule()
    {
        var state = Run(Cluster(), s => ScheduleCommands.Create(s, Schedule("bounded", "rate(1 hour)",
            $$""", "StartDate": "{{Now.AddHours(2):yyyy-MM-ddTHH:mm:ssZ}}", "EndDate": "{{Now.AddHours(3).AddMinutes(30):yyyy-MM-ddTHH:mm:ssZ}}" """), At(Now))).State;
        Assert.Equal(Now.AddHours(2), state.Schedules["bounded"].Schedule.NextInvocation.ToDateTimeOffset());
        for (var hour = 1; hour <= 6; hour++)
        {
            state = Pass(state, Now.AddHours(hour)).State;
        }

        Assert.Equal(2, Started(state, "bounded").Count);
        Assert.Null(state.Schedules["bounded"].Schedule.NextInvocation);
    }

    [Theory]
    [InlineData("""{ "Name": "a b" }""", "Name")]
    [InlineData("""{ "ScheduleExpression": "rate(1 minutes)" }""", "ScheduleExpression")]
    [InlineData("""{ "ScheduleExpressionTimezone": "Mars/Olympus_Mons" }""", "ScheduleExpressionTimezone")]
    [InlineData("""{ "StartDate": "2027-01-02T00:00:00Z", "EndDate": "2027-01-01T00:00:00Z" }""", "EndDate")]
    [InlineData("""{ "EndDate": "2020-01-01T00:00:00Z" }""", "EndDate")]
    [InlineData("""{ "StartDate": "9999-12-31T00:00:00Z" }""", "StartDate")]
    [InlineData("""{ "StartDate": "1900-01-01T00:00:00Z" }""", "StartDate")]
    [InlineData("""{ "State": "PAUSED" }""", "State")]
    [InlineData("""{ "FlexibleTimeWindow": { "Mode": "FLEXIBLE" } }""", "FlexibleTimeWindow.MaximumWindowInMinutes")]
    [InlineData("""{ "FlexibleTimeWindow": { "Mode": "SOMETIMES" } }""", "FlexibleTimeWindow.Mode")]
    [InlineData("""{ "ActionAfterCompletion": "ARCHIVE" }""", "ActionAfterCompletion")]
    [InlineData("""{ "Description": "DESCRIPTION" }""", "Description")]
    [InlineData("""{ "Target": { "Arn": "arn:aws:sqs:local:000000000000:queue", "EcsParameters": { "TaskDefinitionArn": "job" } } }""", "Target.Arn")]
    [InlineData("""{ "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default" } }""", "Target.EcsParameters")]
    [InlineData("""{ "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default", "EcsParameters": { "TaskDefinitionArn": "job", "TaskCount": 11 } } }""", "Target.EcsParameters.TaskCount")]
    [InlineData("""{ "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default", "EcsParameters": { "TaskDefinitionArn": "job", "Tags": [{ "a": 1 }] } } }""", "Target.EcsParameters.Tags[0]")]
    [InlineData("""{ "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default", "Input": "{\"nope\": 1}", "EcsParameters": { "TaskDefinitionArn": "job" } } }""", "Target.Input")]
    [InlineData("""{ "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default", "RetryPolicy": { "MaximumEventAgeInSeconds": 10 }, "EcsParameters": { "TaskDefinitionArn": "job" } } }""", "Target.RetryPolicy.MaximumEventAgeInSeconds")]
    [InlineData("""{ "Target": { "Arn": "arn:aws:ecs:local:000000000000:cluster/default", "EcsParameters": { "TaskDefinitionArn": "job", "LaunchType": "SPACESHIP" } } }""", "Target.EcsParameters.launchType")]
    public void Bad_input_is_a_ValidationException_naming_the_member_and_changes_nothing(string patch, string field)
    {
        var request = Schedule("good", "rate(1 minute)");
        request.MergeFrom(JsonParser.Default.Parse<CreateScheduleRequest>(patch.Replace("DESCRIPTION", new string('x', 513), StringComparison.Ordinal)));
        if (patch.Contains("\"Target\"", StringComparison.Ordinal))
        {
            request.Target = JsonParser.Default.Parse<CreateScheduleRequest>(patch).Target;
        }

        if (patch.Contains("\"FlexibleTimeWindow\"", StringComparison.Ordinal))
        {
            request.FlexibleTimeWindow = JsonParser.Default.Parse<CreateScheduleRequest>(patch).FlexibleTimeWindow;
        }

        var state = Cluster();
        var error = Assert.Throws<EcsException>(() => ScheduleCommands.Create(state, request, At(Now)));
        Assert.Equal((SchedulerErrors.ValidationException, field), (error.ErrorType, error.Field));
    }

    [Fact]
    public void A_timestamp_no_JSON_can_spell_but_bytes_can_is_refused_too()
    {
        var request = Schedule("good", "rate(1 minute)");
        request.StartDate = new Timestamp { Seconds = 1_800_000_000, Nanos = -1 };
        var error = Assert.Throws<EcsException>(() => ScheduleCommands.Create(Cluster(), request, At(Now)));
        Assert.Equal((SchedulerErrors.ValidationException, "StartDate"), (error.ErrorType, error.Field));
    }

    [Fact]
    public void Names_are_unique_unknown_ones_are_not_found_and_lists_filter_and_page()
    {
        var state = Cluster();
        foreach (var name in new[] { "nightly-a", "nightly-b", "hourly" })
        {
            state = Run(state, s => ScheduleCommands.Create(s, Schedule(name, "rate(1 hour)"), At(Now))).State;
        }

        var conflict = Assert.Throws<EcsException>(() => ScheduleCommands.Create(state, Schedule("hourly", "rate(1 hour)"), At(Now)));
        Assert.Equal(SchedulerErrors.ConflictException, conflict.ErrorType);
        var missing = Assert.Throws<EcsException>(() => ScheduleCommands.Get(state, new GetScheduleRequest { Name = "weekly" }));
        Assert.Equal(SchedulerErrors.ResourceNotFoundException, missing.ErrorType);
        Assert.Equal(SchedulerErrors.ResourceNotFoundException, Assert.Throws<EcsException>(() => ScheduleCommands.Delete(state, new DeleteScheduleRequest { Name = "weekly" })).ErrorType);
        Assert.Equal(SchedulerErrors.ResourceNotFoundException, Assert.Throws<EcsException>(() => ScheduleCommands.Get(state, new GetScheduleRequest { Name = "hourly", GroupName = "other" })).ErrorType);

        var first = ScheduleCommands.List(state, new ListSchedulesRequest { NamePrefix = "nightly", MaxResults = 1 });
        var second = ScheduleCommands.List(state, new ListSchedulesRequest { NamePrefix = "nightly", MaxResults = 1, NextToken = first.NextToken });
        Assert.Equal(["nightly-a", "nightly-b"], first.Schedules.Concat(second.Schedules).Select(s => s.Name));
        Assert.False(second.HasNextToken);
        Assert.Equal("arn:aws:scheduler:local:000000000000:schedule/default/hourly", ScheduleCommands.List(state, new ListSchedulesRequest { NamePrefix = "h" }).Schedules.Single().Arn);
        Assert.Empty(ScheduleCommands.List(state, new ListSchedulesRequest { State = "DISABLED" }).Schedules);

        state = Run(state, s => ScheduleCommands.Delete(s, new DeleteScheduleRequest { Name = "hourly" })).State;
        Assert.Equal(2, ScheduleCommands.List(state, new ListSchedulesRequest()).Schedules.Count);
    }

    [Fact]
    public void UpdateSchedule_takes_exactly_CreateSchedule_members_so_one_check_serves_both()
    {
        static IEnumerable<string> Fields(Google.Protobuf.Reflection.MessageDescriptor d) =>
            d.Fields.InFieldNumberOrder().Select(f => $"{f.FieldNumber} {f.Name} {f.FieldType} {f.HasPresence} {(f.FieldType == Google.Protobuf.Reflection.FieldType.Message ? f.MessageType.FullName : "")}");
        Assert.Equal(Fields(CreateScheduleRequest.Descriptor), Fields(UpdateScheduleRequest.Descriptor));
    }

    [Fact]
    public void Tasks_a_schedule_starts_are_for_their_agents_as_any_new_task()
    {
        var state = Run(Cluster(), s => ScheduleCommands.Create(s, Schedule("ping", "rate(1 minute)"), At(Now))).State;
        var mutation = ScheduleRunner.Run(state, At(Now.AddMinutes(1)), new Random(1), NewId);
        var started = mutation.Changes.OfType<TaskPut>().Single().Task.Task.TaskArn;
        Assert.Equal([started], TaskCommands.ForAgents(state, mutation.Changes));
        // A report from the agent (same desired status) sends nothing back.
        var after = state.Apply(mutation.Changes);
        var reported = after.Tasks[started].Clone();
        reported.Task.LastStatus = "RUNNING";
        Assert.Empty(TaskCommands.ForAgents(after, [new TaskPut(reported)]));
    }
}
