using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// What metrics cost. (1) The coordinator's scrape with a fleet of simulated hosts and their tasks (1,000
/// and 100,000 by default): time per scrape over HTTPS, the coordinator's CPU and managed allocation per
/// scrape (from its own process_cpu_seconds_total and ecslite_coordinator_allocated_bytes_total, less
/// what an equal window without scrapes used), and the answer's size. (2) The agent's memory with metrics
/// on (scraped every second) against off, each with the same tasks running, the two interleaved.
/// Usage: ... metrics [--agents 1000] [--tasks 100000] [--scrapes 50] [--agent PATH] [--agent-tasks 20] [--settle 30] [--pairs 2] [--agent-only | --coordinator-only]
/// </summary>
internal static class MetricsBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var results = new List<(string, string, string)>();
        if (!args.Contains("--agent-only"))
        {
            results.AddRange(await CoordinatorAsync(Report.Option(args, "--agents", 1000), Report.Option(args, "--tasks", 100_000), Report.Option(args, "--scrapes", 50)));
            Report.Print(results);
        }

        if (args.Contains("--coordinator-only"))
        {
            return 0;
        }

        results.AddRange(await AgentAsync(Report.Options(args, "--agent").FirstOrDefault() ?? RepoPaths.NativeAgent, Report.Option(args, "--agent-tasks", 20),
            TimeSpan.FromSeconds(Report.Option(args, "--settle", 30)), Report.Option(args, "--pairs", 2)));
        Report.Print(results);
        return 0;
    }

    /// <summary>The recount a scrape makes when the cluster changed: every task by cluster and status, in process.</summary>
    private static (string, string, string) CountTasks(int tasks)
    {
        var statuses = new[] { "PENDING", "RUNNING", "RUNNING", "RUNNING", "STOPPED" };
        var state = Enumerable.Range(0, tasks).Select(i => new EcsLite.Store.V1.StoredTask
        {
            Cluster = $"cluster-{i % 3}",
            Task = new EcsLite.Api.V1.Task { TaskArn = $"arn:aws:ecs:local:000000000000:task/cluster-{i % 3}/{i:x32}", LastStatus = statuses[i % 5], DesiredStatus = i % 5 == 4 ? "STOPPED" : "RUNNING" },
        }).ToImmutableSortedDictionary(t => t.Task.TaskArn, t => t, StringComparer.Ordinal);
        var times = new List<double>();
        for (var i = 0; i < 30; i++)
        {
            var clock = Stopwatch.StartNew();
            var series = Coordinator.Core.Observability.TaskCounts.Of(state.Values).Count();
            times.Add(clock.Elapsed.TotalMilliseconds);
            if (series != 9)
            {
                throw new InvalidOperationException($"{series} series");
            }
        }

        times.Sort();
        return ($"recounting {tasks:N0} tasks by cluster and status (in process, 30 times)", ScaleRun.Percentiles(times), "");
    }

    private static async Task<List<(string, string, string)>> CoordinatorAsync(int agents, int tasks, int scrapes)
    {
        var recount = CountTasks(tasks);
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, agents);
        var run = new ScaleRun(coordinator, fleet);
        await run.RegisterAsync(memoryMiB: 16);
        await run.RunTasksAsync(tasks, 10, 16);

        using var http = new HttpClient(CoordinatorProcess.TrustingHandler(coordinator.CaFile));
        var (id, secret) = coordinator.AdminKey;
        http.DefaultRequestHeaders.Authorization = new("Bearer", $"{id}:{secret}");
        var uri = new Uri(coordinator.Address.Replace("http://", "https://", StringComparison.Ordinal) + "/metrics");
        async Task<List<Sample>> ScrapeAsync() => PrometheusText.Parse(await http.GetStringAsync(uri));
        (double Cpu, double Allocated) Totals(List<Sample> s) => (s.Sum("process_cpu_seconds_total"), s.Sum("ecslite_coordinator_allocated_bytes_total"));

        // The background (1,000 agents' heartbeats) over a window without scrapes, then the same length with them.
        var body = await http.GetStringAsync(uri);
        await Task.Delay(TimeSpan.FromSeconds(5));
        var quietStart = Totals(await ScrapeAsync());
        var quiet = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(10));
        var quietEnd = Totals(await ScrapeAsync());
        var quietSeconds = quiet.Elapsed.TotalSeconds;

        var times = new List<double>();
        var start = Totals(await ScrapeAsync());
        var busy = Stopwatch.StartNew();
        for (var i = 0; i < scrapes; i++)
        {
            var clock = Stopwatch.StartNew();
            using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseContentRead);
            times.Add(clock.Elapsed.TotalMilliseconds);
        }

        var end = Totals(await ScrapeAsync());
        var background = busy.Elapsed.TotalSeconds / quietSeconds;
        var cpu = (end.Cpu - start.Cpu - (background * (quietEnd.Cpu - quietStart.Cpu))) / (scrapes + 1);
        var allocated = (end.Allocated - start.Allocated - (background * (quietEnd.Allocated - quietStart.Allocated))) / (scrapes + 1);
        times.Sort();
        var samples = PrometheusText.Parse(body);
        return
        [
            recount,
            ($"coordinator scrape, {agents} hosts, {samples.Sum("ecslite_tasks"):N0} tasks ({scrapes} scrapes, HTTPS)", ScaleRun.Percentiles(times), "< 100 ms p99"),
            ("coordinator CPU per scrape (less the background)", $"{cpu * 1000:N1} ms", ""),
            ("coordinator managed allocation per scrape (less the background)", $"{allocated / 1024:N0} KiB", ""),
            ("scrape size", $"{body.Length / 1024.0:N1} KiB, {samples.Count} samples", ""),
        ];
    }

    private static async Task<List<(string, string, string)>> AgentAsync(string build, int taskCount, TimeSpan settle, int pairs)
    {
        await LocalImages.EnsureAsync();
        var off = new List<long>();
        var on = new List<long>();
        for (var pair = 0; pair < pairs; pair++)
        {
            off.Add(await AgentRssAsync(build, taskCount, settle, metricsPort: null));
            on.Add(await AgentRssAsync(build, taskCount, settle, metricsPort: CoordinatorProcess.FreePort()));
        }

        return
        [
            ($"agent {Path.GetFileName(build)} with {taskCount} tasks, metrics off (VmRSS, {pairs} runs)", string.Join(", ", off.Select(k => $"{k:N0} kB")), ""),
            ($"agent with {taskCount} tasks, metrics on, scraped every second", string.Join(", ", on.Select(k => $"{k:N0} kB")), ""),
            ("metrics' cost to the agent (median on - median off)", $"{(Median(on) - Median(off)) / 1024.0:N2} MB", "<= 2 MB"),
        ];
    }

    private static double Median(List<long> values)
    {
        var sorted = values.Order().ToList();
        return (sorted[(sorted.Count - 1) / 2] + sorted[sorted.Count / 2]) / 2.0;
    }

    /// <summary>VmRSS of one agent run with <paramref name="taskCount"/> tasks, after it settled (while scraped, if metrics are on).</summary>
    private static async Task<long> AgentRssAsync(string build, int taskCount, TimeSpan settle, int? metricsPort)
    {
        await using var coordinator = await FakeCoordinator.StartAsync($"benchmark-{Guid.NewGuid():N}");
        var running = new ConcurrentDictionary<string, TaskCompletionSource>(StringComparer.Ordinal);
        coordinator.Reported += change =>
        {
            if (change.LastStatus == "RUNNING" && running.TryGetValue(change.TaskArn, out var started))
            {
                started.TrySetResult();
            }
        };

        var dataDir = CoordinatorProcess.TempDirectory("ecslite-agent-metrics");
        var agent = Report.StartAgent(build, coordinator.Address, coordinator.JoinToken, dataDir, new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
            ["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "1s",
            ["ECSLITE_METRICS_LISTEN"] = metricsPort is { } port ? $"127.0.0.1:{port}" : "off",
        });
        try
        {
            await agent.WaitForOutputAsync("Joined ", TimeSpan.FromSeconds(30));
            var definition = new TaskDefinition { Family = "bench", Revision = 1 };
            definition.ContainerDefinitions.Add(new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16, Command = { "sleep", "600" } });
            var arns = Enumerable.Range(0, taskCount).Select(_ => $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}").ToList();
            foreach (var arn in arns)
            {
                running[arn] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                await coordinator.WantAsync(arn, "RUNNING", definition);
            }

            await Task.WhenAll(arns.Select(a => running[a].Task)).WaitAsync(TimeSpan.FromMinutes(3));
            using var http = new HttpClient();
            var settling = Stopwatch.StartNew();
            while (settling.Elapsed < settle)
            {
                if (metricsPort is { } scraped
                    && PrometheusText.Parse(await http.GetStringAsync($"http://127.0.0.1:{scraped}/metrics")).Count(s => s.Name == "ecslite_agent_container_memory_working_set_bytes") != taskCount)
                {
                    throw new InvalidOperationException($"a scrape did not show {taskCount} containers");
                }

                await Task.Delay(TimeSpan.FromSeconds(1));
            }

            var rss = Report.RssKiB(agent.Id);
            foreach (var arn in arns)
            {
                await coordinator.WantAsync(arn, "STOPPED", definition);
            }

            await DockerBaselines.NoContainersLeftAsync(coordinator.InstanceArn);
            return rss;
        }
        finally
        {
            await agent.DisposeAsync();
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
