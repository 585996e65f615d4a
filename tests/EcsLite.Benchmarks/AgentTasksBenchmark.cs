using System.Collections.Concurrent;
using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// The real agent running tasks on the real Docker engine, driven over its real channel by the stand-in
/// coordinator. (1) From sending a task to the agent until it reports the container RUNNING, against
/// starting the same container without the agent, in the same run, interleaved: through Docker's API
/// (create + start, what the agent itself must do) and with the `docker run -d` command. (2) The agent's
/// VmRSS and CPU with 20 tasks running.
/// Usage: ... agent-tasks [--agent PATH or "PATH ENV=VALUE ..."] [--rounds 40] [--tasks 20] [--settle 30]
/// </summary>
internal static class AgentTasksBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = Report.Option(args, "--rounds", 40);
        var taskCount = Report.Option(args, "--tasks", 20);
        var settle = TimeSpan.FromSeconds(Report.Option(args, "--settle", 30));
        var build = Report.Options(args, "--agent").FirstOrDefault() ?? RepoPaths.AgentDll;
        await LocalImages.EnsureAsync();

        await using var coordinator = await FakeCoordinator.StartAsync($"benchmark-{Guid.NewGuid():N}");
        var running = new ConcurrentDictionary<string, TaskCompletionSource<long>>(StringComparer.Ordinal);
        var stopped = new ConcurrentDictionary<string, TaskCompletionSource>(StringComparer.Ordinal);
        coordinator.Reported += change =>
        {
            if (change.LastStatus == "RUNNING" && running.TryGetValue(change.TaskArn, out var started))
            {
                started.TrySetResult(Stopwatch.GetTimestamp());
            }
            else if (change.LastStatus == "STOPPED" && stopped.TryGetValue(change.TaskArn, out var ended))
            {
                ended.TrySetResult();
            }
        };

        var dataDir = CoordinatorProcess.TempDirectory("ecslite-agent-tasks");
        await using var agent = Report.StartAgent(build, coordinator.Address, coordinator.JoinToken, dataDir, new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECSLITE_HOST_PORT_ADDRESS"] = "127.0.0.1",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
            ["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "1s",
        });
        await agent.WaitForOutputAsync("Joined ", TimeSpan.FromSeconds(30));

        using var baselines = new DockerBaselines();
        var definition = new TaskDefinition { Family = "bench", Revision = 1 };
        definition.ContainerDefinitions.Add(new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16, Command = { "sleep", "600" } });

        async Task<double> AgentOnceAsync()
        {
            var arn = $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}";
            var done = running[arn] = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            var ended = stopped[arn] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var start = Stopwatch.GetTimestamp();
            await coordinator.WantAsync(arn, "RUNNING", definition);
            var end = await done.Task.WaitAsync(TimeSpan.FromSeconds(60));

            // Stopped (and so quiet) before the next measurement, like the baselines' containers.
            await coordinator.WantAsync(arn, "STOPPED", definition);
            await ended.Task.WaitAsync(TimeSpan.FromSeconds(60));
            return Stopwatch.GetElapsedTime(start, end).TotalMilliseconds;
        }

        // Warm every path once, then interleave so the machine's noise falls on all three alike.
        await AgentOnceAsync();
        await baselines.ApiOnceAsync();
        await DockerBaselines.CliOnceAsync();
        var agentTimes = new List<double>();
        var apiTimes = new List<double>();
        var cliTimes = new List<double>();
        for (var i = 0; i < rounds; i++)
        {
            agentTimes.Add(await AgentOnceAsync());
            apiTimes.Add(await baselines.ApiOnceAsync());
            cliTimes.Add(await DockerBaselines.CliOnceAsync());
        }

        // The stopped benchmark tasks cleaned up before measuring memory with many running.
        await DockerBaselines.NoContainersLeftAsync(coordinator.InstanceArn);
        var arns = Enumerable.Range(0, taskCount).Select(_ => $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}").ToList();
        foreach (var arn in arns)
        {
            running[arn] = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            await coordinator.WantAsync(arn, "RUNNING", definition);
        }

        await Task.WhenAll(arns.Select(a => running[a].Task)).WaitAsync(TimeSpan.FromMinutes(3));
        await Task.Delay(settle);
        var rss = Report.RssKiB(agent.Id);
        var split = string.Join(", ", File.ReadLines($"/proc/{agent.Id}/status").Where(l => l.StartsWith("RssAnon", StringComparison.Ordinal) || l.StartsWith("RssFile", StringComparison.Ordinal))
            .Select(l => string.Join(' ', l.Split(' ', '\t').Where(p => p.Length > 0))));
        var cpu = await Report.CpuPercentAsync(agent.Id, settle);
        foreach (var arn in arns)
        {
            await coordinator.WantAsync(arn, "STOPPED", definition);
        }

        await DockerBaselines.NoContainersLeftAsync(coordinator.InstanceArn);

        Report.Print(
        [
            ($"task to RUNNING through the agent ({rounds} rounds)", DockerBaselines.Figures(agentTimes), ""),
            ("baseline: create + start through Docker's API", DockerBaselines.Figures(apiTimes), ""),
            ("baseline: docker run -d", DockerBaselines.Figures(cliTimes), ""),
            ("agent overhead over the API baseline, at the median", $"{DockerBaselines.Median(agentTimes) - DockerBaselines.Median(apiTimes):N1} ms", "<= 50 ms"),
            ("agent overhead over docker run -d, at the median", $"{DockerBaselines.Median(agentTimes) - DockerBaselines.Median(cliTimes):N1} ms", "<= 50 ms"),
            ($"agent with {taskCount} tasks running", $"VmRSS {rss:N0} kB ({split}), CPU {cpu:N2}% of one core", "<= 45 MB"),
        ]);
        Directory.Delete(dataDir, recursive: true);
        return 0;
    }
}
