using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// What serving agents on followers buys: two coordinators (a leader and a follower) on one etcd member,
/// N simulated agents heartbeating, idle. First every agent on the leader (as when followers relayed their
/// agents to it), then, on a fresh pair, the agents spread over both. Each coordinator's CPU and VmRSS.
/// Usage: ... agent-spread [--agents 1000] [--seconds 30]
/// </summary>
internal static class AgentSpreadBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = Report.Option(args, "--agents", 1000);
        var window = TimeSpan.FromSeconds(Report.Option(args, "--seconds", 30));
        var results = new List<(string, string, string)>();
        foreach (var spread in new[] { false, true })
        {
            await using var etcd = await EtcdCluster.StartAsync();
            var store = etcd.Location("/spread");
            await using var leader = await CoordinatorProcess.StartAsync(null, "--store", store);
            await using var follower = await CoordinatorProcess.StartStandbyAsync(leader, "--store", store);
            Uri[] over = spread ? [new(leader.Address), new(follower.Address)] : [new(leader.Address)];
            await using var fleet = await Fleet.StartAsync(new Uri(leader.Address), leader.JoinToken, count, spreadOver: over).WaitAsync(TimeSpan.FromMinutes(3));
            await Task.Delay(TimeSpan.FromSeconds(10));

            var cpu = await Task.WhenAll(Report.CpuPercentAsync(leader.ProcessId, window), Report.CpuPercentAsync(follower.ProcessId, window));
            var connected = await ConnectedAsync(leader);
            var label = spread ? $"{count} agents, every other one on the follower" : $"{count} agents, all on the leader";
            results.Add(($"{label}: leader", $"CPU {cpu[0]:N1}% of one core, VmRSS {Report.RssKiB(leader.ProcessId) / 1024.0:N0} MB", ""));
            results.Add(($"{label}: follower", $"CPU {cpu[1]:N1}% of one core, VmRSS {Report.RssKiB(follower.ProcessId) / 1024.0:N0} MB", ""));
            if (connected != count || fleet.Agents.Any(a => !a.Connected))
            {
                Report.Print(results);
                Console.Error.WriteLine($"the leader counts {connected} of {count} agents connected");
                return 1;
            }
        }

        Report.Print(results);
        return 0;
    }

    /// <summary>The instances the leader reads as connected (those of the follower too, on its word).</summary>
    private static async Task<int> ConnectedAsync(CoordinatorProcess leader)
    {
        var connected = 0;
        string? next = null;
        do
        {
            var request = new ListContainerInstancesRequest { Filter = "agentConnected == true", MaxResults = 100 };
            if (next is not null)
            {
                request.NextToken = next;
            }

            var page = await leader.Ecs.ListContainerInstancesAsync(request);
            connected += page.ContainerInstanceArns.Count;
            next = page.HasNextToken ? page.NextToken : null;
        }
        while (next is not null);
        return connected;
    }
}
