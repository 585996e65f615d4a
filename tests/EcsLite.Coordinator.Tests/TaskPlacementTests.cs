using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Placement across three real hosts: the coordinator and three agents, each in a network namespace
/// of its own (sharing this machine's Docker engine), each offering 1,024 MiB; tasks take 256 MiB.
/// </summary>
public sealed class TaskPlacementTests : IAsyncLifetime
{
    private const int MiBPerHost = 1024;
    private readonly NetworkNamespaces _network = new();
    private CoordinatorProcess _coordinator = null!;
    private readonly List<AgentProcess> _agents = [];

    public async Task InitializeAsync()
    {
        await LocalImages.EnsureAsync();
        const int port = 7430;
        // The hosts' links first: the coordinator's certificate names the addresses it has when it starts.
        var hosts = new[] { ("a", "gold"), ("b", "silver"), ("c", "silver") }.Select(h => (h.Item2, _network.AddHost(h.Item1))).ToList();
        _coordinator = await CoordinatorProcess.StartListeningAsync(null, $"0.0.0.0:{port}", $"https://{_network.HubAddressFromRoot}:{port}", NetworkNamespaces.Exec(_network.Hub));
        var totalMiB = long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024;
        foreach (var (tier, (host, hub)) in hosts)
        {
            _agents.Add(AgentProcess.Start($"https://{hub}:{port}", _coordinator.JoinToken, environment: new Dictionary<string, string>
            {
                ["ECS_RESERVED_MEMORY"] = (totalMiB - MiBPerHost).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["ECS_INSTANCE_ATTRIBUTES"] = $$"""{"tier": "{{tier}}"}""",
                ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
                ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
                ["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "1s",
            }, wrapper: NetworkNamespaces.Exec(host)));
        }

        await Task.WhenAll(_agents.Select(a => a.WaitJoinedAsync()));
        await _coordinator.Ecs.RegisterTaskDefinitionAsync(Google.Protobuf.JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
            { "family": "worker", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 256,
              "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"] }] }
            """));
    }

    public async Task DisposeAsync()
    {
        var instances = _agents.Select(a => a.ContainerInstanceArn).OfType<string>().ToList();
        foreach (var agent in _agents)
        {
            await agent.DisposeAsync();
        }

        await _coordinator.DisposeAsync();
        await ProcessRunner.RemoveContainersAsync(instances);

        _network.Dispose();
    }

    private string Host(string instanceArn) => ((char)('a' + _agents.FindIndex(a => a.ContainerInstanceArn == instanceArn))).ToString();

    private async Task<RunTaskResponse> RunAsync(int count, PlacementStrategy? strategy = null, PlacementConstraint? constraint = null)
    {
        var request = new RunTaskRequest { TaskDefinition = "worker", Count = count };
        if (strategy is not null)
        {
            request.PlacementStrategy.Add(strategy);
        }

        if (constraint is not null)
        {
            request.PlacementConstraints.Add(constraint);
        }

        return await _coordinator.Ecs.RunTaskAsync(request);
    }

    /// <summary>Stops every task and waits until all are STOPPED, so the next scenario has the whole cluster.</summary>
    private async Task StopAllAsync()
    {
        var running = (await _coordinator.Ecs.ListTasksAsync(new ListTasksRequest())).TaskArns;
        foreach (var arn in running)
        {
            await _coordinator.Ecs.StopTaskAsync(new StopTaskRequest { Task = arn });
        }

        await Eventually.HoldsAsync(async () => running.Count == 0 ||
            (await _coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { running } })).Tasks.All(t => t.LastStatus == "STOPPED"),
            TimeSpan.FromSeconds(60), "every task STOPPED");
    }

    [Fact]
    public async Task Strategies_and_constraints_place_as_ECS_does_and_concurrent_calls_never_overcommit()
    {
        // binpack fills one instance first.
        var binpack = await RunAsync(3, new PlacementStrategy { Type = "binpack", Field = "memory" });
        Assert.Empty(binpack.Failures);
        Assert.Single(binpack.Tasks.Select(t => t.ContainerInstanceArn).Distinct());
        await StopAllAsync();

        // spread over instances alternates.
        var spread = await RunAsync(3, new PlacementStrategy { Type = "spread", Field = "instanceId" });
        Assert.Equal(3, spread.Tasks.Select(t => t.ContainerInstanceArn).Distinct().Count());
        await StopAllAsync();

        // distinctInstance never doubles up: the fourth task has nowhere to go.
        var distinct = await RunAsync(4, constraint: new PlacementConstraint { Type = "distinctInstance" });
        Assert.Equal(3, distinct.Tasks.Select(t => t.ContainerInstanceArn).Distinct().Count());
        Assert.Equal("DistinctInstance", Assert.Single(distinct.Failures).Reason);
        await StopAllAsync();

        // memberOf with an attribute expression picks only the matching instance.
        var gold = await RunAsync(2, constraint: new PlacementConstraint { Type = "memberOf", Expression = "attribute:tier == gold" });
        Assert.All(gold.Tasks, t => Assert.Equal("a", Host(t.ContainerInstanceArn)));
        var silver = await RunAsync(2, constraint: new PlacementConstraint { Type = "memberOf", Expression = "attribute:tier != gold and runningTasksCount == 0" });
        Assert.All(silver.Tasks, t => Assert.NotEqual("a", Host(t.ContainerInstanceArn)));
        await StopAllAsync();

        // 20 concurrent RunTask calls against room for 12: exactly 12 placed, none over any instance's memory.
        var calls = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => RunAsync(1, new PlacementStrategy { Type = "random" })));
        var placed = calls.SelectMany(c => c.Tasks).ToList();
        Assert.Equal(12, placed.Count);
        Assert.Equal(8, calls.Sum(c => c.Failures.Count));
        Assert.All(calls.SelectMany(c => c.Failures), f => Assert.Equal("RESOURCE:MEMORY", f.Reason));
        var described = await _coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { placed.Select(t => t.TaskArn) } });
        foreach (var perInstance in described.Tasks.GroupBy(t => t.ContainerInstanceArn))
        {
            Assert.True(perInstance.Sum(t => int.Parse(t.Memory, System.Globalization.CultureInfo.InvariantCulture)) <= MiBPerHost, $"{perInstance.Key} overcommitted");
        }

        // And they really run: every one reaches RUNNING on the host it was placed on.
        await Eventually.HoldsAsync(async () =>
            (await _coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { placed.Select(t => t.TaskArn) } })).Tasks.All(t => t.LastStatus == "RUNNING"),
            TimeSpan.FromSeconds(90), "all 12 tasks RUNNING");
        await StopAllAsync();
    }
}
