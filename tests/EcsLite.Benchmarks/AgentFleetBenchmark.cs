using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// Coordinator CPU and VmRSS with N simulated agents (the fleet simulator's: each a real
/// AgentChannel.Connect stream made by the agent's own CoordinatorConnection), heartbeating at the
/// coordinator's interval. Baseline: the same coordinator with no agents, measured first in the same run.
/// Usage: ... agent-fleet [--agents 1000] [--seconds 60]
/// </summary>
internal static class AgentFleetBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = Report.Option(args, "--agents", 1000);
        var window = TimeSpan.FromSeconds(Report.Option(args, "--seconds", 60));
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var results = new List<(string, string, string)>();

        await Task.Delay(TimeSpan.FromSeconds(5));
        var idle = await Report.CpuPercentAsync(coordinator.ProcessId, window);
        results.Add(("coordinator, no agents (baseline)", $"CPU {idle:N2}% of one core, VmRSS {Report.RssKiB(coordinator.ProcessId):N0} kB", ""));

        var started = System.Diagnostics.Stopwatch.StartNew();
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, count).WaitAsync(TimeSpan.FromMinutes(3));
        var joined = started.Elapsed;
        await Task.Delay(TimeSpan.FromSeconds(10));
        var loaded = await Report.CpuPercentAsync(coordinator.ProcessId, window);
        var listed = await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest { Filter = "agentConnected == true", MaxResults = 100 });
        results.Add(($"coordinator, {count} agents heartbeating every 2 s", $"CPU {loaded:N2}% of one core, VmRSS {Report.RssKiB(coordinator.ProcessId):N0} kB", "< 10% of one core"));
        results.Add(("time for all agents to join", $"{joined.TotalSeconds:N1} s (ramp of 50 per 100 ms)", ""));
        Report.Print(results);
        if (listed.ContainerInstanceArns.Count == 0 || fleet.Agents.Any(a => !a.Connected))
        {
            Console.Error.WriteLine("not every simulated agent stayed connected");
            return 1;
        }

        return 0;
    }
}
