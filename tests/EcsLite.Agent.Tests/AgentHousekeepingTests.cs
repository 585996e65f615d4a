using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>
/// Two real agents on one Docker engine (as several simulated hosts share one in tests): each cleans
/// up only its own containers and the images it pulled for its own tasks.
/// </summary>
public sealed class AgentHousekeepingTests : IAsyncLifetime
{
    private readonly string _tag = $"ecslite/cleanup-{Guid.NewGuid():N}";
    private FakeCoordinator _coordinatorA = null!, _coordinatorB = null!;
    private AgentProcess _agentA = null!, _agentB = null!;

    public async Task InitializeAsync()
    {
        await LocalImages.EnsureAsync();
        foreach (var tag in new[] { "gone", "kept" })
        {
            await ProcessRunner.RunAsync("docker", ["tag", LocalImages.Busybox, $"{_tag}:{tag}"]);
        }

        _coordinatorA = await FakeCoordinator.StartAsync("host-a");
        _coordinatorB = await FakeCoordinator.StartAsync("host-b");
        var common = new Dictionary<string, string>
        {
            ["ECSLITE_HOST_PORT_ADDRESS"] = "127.0.0.1",
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s",
        };
        _agentA = AgentProcess.Start(_coordinatorA.Address, _coordinatorA.JoinToken, environment: new Dictionary<string, string>(common)
        {
            ["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "1s",
            ["ECS_IMAGE_CLEANUP_INTERVAL"] = "1s",
            ["ECS_IMAGE_MINIMUM_CLEANUP_AGE"] = "0s",
        });
        _agentB = AgentProcess.Start(_coordinatorB.Address, _coordinatorB.JoinToken, environment: common);
        await Task.WhenAll(_agentA.WaitJoinedAsync(), _agentB.WaitJoinedAsync());
    }

    public async Task DisposeAsync()
    {
        await _agentA.DisposeAsync();
        await _agentB.DisposeAsync();
        using var docker = DockerRuntime.Connect();
        foreach (var coordinator in new[] { _coordinatorA, _coordinatorB })
        {
            foreach (var container in await docker.ListOwnedAsync(coordinator.InstanceArn, default))
            {
                await docker.RemoveAsync(container.ID, default);
            }

            await coordinator.DisposeAsync();
        }

        await ProcessRunner.RunAsync("docker", ["rmi", $"{_tag}:gone", $"{_tag}:kept"]);
    }

    [Fact]
    public async Task Unused_images_the_agent_pulled_are_removed_and_nothing_of_another_agent_is_touched()
    {
        var brief = TaskArn();
        var running = TaskArn();
        var other = TaskArn();
        await _coordinatorA.WantAsync(brief, "RUNNING", Definition("brief", $"{_tag}:gone", "true"));
        await _coordinatorA.WantAsync(running, "RUNNING", Definition("running", $"{_tag}:kept", "sleep 300"));
        await _coordinatorB.WantAsync(other, "RUNNING", Definition("other", LocalImages.Busybox, "sleep 300"));
        await _coordinatorB.WaitForAsync(other, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(30));
        await _coordinatorA.WaitForAsync(running, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(30));
        await _coordinatorA.WaitForAsync(brief, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
        var otherId = _coordinatorB.Reports(other).Last().Containers[0].RuntimeId;
        using var docker = DockerRuntime.Connect();
        var otherStarted = (await docker.InspectAsync(otherId, default)).StartedAt;

        // The stopped task's container goes after the cleanup wait, then its image, which nothing uses now.
        await Eventually.HoldsAsync(async () => !await docker.ExistsAsync($"{_tag}:gone", default), TimeSpan.FromSeconds(30), "the unused image removed");
        Assert.True(await docker.ExistsAsync($"{_tag}:kept", default), "an image a running task uses was removed");
        Assert.True(await docker.ExistsAsync(LocalImages.Busybox, default), "an image this agent never used was removed");
        await Eventually.HoldsAsync(() => _agentA.Output.Contains($"Removed unused image {_tag}:gone", StringComparison.Ordinal),
            TimeSpan.FromSeconds(10), "agent A's log of the removal (not another's)");

        // Agent A restarts and is no longer wanted to run anything: it stops and removes only its own.
        await _agentA.Process.KillAsync();
        _coordinatorA.Forget(running);
        _agentA.StartAgain();
        await _coordinatorA.WaitForAsync(running, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
        await Eventually.HoldsAsync(async () => (await docker.ListOwnedAsync(_coordinatorA.InstanceArn, default)).Count == 0, TimeSpan.FromSeconds(30),
            "agent A's containers removed");
        var otherNow = await docker.InspectAsync(otherId, default);
        Assert.True(otherNow.Running, "agent B's container was stopped by agent A");
        Assert.Equal(otherStarted, otherNow.StartedAt);
        Assert.Single(await docker.ListOwnedAsync(_coordinatorB.InstanceArn, default));
    }

    private static string TaskArn() => $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}";

    private static TaskDefinition Definition(string family, string image, string command)
    {
        var definition = JsonParser.Default.Parse<TaskDefinition>($$"""
            { "family": "{{family}}", "containerDefinitions": [{ "name": "app", "image": "{{image}}", "memory": 16, "command": ["sh", "-c", "{{command}}"] }] }
            """);
        definition.Revision = 1;
        return definition;
    }
}
