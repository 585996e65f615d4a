using System.Diagnostics;
using System.Globalization;
using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.FleetSimulator;

/// <summary>
/// Reads while others write, from a process of its own (as an operator's grpcurl would, so the
/// simulator's own busy thread pool is not in the figure): DescribeTasks for one task at a time,
/// picked from a file of task ARNs that grows as tasks are placed, until a stop file appears.
/// Prints one latency per line (ms).
/// </summary>
public static class DescribeReader
{
    public const string Command = "describe-reader";

    /// <summary>The reader's side: <c>describe-reader ADDRESS CREDENTIALS-FILE ARN-FILE STOP-FILE</c>.</summary>
    public static async Task<int> RunAsync(string address, string credentials, string arnFile, string stopFile)
    {
        var key = CoordinatorProcess.ReadCredentials(credentials);
        // The credentials file and the CA are both in the coordinator's data directory.
        using var channel = CoordinatorProcess.AuthenticatedChannel(address, () => key, Path.Combine(Path.GetDirectoryName(credentials)!, "tls", "ca.crt"));
        var ecs = new Ecs.EcsClient(channel);
        var random = new Random(1);
        var arns = new List<string>();
        var latencies = new List<double>();
        while (!File.Exists(stopFile))
        {
            if (arns.Count < 1000)
            {
                arns = [.. File.ReadLines(arnFile).Take(1000)];
                if (arns.Count == 0)
                {
                    await Task.Delay(20);
                    continue;
                }
            }

            var clock = Stopwatch.StartNew();
            await ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arns[random.Next(arns.Count)] } });
            latencies.Add(clock.Elapsed.TotalMilliseconds);
        }

        foreach (var latency in latencies)
        {
            Console.WriteLine(latency.ToString("0.000", CultureInfo.InvariantCulture));
        }

        return 0;
    }

    /// <summary>The writer's side: starts the reader process; <see cref="Reader.StopAsync"/> gives its latencies.</summary>
    public static Reader Start(CoordinatorProcess coordinator)
    {
        var dir = CoordinatorProcess.TempDirectory("ecslite-reader");
        var arnFile = Path.Combine(dir, "arns");
        File.WriteAllText(arnFile, "");
        var stopFile = Path.Combine(dir, "stop");
        var self = typeof(DescribeReader).Assembly.Location;
        var process = TestProcess.Start(["dotnet", self, Command, coordinator.Address, Path.Combine(coordinator.DataDir, "admin-credentials"), arnFile, stopFile]);
        return new Reader(process, dir, arnFile, stopFile);
    }

    public sealed class Reader(TestProcess process, string dir, string arnFile, string stopFile)
    {
        private int _offered;

        /// <summary>Gives the reader tasks to describe (the first 1,000 are enough).</summary>
        public void Offer(IEnumerable<string> arns)
        {
            if (_offered < 1000)
            {
                var some = arns.Take(1000 - _offered).ToList();
                _offered += some.Count;
                File.AppendAllLines(arnFile, some);
            }
        }

        public async Task<List<double>> StopAsync()
        {
            await File.WriteAllTextAsync(stopFile, "");
            await process.WaitForExitAsync(TimeSpan.FromSeconds(30));
            var latencies = process.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => double.TryParse(l.Trim(), CultureInfo.InvariantCulture, out var v) ? v : -1).Where(v => v >= 0).Order().ToList();
            await process.DisposeAsync();
            Directory.Delete(dir, recursive: true);
            return latencies;
        }
    }
}
