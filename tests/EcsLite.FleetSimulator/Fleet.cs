using System.Collections.Concurrent;
using System.Diagnostics;

namespace EcsLite.FleetSimulator;

/// <summary>
/// N simulated agents against one coordinator, each with its own identity (a data directory of its
/// own), resources and hostname. Records, per task, how many times any host started it and when
/// (the first time), which is what "every task RUNNING exactly once" and the latencies are read from.
/// </summary>
public sealed class Fleet : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"ecslite-fleet-{Guid.NewGuid():N}");

    private Fleet(Uri coordinator, string? joinToken, int count, int cpu, int memoryMiB, TimeSpan startDelay, TimeSpan? runFor, IReadOnlyList<Uri>? spreadOver)
    {
        Agents = [.. Enumerable.Range(0, count).Select(i => new SimulatedAgent(
            spreadOver is { Count: > 0 } ? spreadOver[i % spreadOver.Count] : coordinator, joinToken, Path.Combine(_root, $"agent-{i:D5}"), $"sim-{i:D5}", cpu, memoryMiB, startDelay, Started, runFor))];
    }

    public IReadOnlyList<SimulatedAgent> Agents { get; }

    /// <summary>Task ARN to the number of times a host started it.</summary>
    public ConcurrentDictionary<string, int> Starts { get; } = new(StringComparer.Ordinal);

    /// <summary>Task ARN to when it was first reported RUNNING (Stopwatch timestamp).</summary>
    public ConcurrentDictionary<string, long> RunningAt { get; } = new(StringComparer.Ordinal);

    /// <summary>Starts the agents in a ramp (50 per 100 ms, as hosts booting would) and waits until every one is welcomed.</summary>
    /// <param name="runFor">Tasks end on their own (their essential container exits) this long after RUNNING; else they run until stopped.</param>
    /// <param name="spreadOver">Coordinators of one store to connect the agents to in turn (the first agent to the first), instead of <paramref name="coordinator"/>.</param>
    public static async Task<Fleet> StartAsync(Uri coordinator, string? joinToken, int count, int cpu = 4096, int memoryMiB = 8192, TimeSpan startDelay = default, TimeSpan? runFor = null,
        IReadOnlyList<Uri>? spreadOver = null)
    {
        var fleet = new Fleet(coordinator, joinToken, count, cpu, memoryMiB, startDelay, runFor, spreadOver);
        var joining = new List<Task>();
        for (var i = 0; i < count; i++)
        {
            joining.Add(fleet.Agents[i].StartAsync());
            if (i % 50 == 49)
            {
                await Task.Delay(100);
            }
        }

        await Task.WhenAll(joining);
        return fleet;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in Agents)
        {
            await agent.DisposeAsync();
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Started(string taskArn)
    {
        Starts.AddOrUpdate(taskArn, 1, (_, n) => n + 1);
        RunningAt.TryAdd(taskArn, Stopwatch.GetTimestamp());
    }
}
