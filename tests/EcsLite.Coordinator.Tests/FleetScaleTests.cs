using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The scale run at CI size: the real coordinator, 100 simulated agents (the agent's own channel code)
/// with room for 64 tasks each, 5,000 tasks through RunTask, a restart, and services through a loss of
/// 10 hosts. Correctness, not speed: every task RUNNING exactly once, no host over its memory, every
/// service back at its count.
/// </summary>
public sealed class FleetScaleTests
{
    [Fact]
    public async Task Five_thousand_tasks_on_a_hundred_hosts_run_exactly_once_without_overcommit_through_a_restart_and_a_loss()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync(null, "--LostInstanceGrace=00:00:02");
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, 100, cpu: 4096, memoryMiB: 1024);
        var run = new ScaleRun(coordinator, fleet);
        await run.RegisterAsync(memoryMiB: 16);

        await run.RunTasksAsync(5_000, perCall: 10, callers: 16);
        Assert.Equal(5_000, run.RepliedAt.Count);
        Assert.Equal(5_000, fleet.Starts.Count);
        Assert.All(fleet.Starts.Values, n => Assert.Equal(1, n));               // exactly once
        Assert.All(fleet.Agents, a => Assert.InRange(a.Running() * 16, 0, 1024)); // no host over its memory

        await run.RestartAsync();
        Assert.All(fleet.Starts.Values, n => Assert.Equal(1, n));               // nothing started again
        Assert.Equal(5_000, fleet.Agents.Sum(a => a.Running()));

        // 5 services of 200 on the 1,800 slots left; 10 hosts die; every service is whole again elsewhere.
        await run.FailoverAsync(1_000, services: 5, kill: 10, grace: TimeSpan.FromSeconds(2));
        Assert.Equal(1_000, fleet.Agents.Where(a => a.Alive).Sum(a => a.Running(ScaleRun.ServiceFamily)));
        Assert.All(fleet.Agents, a => Assert.InRange(a.Running() * 16, 0, 1024));
        await Eventually.HoldsAsync(async () => (await coordinator.Ecs.DescribeServicesAsync(new DescribeServicesRequest { Services = { Enumerable.Range(0, 5).Select(i => $"svc-{i}") } }))
            .Services.All(s => s.RunningCount == 200 && s.PendingCount == 0), TimeSpan.FromSeconds(10), "every service showing 200 running");
    }
}
