using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// What security costs, against the same build with it off (the coordinator's InsecureTestMode:
/// plaintext, no authentication or policies, agents trusted by their hello), in the same run:
/// (1) RunTask to RUNNING through a real agent, the two clusters' rounds interleaved; (2) DescribeTasks
/// throughput, concurrent callers, alternating phases; (3) 1,000 simulated agents joining: over mutual
/// TLS with a token (enrolling) against plaintext, time to all welcomed and the coordinator's CPU.
/// Usage: ... security [--rounds 30] [--callers 8] [--channels N: the callers share N connections; one each by default]
///                      [--seconds 5] [--agents 1000] [--agent PATH or "PATH ENV=VALUE ..."]
/// </summary>
internal static class SecurityBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = Report.Option(args, "--rounds", 30);
        var callers = Report.Option(args, "--callers", 8);
        var channelCount = Report.Option(args, "--channels", callers);
        var phase = TimeSpan.FromSeconds(Report.Option(args, "--seconds", 5));
        var agents = Report.Option(args, "--agents", 1000);
        var build = Report.Options(args, "--agent").FirstOrDefault() ?? RepoPaths.AgentDll;
        await LocalImages.EnsureAsync();

        await using var secure = await CoordinatorProcess.StartAsync();
        await using var insecure = await StartInsecureAsync();
        var secureDir = CoordinatorProcess.TempDirectory("ecslite-bench-secure");
        var insecureDir = CoordinatorProcess.TempDirectory("ecslite-bench-insecure");
        await using (var secureAgent = await RunTaskBenchmark.StartAgentAsync(build, secure.Address, secure.JoinToken, secureDir, secure.Ecs))
        await using (var insecureAgent = await RunTaskBenchmark.StartAgentAsync(build, insecure.Address, null, insecureDir, insecure.Ecs))
        {
            await RunTaskBenchmark.OnceAsync(secure.Ecs);
            await RunTaskBenchmark.OnceAsync(insecure.Ecs);
            var withSecurity = new List<double>();
            var without = new List<double>();
            for (var i = 0; i < rounds; i++)
            {
                withSecurity.Add(await RunTaskBenchmark.OnceAsync(secure.Ecs));
                without.Add(await RunTaskBenchmark.OnceAsync(insecure.Ecs));
            }

            // DescribeTasks of 10 stopped tasks each call, as a dashboard polls: alternating phases, twice each.
            var secureRate = new List<(double Rate, double Cpu)>();
            var insecureRate = new List<(double Rate, double Cpu)>();
            for (var i = 0; i < 3; i++)
            {
                secureRate.Add(await DescribeRateAsync(secure, callers, channelCount, phase));
                insecureRate.Add(await DescribeRateAsync(insecure, callers, channelCount, phase));
            }

            Report.Print(
            [
                ($"RunTask to RUNNING, TLS + keys + policies + mutual TLS agent ({rounds} rounds)", DockerBaselines.Figures(withSecurity), ""),
                ("RunTask to RUNNING, security off (InsecureTestMode)", DockerBaselines.Figures(without), ""),
                ("difference at the median", Percent(DockerBaselines.Median(withSecurity), DockerBaselines.Median(without)), "within 10%"),
                ($"DescribeTasks (10 tasks a call, {callers} callers on this machine), with security", Rates(secureRate), ""),
                ("DescribeTasks, security off", Rates(insecureRate), ""),
                ("difference in calls/s", Percent(secureRate.Average(r => r.Rate), insecureRate.Average(r => r.Rate)), "within 10%"),
                ("difference in the coordinator's CPU per call", Percent(secureRate.Average(r => r.Cpu), insecureRate.Average(r => r.Cpu)), ""),
            ]);
        }

        Directory.Delete(secureDir, recursive: true);
        Directory.Delete(insecureDir, recursive: true);

        // Joining: a fresh coordinator each, so each fleet's joining is all its coordinator does.
        var (secureJoin, secureCpu, secureRss) = await JoinAsync(await CoordinatorProcess.StartAsync(), agents, secure: true);
        var (plainJoin, plainCpu, plainRss) = await JoinAsync(await StartInsecureAsync(), agents, secure: false);
        Report.Print(
        [
            ($"{agents:N0} simulated agents joining over mutual TLS (token, enrollment, certificate)", $"{secureJoin.TotalSeconds:N1} s to all welcomed; coordinator CPU {secureCpu.TotalSeconds:N2} s; its VmRSS 10 s later {secureRss:N0} kB", ""),
            ($"{agents:N0} simulated agents joining in plaintext (InsecureTestMode)", $"{plainJoin.TotalSeconds:N1} s to all welcomed; coordinator CPU {plainCpu.TotalSeconds:N2} s; its VmRSS 10 s later {plainRss:N0} kB", ""),
        ]);
        return 0;
    }

    private static Task<CoordinatorProcess> StartInsecureAsync()
    {
        var port = CoordinatorProcess.FreePort();
        return CoordinatorProcess.StartListeningAsync(null, $"127.0.0.1:{port}", $"http://127.0.0.1:{port}", null, "--InsecureTestMode=true");
    }

    private static string Rates(List<(double Rate, double Cpu)> phases) =>
        $"{phases.Average(p => p.Rate):N0} calls/s ({string.Join(", ", phases.Select(p => p.Rate.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)))}); "
        + $"coordinator CPU {phases.Average(p => p.Cpu):N0} µs a call";

    /// <summary><paramref name="value"/> against <paramref name="baseline"/>, as a signed percentage.</summary>
    private static string Percent(double value, double baseline) => $"{100 * (value - baseline) / baseline:+0.0;-0.0}%";

    /// <summary>Calls per second, and the coordinator's CPU time per call (µs): the callers share the machine, so their own TLS work weighs on the rate.</summary>
    private static async Task<(double Rate, double CpuMicroseconds)> DescribeRateAsync(CoordinatorProcess coordinator, int callers, int channelCount, TimeSpan phase)
    {
        var arns = (await coordinator.Ecs.ListTasksAsync(new ListTasksRequest { DesiredStatus = "STOPPED", MaxResults = 10 })).TaskArns;
        var request = new DescribeTasksRequest { Tasks = { arns } };
        var channels = Enumerable.Range(0, channelCount).Select(_ => coordinator.NewChannel()).ToList();
        var result = await Report.CallRateAsync(callers, phase, () => Report.CpuTime(coordinator.ProcessId), caller =>
        {
            var ecs = new Ecs.EcsClient(channels[caller % channelCount]);
            return async () => await ecs.DescribeTasksAsync(request);
        });
        channels.ForEach(c => c.Dispose());
        return result;
    }

    private static async Task<(TimeSpan Elapsed, TimeSpan CoordinatorCpu, long CoordinatorRssKiB)> JoinAsync(CoordinatorProcess coordinator, int agents, bool secure)
    {
        await using (coordinator)
        {
            var cpuBefore = Report.CpuTime(coordinator.ProcessId);
            var watch = Stopwatch.StartNew();
            await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), secure ? coordinator.JoinToken : null, agents).WaitAsync(TimeSpan.FromMinutes(5));
            var elapsed = watch.Elapsed;
            var cpu = Report.CpuTime(coordinator.ProcessId) - cpuBefore;
            var instances = 0;
            string? next = null;
            do
            {
                var request = new ListContainerInstancesRequest();
                if (next is not null)
                {
                    request.NextToken = next;
                }

                var page = await coordinator.Ecs.ListContainerInstancesAsync(request);
                instances += page.ContainerInstanceArns.Count;
                next = page.HasNextToken ? page.NextToken : null;
            }
            while (next is not null);

            await Task.Delay(TimeSpan.FromSeconds(10)); // the fleet idle and heartbeating
            return instances == agents ? (elapsed, cpu, Report.RssKiB(coordinator.ProcessId)) : throw new InvalidOperationException($"{instances} instances after {agents} agents joined");
        }
    }
}
