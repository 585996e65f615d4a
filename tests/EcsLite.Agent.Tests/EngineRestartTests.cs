using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>
/// The Docker engine stopped and started again under a running agent (an upgrade of docker.io, a
/// `systemctl restart docker`): the agent keeps its channel, finds out what died with the engine, and
/// handles it as ECS does. The engine is a private one, so restarting it disturbs no other test.
/// </summary>
public sealed class EngineRestartTests : IAsyncLifetime
{
    private const int Tasks = 10;
    private PrivateEngine _engine = null!;
    private FakeCoordinator _coordinator = null!;
    private AgentProcess _agent = null!;

    public async Task InitializeAsync()
    {
        await LocalImages.EnsureAsync();
        _engine = await PrivateEngine.StartAsync();
        _coordinator = await FakeCoordinator.StartAsync("engine-restart");
        _agent = AgentProcess.Start(_coordinator.Address, _coordinator.JoinToken, environment: new Dictionary<string, string>
        {
            ["DOCKER_HOST"] = _engine.Endpoint,
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s",
            ["ECS_LOGLEVEL"] = "debug",
        });
        await _agent.WaitJoinedAsync();
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _coordinator.DisposeAsync();
        await _engine.DisposeAsync();
    }

    [Fact]
    public async Task Ten_tasks_survive_an_engine_restart_as_ECS_would_handle_it_and_stop_when_told()
    {
        try
        {
            await RestartUnderTasksAsync();
        }
        catch (Exception e) when (e is TimeoutException or Xunit.Sdk.XunitException)
        {
            // What the agent saw is what explains a failure here.
            var lines = _agent.Output.Split('\n');
            throw new InvalidOperationException($"{e.Message}\nthe agent's last lines:\n{string.Join('\n', lines.TakeLast(80))}", e);
        }
    }

    private async Task RestartUnderTasksAsync()
    {
        // Half keep running through restarts (restartPolicy), half do not; some of each are awsvpc,
        // whose pause container dies with the engine too. The shell exits 143 on the engine's SIGTERM.
        var tasks = Enumerable.Range(0, Tasks).Select(i => (Arn: $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}", Definition: Definition(i))).ToList();
        foreach (var (arn, definition) in tasks)
        {
            await _coordinator.WantAsync(arn, "RUNNING", definition);
        }

        foreach (var (arn, _) in tasks)
        {
            await _coordinator.WaitForAsync(arn, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(60));
        }

        // ECS restarts a container only if it ran for restartAttemptPeriod (60 s at least) before it exited.
        await Task.Delay(TimeSpan.FromSeconds(62));
        var hellos = _coordinator.Hellos;
        await _engine.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(3)); // the agent finds the engine gone, and goes on
        await _engine.StartAgainAsync();
        var back = DateTimeOffset.UtcNow;

        for (var i = 0; i < Tasks; i++)
        {
            var (arn, _) = tasks[i];
            if (Restarts(i))
            {
                // Restarted in place: the same container, running again since the engine came back.
                await Eventually.HoldsAsync(async () => await StartedAfterAsync(arn, back), TimeSpan.FromSeconds(60),
                    $"task {i} restarted after the engine came back (reports: {string.Join(" | ", _coordinator.Reports(arn).Select(r => $"{r.LastStatus} {r.StoppedReason} {r.Containers[0].LastStatus} {(r.Containers[0].HasExitCode ? r.Containers[0].ExitCode : "-")} {r.Containers[0].Reason}"))})");
                Assert.Equal("RUNNING", _coordinator.Reports(arn)[^1].LastStatus);
            }
            else
            {
                var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(60));
                Assert.Equal("EssentialContainerExited", stopped.StopCode);
                Assert.Equal(143, stopped.Containers.Single().ExitCode);
            }
        }

        // Nothing lost or doubled: one container per container of each task (and one pause container for awsvpc).
        for (var i = 0; i < Tasks; i++)
        {
            var names = await LabelsAsync(tasks[i].Arn, "com.amazonaws.ecs.container-name");
            Assert.Equal(Awsvpc(i) ? ["~internal~ecs~pause", "app"] : ["app"], names.Order(StringComparer.Ordinal).Reverse());
        }

        Assert.Equal(hellos, _coordinator.Hellos); // the agent never lost its channel

        // And every task still obeys a stop.
        foreach (var (arn, definition) in tasks)
        {
            await _coordinator.WantAsync(arn, "STOPPED", definition);
        }

        foreach (var (arn, _) in tasks)
        {
            await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED" && r.DesiredStatus == "STOPPED", TimeSpan.FromSeconds(60));
        }

        var (_, running) = await _engine.DockerAsync("ps", "-q", "--filter", $"label=ecslite.container-instance-arn={_coordinator.InstanceArn}");
        Assert.Equal("", running.Trim());
    }

    private static bool Restarts(int i) => i < Tasks / 2;

    private static bool Awsvpc(int i) => i % 5 < 2;

    private static TaskDefinition Definition(int i)
    {
        var policy = Restarts(i) ? """, "restartPolicy": { "enabled": true, "restartAttemptPeriod": 60 }""" : "";
        var definition = JsonParser.Default.Parse<TaskDefinition>($$"""
            {
              "family": "engine-restart-{{i}}", "networkMode": "{{(Awsvpc(i) ? "awsvpc" : "bridge")}}",
              "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32{{policy}},
                "command": ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 1 & wait; done"] }]
            }
            """);
        definition.Revision = 1;
        return definition;
    }

    private async Task<bool> StartedAfterAsync(string taskArn, DateTimeOffset moment)
    {
        var (_, output) = await _engine.DockerAsync("ps", "-aq", "--filter", $"label=com.amazonaws.ecs.task-arn={taskArn}",
            "--filter", "label=com.amazonaws.ecs.container-name=app");
        var id = output.Trim();
        if (id.Length == 0 || id.Contains('\n', StringComparison.Ordinal))
        {
            return false;
        }

        var (_, state) = await _engine.DockerAsync("inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", id);
        var parts = state.Trim().Split(' ');
        return parts[0] == "true" && DateTimeOffset.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) > moment;
    }

    private async Task<IReadOnlyList<string>> LabelsAsync(string taskArn, string label)
    {
        var (_, output) = await _engine.DockerAsync("ps", "-a", "--filter", $"label=com.amazonaws.ecs.task-arn={taskArn}", "--format", $"{{{{.Label \"{label}\"}}}}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
