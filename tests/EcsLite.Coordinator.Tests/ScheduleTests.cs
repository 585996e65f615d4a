using System.Globalization;
using System.Text.Json.Nodes;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Grpc.Core;
using Xunit.Abstractions;
using EcsTask = EcsLite.Api.V1.Task;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Schedules on the real coordinator, in real time, with the real agent running their tasks on Docker:
/// schedules are created as a user would, with EventBridge Scheduler's JSON through the reflection-based
/// client (grpcurl's way).
/// </summary>
public sealed class ScheduleTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Scheduler = "ecslite.v1.Scheduler/";
    private static readonly TimeSpan Tolerance = TimeSpan.FromSeconds(2);
    private CoordinatorProcess _coordinator = null!;
    private AgentProcess _agent = null!;
    private DynamicJsonClient _json = null!;

    public async Task InitializeAsync()
    {
        await LocalImages.EnsureAsync();
        _coordinator = await CoordinatorProcess.StartAsync();
        _json = await DynamicJsonClient.ConnectAsync(_coordinator.Channel);
        _agent = AgentProcess.Start(_coordinator.Address, _coordinator.JoinToken, environment: new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
        });
        await _agent.WaitJoinedAsync();
        await _coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "tick",
            ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16, Command = { "sleep", "600" } } },
        });
    }

    public async Task DisposeAsync()
    {
        var instance = _agent.ContainerInstanceArn;
        await _agent.DisposeAsync();
        await _coordinator.DisposeAsync();
        if (instance is not null)
        {
            await ProcessRunner.RemoveContainersAsync([instance]);
        }
    }

    [Fact]
    public async Task Rate_and_cron_schedules_fire_on_their_slots_and_disabled_or_deleted_ones_fire_no_more()
    {
        // A cron schedule at the next whole minute but one of Kathmandu's local time (UTC+5:45): read as
        // UTC it would name another hour, and fire at none of the moments this test waits through.
        var kathmandu = TimeZoneInfo.FindSystemTimeZoneById("Asia/Kathmandu");
        var start = DateTimeOffset.UtcNow;
        var cronSlot = new DateTimeOffset(start.UtcTicks / TimeSpan.TicksPerMinute * TimeSpan.TicksPerMinute, TimeSpan.Zero).AddMinutes(2);
        var local = TimeZoneInfo.ConvertTime(cronSlot, kathmandu);
        await CreateAsync("every-minute", "rate(1 minute)");
        await CreateAsync("kathmandu", $"cron({local.Minute} {local.Hour} * * ? *)", """ "ScheduleExpressionTimezone": "Asia/Kathmandu", """);
        await CreateAsync("to-delete", "rate(1 minute)");
        await CreateAsync("to-disable", "rate(1 minute)");
        await CreateAsync("never", "rate(1 minute)", """ "State": "DISABLED", """);

        // After the first fire, one is deleted and one disabled.
        var first = await FiresAsync("every-minute", 1, TimeSpan.FromSeconds(90));
        await Eventually.HoldsAsync(async () => (await FiresOfAsync("to-delete")).Count == 1 && (await FiresOfAsync("to-disable")).Count == 1, TimeSpan.FromSeconds(10), "the first fires");
        await _json.CallAsync(Scheduler + "DeleteSchedule", """{ "Name": "to-delete" }""");
        var disable = await _json.CallAsync(Scheduler + "GetSchedule", """{ "Name": "to-disable" }""");
        await _json.CallAsync(Scheduler + "UpdateSchedule", $$"""
            { "Name": "to-disable", "ScheduleExpression": "rate(1 minute)", "State": "DISABLED", "FlexibleTimeWindow": { "Mode": "OFF" }, "Target": {{disable["Target"]!.ToJsonString()}} }
            """);

        var fires = await FiresAsync("every-minute", 3, TimeSpan.FromSeconds(150));
        var tasks = await TasksAsync("every-minute");
        Assert.Equal(3, tasks.Count);
        var slots = fires.Select(f => f.Slot).Order().ToList();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(0, slots[i].Second);
            Assert.Equal(slots[0].AddMinutes(i), slots[i]);
            // Measured by the task's own creation: the fire started it within the tolerance of its slot.
            var created = tasks.Select(t => t.CreatedAt.ToDateTimeOffset()).Order().ElementAt(i);
            output.WriteLine($"slot {slots[i]:HH:mm:ss} task created {created:HH:mm:ss.fff} ({(created - slots[i]).TotalMilliseconds:F0} ms late)");
            Assert.InRange(created - slots[i], TimeSpan.Zero, Tolerance);
        }

        Assert.All(tasks, t => Assert.Equal(("schedule:every-minute", "ecslite-scheduler/every-minute"), (t.Group, t.StartedBy)));
        await Eventually.HoldsAsync(async () => (await TasksAsync("every-minute")).All(t => t.LastStatus == "RUNNING"), TimeSpan.FromSeconds(30), "the scheduled tasks run on the agent");

        var kathmanduTasks = await TasksAsync("kathmandu");
        var cron = Assert.Single(kathmanduTasks);
        Assert.InRange(cron.CreatedAt.ToDateTimeOffset() - cronSlot, TimeSpan.Zero, Tolerance);

        Assert.Single(await TasksAsync("to-delete"));
        Assert.Single(await TasksAsync("to-disable"));
        Assert.Empty(await TasksAsync("never"));
        var error = await Assert.ThrowsAsync<RpcException>(() => _json.CallAsync(Scheduler + "GetSchedule", """{ "Name": "to-delete" }"""));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.StartsWith("ResourceNotFoundException", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_coordinator_killed_right_after_a_fire_or_after_its_task_started_runs_each_slot_exactly_once()
    {
        await CreateAsync("crash", "rate(1 minute)");

        // Killed the moment the first fire is recorded: its task may not have reached the agent yet.
        await FiresAsync("crash", 1, TimeSpan.FromSeconds(90), poll: TimeSpan.FromMilliseconds(20));
        await _coordinator.KillAsync();
        await _coordinator.StartAgainAsync();
        _json = await DynamicJsonClient.ConnectAsync(_coordinator.Channel);

        // Killed once the second fire's task runs.
        await FiresAsync("crash", 2, TimeSpan.FromSeconds(90));
        await Eventually.HoldsAsync(async () => (await TasksAsync("crash")).Count(t => t.LastStatus == "RUNNING") == 2, TimeSpan.FromSeconds(40), "both scheduled tasks running");
        await _coordinator.KillAsync();
        await _coordinator.StartAgainAsync();
        _json = await DynamicJsonClient.ConnectAsync(_coordinator.Channel);

        var fires = await FiresAsync("crash", 3, TimeSpan.FromSeconds(90));
        await Eventually.HoldsAsync(async () => (await TasksAsync("crash")).Count(t => t.LastStatus == "RUNNING") == 3, TimeSpan.FromSeconds(40), "three scheduled tasks running");
        var tasks = await TasksAsync("crash");
        Assert.Equal(3, tasks.Count);
        Assert.Equal(3, fires.Select(f => f.Slot).Distinct().Count());
        Assert.Equal(tasks.Select(t => t.TaskArn).Order(), fires.SelectMany(f => f.TaskArns).Order());
        Assert.All(fires, f => Assert.Equal("SUCCEEDED", f.Status));
        // The agent runs exactly the three containers: no slot's task was started twice.
        var (_, containers) = await ProcessRunner.RunAsync("docker", ["ps", "-q", "--filter", $"label=ecslite.container-instance-arn={_agent.ContainerInstanceArn}"]);
        Assert.Equal(3, containers.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    /// <summary>The README's schedule of the example, as grpcurl sends it.</summary>
    [Fact]
    public async Task The_README_schedule_of_the_example_is_created_shows_its_next_slot_and_is_deleted()
    {
        await _json.CallAsync("ecslite.v1.Ecs/RegisterTaskDefinition", File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));
        await _json.CallAsync(Scheduler + "CreateSchedule", """
            {"Name": "nightly-web", "ScheduleExpression": "cron(30 2 * * ? *)", "ScheduleExpressionTimezone": "Europe/Berlin",
              "FlexibleTimeWindow": {"Mode": "OFF"},
              "Target": {"Arn": "arn:aws:ecs:local:000000000000:cluster/default", "RoleArn": "arn:aws:iam::000000000000:role/ecslite-scheduler",
                "EcsParameters": {"TaskDefinitionArn": "fargate-task-definition", "LaunchType": "FARGATE",
                  "NetworkConfiguration": {"awsvpcConfiguration": {"Subnets": ["subnet-home"], "AssignPublicIp": "DISABLED"}}}}}
            """);
        var schedule = await _json.CallAsync(Scheduler + "GetSchedule", """{"Name": "nightly-web"}""");
        var next = DateTimeOffset.Parse(schedule["NextInvocation"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        var berlin = TimeZoneInfo.ConvertTime(next, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin"));
        Assert.Equal((2, 30, 0), (berlin.Hour, berlin.Minute, berlin.Second));
        Assert.InRange(next - DateTimeOffset.UtcNow, TimeSpan.Zero, TimeSpan.FromHours(25));
        Assert.Equal("FARGATE", schedule["Target"]!["EcsParameters"]!["LaunchType"]!.GetValue<string>());
        Assert.Equal(("ENABLED", "NONE"), (schedule["State"]!.GetValue<string>(), schedule["ActionAfterCompletion"]!.GetValue<string>()));

        var bad = await Assert.ThrowsAsync<RpcException>(() => _json.CallAsync(Scheduler + "CreateSchedule", """
            {"Name": "bad", "ScheduleExpression": "cron(30 2 * * * *)", "FlexibleTimeWindow": {"Mode": "OFF"},
              "Target": {"Arn": "arn:aws:ecs:local:000000000000:cluster/default", "EcsParameters": {"TaskDefinitionArn": "fargate-task-definition"}}}
            """));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.StartsWith("ValidationException: ScheduleExpression: 'cron(30 2 * * * *)': exactly one of day-of-month and day-of-week must be '?'", bad.Status.Detail, StringComparison.Ordinal);

        var listed = await _json.CallAsync(Scheduler + "ListSchedules", """{"NamePrefix": "nightly"}""");
        Assert.Equal("nightly-web", listed["Schedules"]![0]!["Name"]!.GetValue<string>());
        await _json.CallAsync(Scheduler + "DeleteSchedule", """{"Name": "nightly-web"}""");
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => _json.CallAsync(Scheduler + "GetSchedule", """{"Name": "nightly-web"}"""))).StatusCode);
    }

    private async Task CreateAsync(string name, string expression, string extra = "")
    {
        var created = await _json.CallAsync(Scheduler + "CreateSchedule", $$"""
            {
              "Name": "{{name}}", "ScheduleExpression": "{{expression}}", {{extra}}
              "FlexibleTimeWindow": { "Mode": "OFF" },
              "Target": {
                "Arn": "arn:aws:ecs:local:000000000000:cluster/default",
                "RoleArn": "arn:aws:iam::000000000000:role/ecslite-scheduler",
                "EcsParameters": { "TaskDefinitionArn": "tick", "TaskCount": 1, "LaunchType": "EC2" }
              }
            }
            """);
        Assert.Equal($"arn:aws:scheduler:local:000000000000:schedule/default/{name}", created["ScheduleArn"]!.GetValue<string>());
    }

    private sealed record Fire(DateTimeOffset Slot, string Status, List<string> TaskArns);

    private async Task<List<Fire>> FiresOfAsync(string name)
    {
        var schedule = await _json.CallAsync(Scheduler + "GetSchedule", $$"""{ "Name": "{{name}}" }""");
        return [.. (schedule["LastFires"]?.AsArray() ?? []).Select(f => new Fire(
            DateTimeOffset.Parse(f!["SlotTime"]!.GetValue<string>(), CultureInfo.InvariantCulture),
            f["Status"]!.GetValue<string>(),
            [.. (f["TaskArns"]?.AsArray() ?? []).Select(a => a!.GetValue<string>())]))];
    }

    private async Task<List<Fire>> FiresAsync(string name, int count, TimeSpan timeout, TimeSpan? poll = null)
    {
        List<Fire> fires = [];
        await Eventually.HoldsAsync(async () => (fires = await FiresOfAsync(name)).Count >= count, timeout, $"{count} fires of {name}", poll ?? TimeSpan.FromMilliseconds(200));
        return fires;
    }

    private async Task<List<EcsTask>> TasksAsync(string schedule)
    {
        var ecs = _coordinator.Ecs;
        var arns = (await ecs.ListTasksAsync(new ListTasksRequest { StartedBy = $"ecslite-scheduler/{schedule}" })).TaskArns;
        return arns.Count == 0 ? [] : [.. (await ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arns } })).Tasks];
    }
}
