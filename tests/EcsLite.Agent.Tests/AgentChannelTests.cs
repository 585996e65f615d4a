using System.Globalization;
using System.Runtime.InteropServices;
using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Agent.Tests;

/// <summary>The real agent joining the real coordinator, and what happens when either goes away.</summary>
public class AgentChannelTests
{
    private static async Task<ContainerInstance?> DescribeAsync(CoordinatorProcess coordinator, string arn, string cluster = "default")
    {
        var reply = await coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { Cluster = cluster, ContainerInstances = { arn } });
        return reply.ContainerInstances.SingleOrDefault();
    }

    private static Task<TimeSpan> ConnectedAsync(CoordinatorProcess coordinator, string arn, bool connected, TimeSpan timeout) =>
        Eventually.HoldsAsync(async () => (await DescribeAsync(coordinator, arn))?.AgentConnected == connected, timeout, $"agentConnected={connected}");

    [Fact]
    public async Task The_agent_registers_with_the_hosts_real_resources_and_attributes()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var metricsPort = CoordinatorProcess.FreePort();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken, environment: new Dictionary<string, string>
        {
            ["ECS_RESERVED_MEMORY"] = "256",
            ["ECS_RESERVED_PORTS"] = "[8080]",
            ["ECS_RESERVED_PORTS_UDP"] = "[53]",
            ["ECS_INSTANCE_ATTRIBUTES"] = """{"stack": "test"}""",
            ["ECSLITE_METRICS_LISTEN"] = $"127.0.0.1:{metricsPort}",
        });
        await agent.WaitJoinedAsync();

        var instance = (await DescribeAsync(coordinator, agent.ContainerInstanceArn!))!;
        var memTotalKiB = long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        var online = File.ReadAllText("/sys/devices/system/cpu/online").Trim();
        var cpus = online.Split(',').Sum(r => r.Split('-') is [var a, var b] ? int.Parse(b, CultureInfo.InvariantCulture) - int.Parse(a, CultureInfo.InvariantCulture) + 1 : 1);

        Assert.Equal("ACTIVE", instance.Status);
        Assert.True(instance.AgentConnected);
        Assert.Equal(cpus * 1024, instance.RegisteredResources.Single(r => r.Name == "CPU").IntegerValue);
        Assert.Equal((int)(memTotalKiB / 1024) - 256, instance.RegisteredResources.Single(r => r.Name == "MEMORY").IntegerValue);
        // The metrics endpoint's port is reserved from tasks beside ECS's and the configured ones.
        Assert.Equal(new[] { 22, 2375, 2376, 8080, 51678, 51679, metricsPort }.Order().Select(p => p.ToString(CultureInfo.InvariantCulture)), instance.RegisteredResources.Single(r => r.Name == "PORTS").StringSetValue);
        Assert.Equal(["53"], instance.RegisteredResources.Single(r => r.Name == "PORTS_UDP").StringSetValue);
        var attributes = instance.Attributes.ToDictionary(a => a.Name, a => a.Value);
        Assert.Equal("linux", attributes["ecs.os-type"]);
        Assert.Equal("LINUX", attributes["ecs.os-family"]);
        Assert.Equal(RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "arm64" : "x86_64", attributes["ecs.cpu-architecture"]);
        Assert.Equal(Environment.MachineName, attributes["hostname"]);
        Assert.Equal("test", attributes["stack"]);
        Assert.Equal("0.1.0", instance.VersionInfo.AgentVersion);
        var cluster = await coordinator.Ecs.DescribeClustersAsync(new DescribeClustersRequest());
        Assert.Equal(1, cluster.Clusters[0].RegisteredContainerInstancesCount);
    }

    [Fact]
    public async Task A_restarted_agent_is_the_same_container_instance()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await agent.WaitJoinedAsync();
        var arn = agent.ContainerInstanceArn!;

        var code = await agent.Process.StopAsync();
        Assert.True(code == 0, $"the agent exited with {code} on SIGTERM:\n{agent.Output}");
        await ConnectedAsync(coordinator, arn, connected: false, TimeSpan.FromSeconds(5));
        agent.StartAgain();
        await agent.WaitJoinedAsync();

        Assert.Equal(arn, agent.ContainerInstanceArn);
        Assert.Contains(arn, agent.Output, StringComparison.Ordinal);
        await ConnectedAsync(coordinator, arn, connected: true, TimeSpan.FromSeconds(5));
        Assert.Single((await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns);
    }

    [Fact]
    public async Task An_agent_stopped_before_any_coordinator_welcomed_it_exits_cleanly()
    {
        // No coordinator at that address: the agent is still joining when SIGTERM comes (systemctl stop).
        await using var agent = AgentProcess.Start($"https://127.0.0.1:{CoordinatorProcess.FreePort()}", joinToken: null);
        await agent.Process.WaitForOutputAsync("waiting for a coordinator to welcome this host", TimeSpan.FromSeconds(30));
        var code = await agent.Process.StopAsync();
        Assert.True(code == 0, $"the agent exited with {code} on SIGTERM:\n{agent.Output}");
        Assert.Contains("Stopped before a coordinator welcomed this host", agent.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_killed_agent_is_marked_disconnected_within_7_seconds_and_a_stalled_one_after_missed_heartbeats()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var killed = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await using var stalled = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await Task.WhenAll(killed.WaitJoinedAsync(), stalled.WaitJoinedAsync());

        await killed.Process.KillAsync();
        var afterKill = await ConnectedAsync(coordinator, killed.ContainerInstanceArn!, connected: false, TimeSpan.FromSeconds(7));

        // SIGSTOP keeps the TCP connection open but stops heartbeats: only the missed-heartbeat rule can see it.
        stalled.Process.Signal(19);
        var afterStall = await ConnectedAsync(coordinator, stalled.ContainerInstanceArn!, connected: false, TimeSpan.FromSeconds(9));
        Assert.True(afterStall >= TimeSpan.FromSeconds(4), $"marked disconnected after {afterStall}, before 3 heartbeats (2 s each) could be missed");
        stalled.Process.Signal(18);
        await ConnectedAsync(coordinator, stalled.ContainerInstanceArn!, connected: true, TimeSpan.FromSeconds(10));
        Assert.Contains("missed 3 heartbeats", coordinator.Output, StringComparison.Ordinal);
        Assert.True(afterKill < TimeSpan.FromSeconds(7));
    }

    [Fact]
    public async Task The_agent_rejoins_a_restarted_coordinator_as_the_same_instance()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await agent.WaitJoinedAsync();
        var arn = agent.ContainerInstanceArn!;

        await coordinator.KillAsync();
        await coordinator.StartAgainAsync();
        var rejoin = await ConnectedAsync(coordinator, arn, connected: true, TimeSpan.FromSeconds(35));

        Assert.Single((await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns);
        Assert.Equal(arn, agent.ContainerInstanceArn);
        Assert.True(rejoin < TimeSpan.FromSeconds(30), $"rejoined after {rejoin}");
    }

    [Fact]
    public async Task An_agent_started_before_the_coordinator_joins_once_it_appears()
    {
        // The token comes from a first start (it pins the CA made then); the coordinator is then stopped.
        var port = CoordinatorProcess.FreePort();
        await using var coordinator = await CoordinatorProcess.StartListeningAsync(null, $"127.0.0.1:{port}", $"https://127.0.0.1:{port}", null);
        await coordinator.StopAsync();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await agent.Process.WaitForOutputAsync("Cannot reach", TimeSpan.FromSeconds(10));
        await agent.Process.WaitForOutputAsync("Reconnecting in", TimeSpan.FromSeconds(10));
        Assert.Null(agent.ContainerInstanceArn);

        await coordinator.StartAgainAsync();
        await agent.WaitJoinedAsync(TimeSpan.FromSeconds(35));
        await ConnectedAsync(coordinator, agent.ContainerInstanceArn!, connected: true, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Coordinators_are_tried_in_turn()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var nobody = $"https://127.0.0.1:{CoordinatorProcess.FreePort()}";
        await using var agent = AgentProcess.Start([nobody, coordinator.Address], coordinator.JoinToken, null, null, null);
        await agent.WaitJoinedAsync(TimeSpan.FromSeconds(20));
        Assert.Contains($"Cannot reach {nobody}/", agent.Output, StringComparison.Ordinal);
        Assert.Contains($"Joined {coordinator.Address}/", agent.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Draining_and_deregistration_behave_as_in_ECS()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await agent.WaitJoinedAsync();
        var arn = agent.ContainerInstanceArn!;

        var drained = await coordinator.Ecs.UpdateContainerInstancesStateAsync(new UpdateContainerInstancesStateRequest { ContainerInstances = { arn }, Status = "DRAINING" });
        Assert.Equal("DRAINING", drained.ContainerInstances[0].Status);
        Assert.Equal([arn], (await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest { Status = "DRAINING" })).ContainerInstanceArns);

        // A reconnect keeps the status an operator set.
        await agent.Process.StopAsync();
        agent.StartAgain();
        await agent.WaitJoinedAsync();
        Assert.Equal("DRAINING", (await DescribeAsync(coordinator, arn))!.Status);

        var deregistered = await coordinator.Ecs.DeregisterContainerInstanceAsync(new DeregisterContainerInstanceRequest { ContainerInstance = arn });
        Assert.Equal("INACTIVE", deregistered.ContainerInstance.Status);
        await agent.Process.WaitForOutputAsync("was deregistered", TimeSpan.FromSeconds(10));
        Assert.Empty((await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns);
        Assert.False((await DescribeAsync(coordinator, arn))!.AgentConnected);
        Assert.Equal(0, (await coordinator.Ecs.DescribeClustersAsync(new DescribeClustersRequest())).Clusters[0].RegisteredContainerInstancesCount);
    }
}
