using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;
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
        var json = new SignedClient(http, new Uri(coordinator.Address.Replace("http://", "https://", StringComparison.Ordinal)), coordinator.AdminKey);
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
            await Time("DescribeTasks JSON", () => json.CallAsync("DescribeTasks", describeJson));
            if (i % 10 == 0)
            {
                await Time("RunTask gRPC", async () => await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "bench" }));
                await Time("RunTask JSON", () => json.CallAsync("RunTask", RunJson));
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
            $"p50 +{Percentile(results[$"{call} JSON"], 0.5) - Percentile(results[$"{call} gRPC"], 0.5):F3} ms, p99 +{Percentile(results[$"{call} JSON"], 0.99) - Percentile(results[$"{call} gRPC"], 0.99):F3} ms";
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

    /// <summary>An awsJson1.1 client signing every call with SigV4, as an SDK does.</summary>
    private sealed class SignedClient(HttpClient http, Uri endpoint, (string AccessKeyId, string Secret) key)
    {
        public async Task CallAsync(string action, string body)
        {
            var amzDate = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
            var bytes = Encoding.UTF8.GetBytes(body);
            var target = $"AmazonEC2ContainerServiceV20141113.{action}";
            var headers = new Dictionary<string, string> { ["content-type"] = "application/x-amz-json-1.1", ["host"] = endpoint.Authority, ["x-amz-date"] = amzDate, ["x-amz-target"] = target };
            var authorization = new SigV4.Authorization(key.AccessKeyId, amzDate[..8], "local", "ecs", [.. headers.Keys], "");
            var signature = SigV4.Signature(Encoding.UTF8.GetBytes(key.Secret), authorization, new SignedRequest("POST", "/", "", h => headers.GetValueOrDefault(h), SHA256.HashData(bytes)), amzDate);
            using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Version = new Version(1, 1), Content = new ByteArrayContent(bytes) };
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/x-amz-json-1.1");
            request.Headers.TryAddWithoutValidation("X-Amz-Date", amzDate);
            request.Headers.TryAddWithoutValidation("X-Amz-Target", target);
            request.Headers.TryAddWithoutValidation("Authorization", $"{SigV4.Algorithm} Credential={key.AccessKeyId}/{authorization.Scope}, SignedHeaders={string.Join(';', authorization.SignedHeaders)}, Signature={signature}");
            using var response = await http.SendAsync(request);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"{action}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            await response.Content.ReadAsByteArrayAsync();
        }
    }
}
