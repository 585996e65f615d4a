using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The example custom scheduler (examples/custom-scheduler), run as its own process against the real
/// coordinator and simulated agents: it places its tasks where its filter says, and follows the
/// cluster's changes through the event stream.
/// </summary>
public sealed class CustomSchedulerTests
{
    private const string StartedBy = "custom-scheduler";

    [Fact]
    public async Task The_example_keeps_one_task_on_each_instance_its_filter_matches_as_instances_and_tasks_change()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, 5, memoryMiB: 1024);
        var ecs = coordinator.Ecs;
        await ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "edge-agent", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16 } },
        });
        var instances = (await ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns.Order().ToList();
        await RoleAsync(ecs, instances[0], "edge");
        await RoleAsync(ecs, instances[1], "edge");
        await RoleAsync(ecs, instances[2], "core");

        var key = coordinator.AdminKey;
        await using var scheduler = TestProcess.Start(
            ["dotnet", Path.Combine(AppContext.BaseDirectory, "ecslite-custom-scheduler.dll"), "--task-definition", "edge-agent", "--filter", "attribute:role == edge"],
            new Dictionary<string, string>
            {
                ["ECSLITE_ENDPOINT"] = coordinator.Address,
                ["ECSLITE_CA_FILE"] = coordinator.CaFile,
                ["ECSLITE_ACCESS_KEY"] = $"{key.AccessKeyId}:{key.Secret}",
            });
        await PlacedOnAsync(ecs, [instances[0], instances[1]], "one task on each edge instance", scheduler);

        // A host joins the edge role (a container instance state change): it gets one too.
        await RoleAsync(ecs, instances[3], "edge");
        await PlacedOnAsync(ecs, [instances[0], instances[1], instances[3]], "the new edge instance served", scheduler);

        // Its task is stopped (a task state change): it is replaced there.
        var stopped = (await TasksAsync(ecs)).Single(t => t.ContainerInstanceArn == instances[0]);
        await ecs.StopTaskAsync(new StopTaskRequest { Task = stopped.TaskArn });
        await Eventually.HoldsAsync(async () => (await TasksAsync(ecs)).Any(t => t.ContainerInstanceArn == instances[0] && t.TaskArn != stopped.TaskArn),
            TimeSpan.FromSeconds(30), "the stopped task replaced on its instance");
        await PlacedOnAsync(ecs, [instances[0], instances[1], instances[3]], "one each again", scheduler);

        // A host leaves the role: its task is stopped, the others stay.
        await RoleAsync(ecs, instances[1], "core");
        await PlacedOnAsync(ecs, [instances[0], instances[3]], "the instance that left the role emptied", scheduler);
        Assert.Contains("started ", scheduler.Output, StringComparison.Ordinal);
        Assert.True(fleet.Agents.Sum(a => a.Running("edge-agent")) >= 2);
    }

    private static Task RoleAsync(Ecs.EcsClient ecs, string instance, string role) =>
        ecs.PutAttributesAsync(new PutAttributesRequest { Attributes = { new EcsLite.Api.V1.Attribute { Name = "role", Value = role, TargetId = instance } } }).ResponseAsync;

    private static async Task<List<EcsLite.Api.V1.Task>> TasksAsync(Ecs.EcsClient ecs)
    {
        var arns = (await ecs.ListTasksAsync(new ListTasksRequest { StartedBy = StartedBy, DesiredStatus = "RUNNING" })).TaskArns;
        return arns.Count == 0 ? [] : [.. (await ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arns } })).Tasks];
    }

    /// <summary>Exactly one of the scheduler's tasks on each of <paramref name="expected"/>, none elsewhere, and it stays so for a second.</summary>
    private static async Task PlacedOnAsync(Ecs.EcsClient ecs, string[] expected, string what, TestProcess scheduler)
    {
        async Task<bool> Exactly()
        {
            var on = (await TasksAsync(ecs)).Select(t => t.ContainerInstanceArn).Order().ToList();
            return on.SequenceEqual(expected.Order());
        }

        try
        {
            await Eventually.HoldsAsync(Exactly, TimeSpan.FromSeconds(30), what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; the scheduler said:\n{scheduler.Output}", e);
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.True(await Exactly(), $"{what}: not so a second later");
    }
}
