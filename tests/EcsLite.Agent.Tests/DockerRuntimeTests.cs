using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>The agent's Docker edge against the real Docker engine, with images built locally from busybox-static.</summary>
public sealed class DockerRuntimeTests : IAsyncLifetime
{
    private readonly DockerRuntime _docker = DockerRuntime.Connect();
    private readonly List<string> _containers = [];
    private readonly string _instance = $"arn:aws:ecs:local:000000000000:container-instance/default/test{Guid.NewGuid():N}";

    public Task InitializeAsync() => LocalImages.EnsureAsync();

    public async Task DisposeAsync()
    {
        foreach (var id in _containers)
        {
            await _docker.RemoveAsync(id, default);
        }

        _docker.Dispose();
    }

    private TaskContext Task(TaskDefinition definition, string network = "bridge") => new(
        $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}", definition.Family, 1, "default", _instance, network, [.. definition.Volumes], "127.0.0.1");

    private async Task<string> RunAsync(TaskContext task, ContainerDefinition container)
    {
        await _docker.PullAsync(container.Image, "default", default);
        var id = await _docker.CreateAsync(ContainerSpec.Build(task, container), default);
        _containers.Add(id);
        await _docker.StartAsync(id, default);
        return id;
    }

    [Fact]
    public async Task The_seeds_container_runs_unchanged_and_serves_its_page_on_an_ephemeral_host_port()
    {
        var seed = JsonParser.Default.Parse<TaskDefinition>(File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));
        var container = seed.ContainerDefinitions[0];
        container.PortMappings[0].HostPort = 0; // bridge mode here; awsvpc (hostPort 80) needs the task's own network
        var id = await RunAsync(Task(seed), container);

        var facts = await _docker.InspectAsync(id, default);
        var binding = Assert.Single(facts.Bindings);
        Assert.Equal((80, "tcp", "127.0.0.1"), (binding.ContainerPort, binding.Protocol, binding.BindIp));
        var page = await Eventually.PageAsync($"http://127.0.0.1:{binding.HostPort}/", TimeSpan.FromSeconds(10));
        Assert.Contains("Congratulations!", page, StringComparison.Ordinal);
        Assert.Contains((await _docker.ListOwnedAsync(_instance, default)), c => c.ID == id);

        await _docker.StopAsync(id, TimeSpan.FromSeconds(2), default);
        var stopped = await _docker.InspectAsync(id, default);
        Assert.False(stopped.Running);
        Assert.NotNull(stopped.ExitCode);
    }

    [Fact]
    public async Task A_memory_limit_is_enforced_and_an_out_of_memory_kill_is_reported()
    {
        var definition = new TaskDefinition { Family = "oom" };
        var container = new ContainerDefinition
        {
            Name = "hog",
            Image = LocalImages.Busybox,
            Memory = 16,
            // dd becomes the container's main process, so the kernel's OOM kill ends the container; it starts a
            // moment late because containerd begins watching for OOM only once the container's process runs.
            Command = { "sh", "-c", "sleep 1; exec dd if=/dev/zero of=/dev/null bs=64M count=1" },
        };
        using var watching = new CancellationTokenSource();
        var outOfMemory = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        var since = DateTimeOffset.UtcNow.AddSeconds(-1);
        var id = await RunAsync(Task(definition), container);
        var events = _docker.WatchAsync(_instance, e =>
        {
            if (e.Action == "oom")
            {
                outOfMemory[e.ContainerId] = true;
            }
        }, watching.Token, since);

        ContainerFacts facts = null!;
        await Eventually.HoldsAsync(async () => !(facts = await _docker.InspectAsync(id, default)).Running, TimeSpan.FromSeconds(20), "the container ending");
        Assert.Equal(137, facts.ExitCode);

        // Inspect's flag is set only when containerd's oom event beats its exit event; the oom event itself always comes.
        await Eventually.HoldsAsync(() => outOfMemory.GetValueOrDefault(id), TimeSpan.FromSeconds(10), "Docker's oom event");
        await watching.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => events);
    }

    [Fact]
    public async Task Events_are_replayed_from_the_moment_asked_for_to_the_nanosecond()
    {
        // How the agent's watch reopens without a gap: from the last event it saw, which it then sees again, and nothing older.
        var before = DateTimeOffset.UtcNow;
        var first = await RunAsync(Task(new TaskDefinition { Family = "events" }), new ContainerDefinition { Name = "first", Image = LocalImages.Busybox, Memory = 16, Command = { "true" } });
        await Eventually.HoldsAsync(async () => !(await _docker.InspectAsync(first, default)).Running, TimeSpan.FromSeconds(20), "the first container ending");

        var firstEvents = await EventsAsync(before, e => e.ContainerId == first && e.Action == "die");
        var die = firstEvents.Last();
        Assert.Contains(firstEvents, e => e.ContainerId == first && e.Action == "start");

        var second = await RunAsync(Task(new TaskDefinition { Family = "events" }), new ContainerDefinition { Name = "second", Image = LocalImages.Busybox, Memory = 16, Command = { "true" } });
        var fromDie = await EventsAsync(die.Time, e => e.ContainerId == second && e.Action == "die");
        Assert.Equal(("die", first), (fromDie[0].Action, fromDie[0].ContainerId));
        Assert.DoesNotContain(fromDie, e => e.ContainerId == first && e.Action != "die");
    }

    /// <summary>The events from <paramref name="since"/> on, up to the first that <paramref name="last"/> matches.</summary>
    private async Task<List<ContainerEvent>> EventsAsync(DateTimeOffset since, Func<ContainerEvent, bool> last)
    {
        var seen = new List<ContainerEvent>();
        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await _docker.WatchAsync(_instance, e =>
            {
                seen.Add(e);
                if (last(e))
                {
                    watching.Cancel();
                }
            }, watching.Token, since);
        }
        catch (OperationCanceledException)
        {
        }

        Assert.Contains(seen, e => last(e));
        return seen;
    }

    [Fact]
    public async Task A_command_that_fails_at_once_ends_with_its_exit_code()
    {
        var container = new ContainerDefinition { Name = "fails", Image = LocalImages.Busybox, Memory = 16, Command = { "sh", "-c", "exit 3" } };
        var id = await RunAsync(Task(new TaskDefinition { Family = "fails" }), container);
        ContainerFacts facts = null!;
        await Eventually.HoldsAsync(async () => !(facts = await _docker.InspectAsync(id, default)).Running, TimeSpan.FromSeconds(10), "the container ending");
        Assert.Equal(3, facts.ExitCode);
        Assert.False(facts.OomKilled);
    }

    [Fact]
    public async Task A_pull_that_cannot_succeed_may_be_tried_again_but_an_invalid_reference_never()
    {
        // A registry on loopback where nothing listens: the pull fails without leaving this machine.
        var unreachable = await Assert.ThrowsAsync<DockerApiException>(() => _docker.PullAsync("127.0.0.1:5999/ecslite/missing:1", "default", default));
        Assert.Equal(CallFailure.Transient, DockerErrors.Classify(unreachable));

        // Names ECS's registration rule lets through but the engine refuses: nothing to try again.
        foreach (var image in new[] { "Ecslite/UPPER:1", "busybox::latest", "busybox:1#2" })
        {
            var invalid = await Assert.ThrowsAsync<DockerApiException>(() => _docker.PullAsync(image, "default", default));
            Assert.Equal(CallFailure.Permanent, DockerErrors.Classify(invalid));
            Assert.Contains("invalid reference format", invalid.ResponseBody, StringComparison.Ordinal);
        }

        await _docker.PullAsync(LocalImages.Busybox, "prefer-cached", default);
    }

    [Fact]
    public async Task An_engine_that_is_not_there_is_told_apart_from_one_that_fails()
    {
        using var missing = DockerRuntime.Connect("unix:///run/ecslite-test-no-such-engine.sock");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => missing.InspectAsync("anything", default));
        Assert.Equal(CallFailure.EngineUnavailable, DockerErrors.Classify(error));

        var notFound = await Assert.ThrowsAsync<DockerApiException>(() => _docker.InspectAsync("ecslite-no-such-container", default));
        Assert.Equal(CallFailure.NotFound, DockerErrors.Classify(notFound));
    }
}
