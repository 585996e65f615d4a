using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// What the JSON API's edge costs per call: DescribeTasks (10 tasks) and RunTask (1 task, placed on one
/// of 10 simulated hosts) through the JSON API (HTTP/1.1, SigV4 signed by the client each call) and
/// over gRPC (HTTP/2, a bearer key), one caller, the two alternating call by call against the same
/// coordinator in the same run.
/// Usage: ... json-api [--calls 2000]
/// </summary>
internal static class JsonApiBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var calls = Report.Option(args, "--calls", 2000);
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, 10, cpu: 1_000_000, memoryMiB: 10_000_000);
        await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "bench",
            ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "ecslite/busybox:latest", Cpu = 1, Memory = 6 } },
        });
        var tasks = (await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "bench", Count = 10 })).Tasks.Select(t => t.TaskArn).ToList();
        var describe = new DescribeTasksRequest { Tasks = { tasks } };
        var describeJson = $$"""{"tasks": [{{string.Join(", ", tasks.Select(t => $"\"{t}\""))}}]}""";
        const string RunJson = """{"taskDefinition": "bench"}""";

        using var http = new HttpClient(CoordinatorProcess.TrustingHandler(coordinator.CaFile));
        var json = new AwsJsonClient(http, new Uri(coordinator.Address.Replace("http://", "https://", StringComparison.Ordinal)), coordinator.AdminKey);
        var results = new Dictionary<string, List<double>>
        {
            ["DescribeTasks gRPC"] = [], ["DescribeTasks JSON"] = [], ["RunTask gRPC"] = [], ["RunTask JSON"] = [],
        };

        async Task Time(string name, Func<Task> call)
        {
            var clock = Stopwatch.StartNew();
            await call();
            results[name].Add(clock.Elapsed.TotalMilliseconds);
        }

        for (var i = 0; i < calls + 100; i++)
        {
            var warm = i < 100;
            await Time("DescribeTasks gRPC", async () => await coordinator.Ecs.DescribeTasksAsync(describe));
            await Time("DescribeTasks JSON", () => CallAsync(json, "DescribeTasks", describeJson));
            if (i % 10 == 0)
            {
                await Time("RunTask gRPC", async () => await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "bench" }));
                await Time("RunTask JSON", () => CallAsync(json, "RunTask", RunJson));
            }

            if (warm && i == 99)
            {
                foreach (var list in results.Values)
                {
                    list.Clear();
                }
            }
        }

        string Figures(List<double> t) => $"p50 {Percentile(t, 0.5):F3} ms, p99 {Percentile(t, 0.99):F3} ms ({t.Count} calls)";
        string Overhead(string call) =>
            $"p50 {Percentile(results[$"{call} JSON"], 0.5) - Percentile(results[$"{call} gRPC"], 0.5):+0.000;-0.000} ms, p99 {Percentile(results[$"{call} JSON"], 0.99) - Percentile(results[$"{call} gRPC"], 0.99):+0.000;-0.000} ms";
        Report.Print(
        [
            ("DescribeTasks (10 tasks) over gRPC", Figures(results["DescribeTasks gRPC"]), ""),
            ("DescribeTasks (10 tasks) through the JSON API, SigV4", Figures(results["DescribeTasks JSON"]), ""),
            ("JSON API overhead, DescribeTasks", Overhead("DescribeTasks"), ""),
            ("RunTask (1 task, 10 hosts) over gRPC", Figures(results["RunTask gRPC"]), ""),
            ("RunTask through the JSON API, SigV4", Figures(results["RunTask JSON"]), ""),
            ("JSON API overhead, RunTask", Overhead("RunTask"), ""),
        ]);
        return 0;
    }

    private static double Percentile(List<double> times, double p) => times.Order().ElementAt(Math.Min(times.Count - 1, (int)(times.Count * p)));

    /// <summary>An ECS action through the JSON API, signed as an SDK signs it; its answer read whole.</summary>
    private static async Task CallAsync(AwsJsonClient json, string action, string body)
    {
        using var response = await json.PostAsync($"AmazonEC2ContainerServiceV20141113.{action}", body);
        var answer = await response.Content.ReadAsByteArrayAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{action}: {(int)response.StatusCode} {System.Text.Encoding.UTF8.GetString(answer)}");
        }
    }
}
