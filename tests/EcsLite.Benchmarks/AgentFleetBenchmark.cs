using EcsLite.Agent;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EcsLite.Benchmarks;

/// <summary>
/// Coordinator CPU and VmRSS with N simulated agents, each a real AgentChannel.Connect stream made by
/// the agent's own CoordinatorConnection (the protocol code is shared, not copied), heartbeating at the
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

        var root = CoordinatorProcess.TempDirectory("ecslite-fleet");
        using var stop = new CancellationTokenSource();
        var connections = new List<CoordinatorConnection>();
        var running = new List<Task>();
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var identity = new InstanceIdentity(Path.Combine(root, $"agent-{i}"));
            var connection = new CoordinatorConnection([new Uri(coordinator.Address)], new SimulatedHost($"sim-{i:D4}"), identity, TimeProvider.System, NullLogger.Instance);
            connections.Add(connection);
            running.Add(connection.RunAsync(stop.Token));
            if (i % 50 == 49)
            {
                await Task.Delay(100); // a ramp, as hosts booting would make, rather than one burst
            }
        }

        await Task.WhenAll(connections.Select(c => c.Registered)).WaitAsync(TimeSpan.FromMinutes(3));
        var joined = started.Elapsed;
        await Task.Delay(TimeSpan.FromSeconds(10));
        var loaded = await Report.CpuPercentAsync(coordinator.ProcessId, window);
        var listed = await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest { Filter = "agentConnected == true", MaxResults = 100 });
        results.Add(($"coordinator, {count} agents heartbeating every 2 s", $"CPU {loaded:N2}% of one core, VmRSS {Report.RssKiB(coordinator.ProcessId):N0} kB", "< 10% of one core"));
        results.Add(("time for all agents to join", $"{joined.TotalSeconds:N1} s (ramp of 50 per 100 ms)", ""));
        Report.Print(results);
        if (listed.ContainerInstanceArns.Count == 0 || connections.Any(c => !c.Connected))
        {
            Console.Error.WriteLine("not every simulated agent stayed connected");
            return 1;
        }

        await stop.CancelAsync();
        await Task.WhenAll(running);
        Directory.Delete(root, recursive: true);
        return 0;
    }

    /// <summary>A host with fixed resources that runs nothing.</summary>
    private sealed class SimulatedHost(string hostname) : IAgentRuntime
    {
        public AgentHello Hello(string? containerInstanceArn)
        {
            var hello = new AgentHello { ContainerInstanceArn = containerInstanceArn ?? "", Cluster = "default", Hostname = hostname, VersionInfo = new VersionInfo { AgentVersion = "simulated" } };
            hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 4096 });
            hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = 8192 });
            hello.Attributes.Add(new Api.V1.Attribute { Name = "ecs.os-type", Value = "linux" });
            return hello;
        }

        public HostUsage Usage() => new() { CpuPercent = 1, MemoryUsedMiB = 512, MemoryAvailableMiB = 7680 };

        public Task ApplyAsync(DesiredTaskSet desired, CancellationToken cancellationToken) => Task.CompletedTask;

        public IAsyncEnumerable<LogChunk> LogsAsync(LogRequest request, CancellationToken cancellationToken) =>
            throw new LogsUnavailableException("ResourceNotFoundException: a simulated host runs no tasks");
    }
}
