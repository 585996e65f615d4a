using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// The real agent connected to the real coordinator and otherwise idle: VmRSS and CPU over a window,
/// for each build given (--agent PATH, repeatable; a .dll runs under dotnet), all in the same run.
/// Each is started and joined in turn (with its own join token, so mutual TLS from the start), and the
/// time from its start to "Joined" is reported too.
/// Usage: ... agent-idle --agent /tmp/agent-fd/ecslite-agent --agent /tmp/agent-sc/ecslite-agent [--warmup 70] [--seconds 60]
/// Extra environment for a build: --agent "PATH ENV=VALUE ENV2=VALUE"; a wrapper: --agent "qemu-aarch64-static PATH".
/// </summary>
internal static class AgentIdleBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var warmup = TimeSpan.FromSeconds(Report.Option(args, "--warmup", 70));
        var window = TimeSpan.FromSeconds(Report.Option(args, "--seconds", 60));
        var builds = Report.Options(args, "--agent").DefaultIfEmpty(RepoPaths.AgentDll).ToList();

        await using var coordinator = await CoordinatorProcess.StartAsync();
        var agents = new List<(string Build, TestProcess Process, string DataDir, TimeSpan Joining)>();
        foreach (var build in builds)
        {
            var dataDir = CoordinatorProcess.TempDirectory("ecslite-agent-idle");
            var started = System.Diagnostics.Stopwatch.StartNew();
            var process = Report.StartAgent(build, coordinator.Address, coordinator.JoinToken, dataDir);
            await process.WaitForOutputAsync("Joined ", TimeSpan.FromSeconds(120));
            agents.Add((build, process, dataDir, started.Elapsed));
        }

        Console.WriteLine($"{agents.Count} agents joined; warming up {warmup.TotalSeconds} s, then measuring {window.TotalSeconds} s");
        await Task.Delay(warmup);
        var before = agents.Select(a => Report.CpuTime(a.Process.Id)).ToList();
        var coordinatorBefore = Report.CpuTime(coordinator.ProcessId);
        await Task.Delay(window);
        var results = new List<(string, string, string)>();
        for (var i = 0; i < agents.Count; i++)
        {
            var cpu = 100 * (Report.CpuTime(agents[i].Process.Id) - before[i]).TotalSeconds / window.TotalSeconds;
            results.Add(($"agent {agents[i].Build}", $"VmRSS {Report.RssKiB(agents[i].Process.Id):N0} kB, CPU {cpu:N2}% of one core, start to joined {agents[i].Joining.TotalMilliseconds:N0} ms", "<= 40 MB, < 0.5%"));
        }

        var coordinatorCpu = 100 * (Report.CpuTime(coordinator.ProcessId) - coordinatorBefore).TotalSeconds / window.TotalSeconds;
        results.Add(($"coordinator with {agents.Count} agents (reference)", $"VmRSS {Report.RssKiB(coordinator.ProcessId):N0} kB, CPU {coordinatorCpu:N2}%", ""));
        Report.Print(results);
        foreach (var agent in agents)
        {
            await agent.Process.DisposeAsync();
            Directory.Delete(agent.DataDir, recursive: true);
        }

        return 0;
    }
}
