using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Services on real hosts: the coordinator and three agents, each in a network namespace of its own
/// (sharing this machine's Docker engine). Heartbeats every second and a lost-instance grace of 2 s
/// keep the scenarios short.
/// </summary>
public sealed class ServiceSchedulerTests : IAsyncLifetime
{
    private const int Port = 7430;
    private readonly NetworkNamespaces _network = new();
    private readonly List<(AgentProcess Agent, string Namespace)> _agents = [];
    private readonly Dictionary<string, (string Namespace, string HubAddress)> _hosts = [];
    private CoordinatorProcess _coordinator = null!;

    public async Task InitializeAsync()
    {
        await LocalImages.EnsureAsync();
        // The hosts' links first (d joins later): the coordinator's certificate names the addresses it has when it starts.
        foreach (var name in new[] { "a", "b", "c", "d" })
        {
            _hosts[name] = _network.AddHost(name);
        }

        _coordinator = await CoordinatorProcess.StartListeningAsync(null, $"0.0.0.0:{Port}", $"https://{_network.HubAddressFromRoot}:{Port}", NetworkNamespaces.Exec(_network.Hub),
            "--HeartbeatInterval=00:00:01", "--LostInstanceGrace=00:00:02");
        foreach (var name in new[] { "a", "b", "c" })
        {
            AddAgent(name);
        }

        await Task.WhenAll(_agents.Select(a => a.Agent.WaitJoinedAsync()));
        await RegisterAsync("trap 'exit 0' TERM; sleep 600 & wait");
    }

    public async Task DisposeAsync()
    {
        var instances = _agents.Select(a => a.Agent.ContainerInstanceArn).OfType<string>().ToList();
        foreach (var (agent, _) in _agents)
        {
            await agent.DisposeAsync();
        }

        await _coordinator.DisposeAsync();
        await ProcessRunner.RemoveContainersAsync(instances);

        _network.Dispose();
    }

    private AgentProcess AddAgent(string name)
    {
        var (host, hub) = _hosts[name];
        var agent = AgentProcess.Start($"https://{hub}:{Port}", _coordinator.JoinToken, environment: new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
            ["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "1s",
        }, wrapper: NetworkNamespaces.Exec(host));
        _agents.Add((agent, host));
        return agent;
    }

    private Ecs.EcsClient Ecs => _coordinator.Ecs;

    /// <summary>Registers the next revision of "web": one container running <paramref name="script"/> under sh.</summary>
    private async Task RegisterAsync(string script) =>
        await Ecs.RegisterTaskDefinitionAsync(JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
            { "family": "web", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 64,
              "entryPoint": ["sh", "-c"], "command": [{{System.Text.Json.JsonSerializer.Serialize(script)}}] }] }
            """));

    private async Task<Service> ServiceAsync(string name = "web") =>
        (await Ecs.DescribeServicesAsync(new DescribeServicesRequest { Services = { name } })).Services.Single();

    /// <summary>The service's tasks that are not STOPPED yet, as DescribeTasks shows them.</summary>
    private async Task<List<EcsLite.Api.V1.Task>> AliveAsync(string name = "web")
    {
        var arns = new List<string>();
        foreach (var desired in new[] { "RUNNING", "STOPPED" })
        {
            arns.AddRange((await Ecs.ListTasksAsync(new ListTasksRequest { ServiceName = name, DesiredStatus = desired, MaxResults = 100 })).TaskArns);
        }

        // A task stopped between the two lists is in both: describe it once.
        return [.. (await Ecs.DescribeAllTasksAsync(arns.Distinct())).Where(t => t.LastStatus != "STOPPED")];
    }

    private async Task SteadyAsync(int count, string revision, TimeSpan timeout, string name = "web") =>
        await Eventually.HoldsAsync(async () =>
        {
            var service = await ServiceAsync(name);
            var alive = await AliveAsync(name);
            return service.Deployments.Count == 1 && service.Deployments[0].RolloutState == "COMPLETED"
                && ServicesStable(await Ecs.DescribeServicesAsync(new DescribeServicesRequest { Services = { name } }))
                && alive.Count == count && alive.All(t => t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING" && t.TaskDefinitionArn.EndsWith(revision, StringComparison.Ordinal));
        }, timeout, $"{name}: {count} tasks of {revision} RUNNING and the deployment COMPLETED");

    /// <summary>
    /// The AWS CLI's `aws ecs wait services-stable` (botocore's waiter): success when no service has
    /// other than exactly one deployment and runningCount equal to desiredCount, and none is missing,
    /// DRAINING or INACTIVE.
    /// </summary>
    private static bool ServicesStable(DescribeServicesResponse described) =>
        described.Failures.All(f => f.Reason != "MISSING")
        && described.Services.All(s => s.Status is not ("DRAINING" or "INACTIVE"))
        && !described.Services.Any(s => !(s.Deployments.Count == 1 && s.RunningCount == s.DesiredCount));

    [Fact]
    public async Task A_lost_host_has_its_tasks_replaced_and_its_stale_copy_stopped_when_it_returns()
    {
        await Ecs.CreateServiceAsync(new CreateServiceRequest { ServiceName = "web", TaskDefinition = "web", DesiredCount = 3 });
        await SteadyAsync(3, "web:1", TimeSpan.FromSeconds(60));
        Assert.Equal(3, (await AliveAsync()).Select(t => t.ContainerInstanceArn).Distinct().Count()); // spread

        // Partition host b and kill its agent: its container keeps running, out of reach.
        var (agent, host) = _agents[1];
        var lostArn = agent.ContainerInstanceArn!;
        var stale = (await AliveAsync()).Single(t => t.ContainerInstanceArn == lostArn);
        _network.SetLink(host, up: false);
        await agent.Process.KillAsync();
        await Eventually.HoldsAsync(async () => !(await Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { lostArn } })).ContainerInstances[0].AgentConnected,
            TimeSpan.FromSeconds(15), "the instance marked disconnected");
        var marked = Stopwatch.StartNew();
        await Eventually.HoldsAsync(async () => (await AliveAsync()).Count(t => t.ContainerInstanceArn != lostArn && t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING") == 3,
            TimeSpan.FromSeconds(10), "a replacement RUNNING elsewhere within 10 s");
        var replacedIn = marked.Elapsed;
        // The service's counts follow the tasks' reports on the scheduler's next pass.
        await Eventually.HoldsAsync(async () => (await ServiceAsync()).RunningCount == 3, TimeSpan.FromSeconds(10), "runningCount back at 3");
        var service = await ServiceAsync();
        Assert.Contains(service.Events, e => e.Message.Contains($"has stopped 1 running tasks: (task {stale.TaskArn.Split('/')[^1]})", StringComparison.Ordinal));

        // Back: link up, agent restarted. The stale copy is stopped and exactly 3 remain.
        _network.SetLink(host, up: true);
        agent.StartAgain();
        await agent.WaitJoinedAsync();
        await Eventually.HoldsAsync(async () =>
            (await Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { stale.TaskArn } })).Tasks[0].LastStatus == "STOPPED",
            TimeSpan.FromSeconds(30), "the stale copy STOPPED");
        var alive = await AliveAsync();
        Assert.Equal(3, alive.Count);
        Assert.DoesNotContain(alive, t => t.TaskArn == stale.TaskArn);
        var (_, running) = await ProcessRunner.RunAsync("docker", ["ps", "-q", "--filter", $"label=com.amazonaws.ecs.task-arn={stale.TaskArn}"]);
        Assert.Equal("", running.Trim());
        Assert.True(replacedIn < TimeSpan.FromSeconds(10), $"replaced in {replacedIn}");
    }

    [Fact]
    public async Task A_rolling_deployment_stays_within_its_bounds_and_a_failing_revision_is_rolled_back()
    {
        await Ecs.CreateServiceAsync(JsonParser.Default.Parse<CreateServiceRequest>("""
            { "serviceName": "web", "taskDefinition": "web:1", "desiredCount": 3,
              "deploymentConfiguration": { "minimumHealthyPercent": 50, "maximumPercent": 200, "deploymentCircuitBreaker": { "enable": true, "rollback": true } } }
            """));
        await SteadyAsync(3, "web:1", TimeSpan.FromSeconds(60));

        // Revision 2: sample the tasks all through the deployment.
        await RegisterAsync("trap 'exit 0' TERM; sleep 601 & wait");
        await Ecs.UpdateServiceAsync(new UpdateServiceRequest { Service = "web", TaskDefinition = "web:2" });
        var samples = new List<(int Alive, int Serving)>();
        await Eventually.HoldsAsync(async () =>
        {
            var alive = await AliveAsync();
            samples.Add((alive.Count, alive.Count(t => t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING")));
            var service = await ServiceAsync();
            return service.Deployments[0].RolloutState == "COMPLETED" && service.Deployments.Count == 1
                && alive.Count == 3 && alive.All(t => t.TaskDefinitionArn.EndsWith("web:2", StringComparison.Ordinal));
        }, TimeSpan.FromSeconds(90), "the deployment of web:2 COMPLETED, and the only one shown");
        Assert.True(ServicesStable(await Ecs.DescribeServicesAsync(new DescribeServicesRequest { Services = { "web" } })), "aws ecs wait services-stable would not succeed");
        Assert.True(samples.Count > 3, $"only {samples.Count} samples");
        Assert.All(samples, s => Assert.InRange(s.Alive, 0, 6));    // 200% of 3: tasks not yet STOPPED
        Assert.All(samples, s => Assert.InRange(s.Serving, 2, 6));  // 50% of 3, rounded up
        Assert.Contains(samples, s => s.Alive > 3);                  // it surged: new tasks before the old were gone

        // Revision 3 exits at once: the breaker trips after 3 failures and rolls back to web:2.
        await RegisterAsync("exit 1");
        var bad = (await Ecs.UpdateServiceAsync(new UpdateServiceRequest { Service = "web", TaskDefinition = "web:3" })).Service.Deployments[0].Id;
        await Eventually.HoldsAsync(async () => (await ServiceAsync()).Deployments.Any(d => d.Id == bad && d.RolloutState == "FAILED"),
            TimeSpan.FromSeconds(60), "the web:3 deployment FAILED");
        var service = await ServiceAsync();
        Assert.EndsWith("web:2", service.Deployments[0].TaskDefinition, StringComparison.Ordinal);
        Assert.True(service.Deployments.Single(d => d.Id == bad).FailedTasks >= 3);
        Assert.Contains(service.Events, e => e.Message == $"(service web) (deployment {bad}) deployment failed: tasks failed to start.");
        Assert.Contains(service.Events, e => e.Message.StartsWith($"(service web) (deployment {bad}) rolling back to", StringComparison.Ordinal));
        await SteadyAsync(3, "web:2", TimeSpan.FromSeconds(60));

        // The same story in the event stream, from the store's first revision, as ECS's EventBridge events.
        var actions = (await EventStreamTests.ReadUntilQuietAsync(new Events.EventsClient(_coordinator.Channel), new WatchEventsRequest
        {
            FromRevision = 1, DetailTypes = { "ECS Service Action", "ECS Deployment State Change" },
        })).SelectMany(r => r.Events).ToList();
        Assert.All(actions, e => Assert.Equal(service.ServiceArn, Assert.Single(e.Resources)));
        string Name(EcsEvent e) => e.Detail.Fields["eventName"].StringValue;
        Assert.Equal(["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_FAILED"],
            actions.Where(e => e.Detail.Fields.TryGetValue("deploymentId", out var id) && id.StringValue == bad).Select(Name));
        Assert.True(actions.Count(e => Name(e) == "SERVICE_DEPLOYMENT_COMPLETED") >= 2, string.Join(", ", actions.Select(Name)));
        Assert.Contains(actions, e => Name(e) == "SERVICE_STEADY_STATE" && e.DetailType == "ECS Service Action");
        Assert.Contains(actions, e => Name(e) == "TASKS_STOPPED");
    }

    [Fact]
    public async Task A_daemon_follows_an_instance_joining_and_one_draining()
    {
        await Ecs.CreateServiceAsync(new CreateServiceRequest { ServiceName = "node", TaskDefinition = "web", SchedulingStrategy = "DAEMON" });
        await SteadyAsync(3, "web:1", TimeSpan.FromSeconds(60), "node");

        var joined = AddAgent("d");
        await joined.WaitJoinedAsync();
        await SteadyAsync(4, "web:1", TimeSpan.FromSeconds(60), "node");
        Assert.Contains(await AliveAsync("node"), t => t.ContainerInstanceArn == joined.ContainerInstanceArn);

        var drained = _agents[0].Agent.ContainerInstanceArn!;
        await Ecs.UpdateContainerInstancesStateAsync(new UpdateContainerInstancesStateRequest { ContainerInstances = { drained }, Status = "DRAINING" });
        await SteadyAsync(3, "web:1", TimeSpan.FromSeconds(60), "node");
        Assert.DoesNotContain(await AliveAsync("node"), t => t.ContainerInstanceArn == drained);
        Assert.Equal(3, (await ServiceAsync("node")).DesiredCount);

        // Deleting the service stops its tasks.
        await Ecs.DeleteServiceAsync(new DeleteServiceRequest { Service = "node" });
        await Eventually.HoldsAsync(async () => (await ServiceAsync("node")).Status == "INACTIVE" && (await AliveAsync("node")).Count == 0,
            TimeSpan.FromSeconds(60), "the service INACTIVE with no task left");
    }
}
