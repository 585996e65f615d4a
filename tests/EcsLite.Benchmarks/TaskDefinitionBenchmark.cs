using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;
using Grpc.Health.V1;

namespace EcsLite.Benchmarks;

/// <summary>
/// The foundation's figures, measured against the real coordinator process over real gRPC on loopback:
///   RegisterTaskDefinition sustained rate, DescribeTaskDefinition latency with 10,000 revisions stored,
///   and time to serve after a restart, each beside a baseline measured in the same run.
/// Usage: dotnet run -c Release --project tests/EcsLite.Benchmarks -- taskdefs [--revisions 10000] [--clients 32] [--seconds 10] [--samples 20000] [--restarts 5]
/// ECSLITE_COORDINATOR=/path/to/ecslite-coordinator measures a published build instead of bin/Release.
/// </summary>
internal static class TaskDefinitionBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var revisions = Report.Option(args, "--revisions", 10_000);
        var clients = Report.Option(args, "--clients", 32);
        var seconds = Report.Option(args, "--seconds", 10);
        var samples = Report.Option(args, "--samples", 20_000);
        var restarts = Report.Option(args, "--restarts", 5);
        var results = new List<(string Measure, string Value, string Target)>();

        var example = new JsonParser(JsonParser.Settings.Default).Parse<RegisterTaskDefinitionRequest>(
            File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));

        Console.WriteLine($"coordinator {RepoPaths.Coordinator}, {Environment.ProcessorCount} cores; {clients} clients");

        // 1. Sustained registration rate: `clients` concurrent callers for `seconds`.
        //    Baseline: the same callers sending health checks, i.e. what gRPC alone allows on this machine.
        await using (var sustained = await CoordinatorProcess.StartAsync())
        {
            var probe = new Health.HealthClient(sustained.Channel);
            var (calls, callTime) = await LoopAsync(_ => probe.CheckAsync(new HealthCheckRequest()).ResponseAsync, long.MaxValue, TimeSpan.FromSeconds(seconds));
            results.Add(("grpc.health.v1 Check, sustained (baseline)", $"{calls / callTime.TotalSeconds:N0}/s ({clients} clients)", ""));
            var (count, elapsed) = await RegisterAsync(sustained.Ecs, long.MaxValue, TimeSpan.FromSeconds(seconds));
            results.Add(("RegisterTaskDefinition, sustained", $"{count / elapsed.TotalSeconds:N0}/s ({count:N0} in {elapsed.TotalSeconds:N1} s, {clients} clients)", ">= 2,000/s"));
        }

        // 2. A store holding exactly `revisions` task definition revisions for the read and restart figures.
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var ecs = coordinator.Ecs;
        var health = new Health.HealthClient(coordinator.Channel);
        var (registered, _) = await RegisterAsync(ecs, revisions, TimeSpan.MaxValue);

        // 3. Read latency with that many revisions stored; the gRPC health check is the floor on this machine.
        var healthLatency = await Measure(samples, _ => health.CheckAsync(new HealthCheckRequest()).ResponseAsync);
        var byRevision = await Measure(samples, i => ecs.DescribeTaskDefinitionAsync(new DescribeTaskDefinitionRequest { TaskDefinition = $"bench-{i % 8}:{1 + (i % 100)}" }).ResponseAsync);
        var byFamily = await Measure(samples, i => ecs.DescribeTaskDefinitionAsync(new DescribeTaskDefinitionRequest { TaskDefinition = $"bench-{i % 8}" }).ResponseAsync);
        results.Add(("grpc.health.v1 Check (baseline)", healthLatency, ""));
        results.Add(($"DescribeTaskDefinition family:revision ({registered:N0} stored)", byRevision, "p99 < 2 ms"));
        results.Add(($"DescribeTaskDefinition family, latest ACTIVE ({registered:N0} stored)", byFamily, "p99 < 2 ms"));

        // 4. Start to serving with everything stored, against an empty store (the baseline) in the same run:
        //    `restarts` restarts of each (one start alone moves by 100-200 ms on these machines), the median reported.
        var loads = new List<string>();
        var full = await RestartsAsync(coordinator, () =>
        {
            var load = Regex.Matches(coordinator.Output, @"Cluster state loaded: [^\n]*?, in (\d+) ms \(read (\d+) ms, parse (\d+) ms").Last().Groups;
            loads.Add($"{load[1].Value} ms: read {load[2].Value}, parse {load[3].Value}");
        });
        await using var empty = await CoordinatorProcess.StartAsync();
        var first = empty.LastStartToServing.TotalMilliseconds;
        var emptyStarts = await RestartsAsync(empty, () => { });

        results.Add(("first start, empty store (makes the CA, keys and credentials)", $"{first:N0} ms", ""));
        results.Add(($"start to SERVING, empty store (baseline), median of {restarts} restarts", Starts(emptyStarts), ""));
        results.Add(($"start to SERVING, {registered:N0} revisions stored, median of {restarts} restarts", $"{Starts(full)} (state loaded in {string.Join("; ", loads)})", "< 1,000 ms"));
        results.Add(("coordinator VmRSS after restart", $"{Report.RssKiB(coordinator.ProcessId):N0} kB", ""));

        Report.Print(results);
        return 0;

        async Task<List<double>> RestartsAsync(CoordinatorProcess process, Action afterEach)
        {
            var starts = new List<double>();
            for (var i = 0; i < restarts; i++)
            {
                await process.StopAsync();
                await process.StartAgainAsync();
                starts.Add(process.LastStartToServing.TotalMilliseconds);
                afterEach();
            }

            return starts;
        }

        static string Starts(List<double> starts) =>
            $"{starts.Order().ElementAt(starts.Count / 2):N0} ms ({string.Join(", ", starts.Select(s => s.ToString("N0")))})";

        Task<(long Count, TimeSpan Elapsed)> RegisterAsync(Ecs.EcsClient client, long total, TimeSpan duration)
        {
            var requests = Enumerable.Range(0, clients).Select(c =>
            {
                var request = example.Clone();
                request.Family = $"bench-{c % 8}";
                return request;
            }).ToArray();
            return LoopAsync(c => client.RegisterTaskDefinitionAsync(requests[c]).ResponseAsync, total, duration);
        }

        // `clients` concurrent callers, each calling in a loop until `total` calls or `duration` (both bounded).
        async Task<(long Count, TimeSpan Elapsed)> LoopAsync(Func<int, Task> call, long total, TimeSpan duration)
        {
            var count = 0L;
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
            {
                while (watch.Elapsed < duration && Interlocked.Increment(ref count) <= total)
                {
                    await call(c);
                }
            }));
            return (Math.Min(count, total), watch.Elapsed);
        }

        static async Task<string> Measure(int count, Func<int, Task> call)
        {
            for (var i = 0; i < 500; i++)
            {
                await call(i); // warm-up
            }

            var latencies = new double[count];
            for (var i = 0; i < count; i++)
            {
                var start = Stopwatch.GetTimestamp();
                await call(i);
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }

            Array.Sort(latencies);
            double P(double q) => latencies[(int)Math.Min(count - 1, Math.Ceiling(q * count) - 1)];
            return $"p50 {P(0.50):N3} ms, p99 {P(0.99):N3} ms, max {latencies[^1]:N3} ms ({count:N0} sequential calls)";
        }
    }
}
