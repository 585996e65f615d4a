using EcsLite.Api.V1;
using EcsLite.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EcsLite.Agent.Tests;

/// <summary>The agent's end of the channel, with a runtime that runs nothing, against the fake coordinator over real gRPC.</summary>
public sealed class CoordinatorConnectionTests
{
    [Fact]
    public async Task A_burst_of_reports_arrives_whole_with_each_tasks_newest_state()
    {
        await using var coordinator = await FakeCoordinator.StartAsync();
        var dataDir = CoordinatorProcess.TempDirectory("ecslite-connection");
        var connection = new CoordinatorConnection([new Uri(coordinator.Address)], new IdleHost(), new InstanceIdentity(dataDir), new AgentCredentials(dataDir, coordinator.JoinToken), TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var running = connection.RunAsync(stop.Token);
        await connection.Registered.WaitAsync(TimeSpan.FromSeconds(15));

        // Far more than the stream's outbox holds, all at once, each task twice: PENDING, then RUNNING.
        var arns = Enumerable.Range(0, 1_000).Select(i => $"arn:aws:ecs:local:000000000000:task/default/{i:D32}").ToList();
        foreach (var status in new[] { "PENDING", "RUNNING" })
        {
            foreach (var arn in arns)
            {
                connection.Report(new TaskStateChange { TaskArn = arn, LastStatus = status, DesiredStatus = "RUNNING" });
            }
        }

        await Eventually.HoldsAsync(() => arns.All(a => coordinator.Reports(a).LastOrDefault()?.LastStatus == "RUNNING"),
            TimeSpan.FromSeconds(20), "every task's RUNNING report");
        Assert.All(arns, a => Assert.InRange(coordinator.Reports(a).Count, 1, 2)); // coalesced or not, never more than sent
        await stop.CancelAsync();
        await running;
        Directory.Delete(dataDir, recursive: true);
    }

    [Fact]
    public async Task A_stream_that_breaks_right_after_its_welcome_is_retried_with_backoff_not_at_once()
    {
        // An agent that could not take its desired set reconnected 162 times in 40 s: each welcome reset its backoff.
        await using var coordinator = await FakeCoordinator.StartAsync();
        coordinator.DropAfterWelcome = true;
        var dataDir = CoordinatorProcess.TempDirectory("ecslite-connection");
        var connection = new CoordinatorConnection([new Uri(coordinator.Address)], new IdleHost(), new InstanceIdentity(dataDir), new AgentCredentials(dataDir, coordinator.JoinToken), TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var running = connection.RunAsync(stop.Token);
        await Task.Delay(TimeSpan.FromSeconds(10));
        await stop.CancelAsync();
        await running;

        // 250 ms doubling with jitter: 4 to 7 tries in 10 s.
        Assert.InRange(coordinator.Hellos, 2, 8);
        Directory.Delete(dataDir, recursive: true);
    }

    private sealed class IdleHost : IAgentRuntime
    {
        public AgentHello Hello(string? containerInstanceArn) => new() { ContainerInstanceArn = containerInstanceArn ?? "", Cluster = "default", Hostname = "idle" };

        public HostUsage Usage() => new();

        public Task ApplyAsync(DesiredTaskSet desired, CancellationToken cancellationToken) => Task.CompletedTask;

        public IAsyncEnumerable<LogChunk> LogsAsync(LogRequest request, CancellationToken cancellationToken) => throw new LogsUnavailableException("ResourceNotFoundException: none");
    }
}
