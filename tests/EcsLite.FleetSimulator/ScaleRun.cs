using System.Diagnostics;
using System.Globalization;
using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.FleetSimulator;

/// <summary>One measured figure: what, the result, and the target it is held against.</summary>
public sealed record Figure(string Measure, string Result, string Target);

/// <summary>
/// The scale scenarios against one real coordinator process and a fleet of simulated agents, each
/// returning its figures. The same code runs the full-size run (the program) and the CI-sized one
/// (a test, which asserts correctness from what these return and from the fleet's own records).
/// </summary>
public sealed class ScaleRun(CoordinatorProcess coordinator, Fleet fleet)
{
    public const string Family = "sim";
    public const string ServiceFamily = "svc";

    /// <summary>How often a wait looks again: fine enough for the latencies it brackets.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    private Ecs.EcsClient Ecs => coordinator.Ecs;

    /// <summary>Task ARN to when its RunTask reply arrived (Stopwatch timestamp).</summary>
    public Dictionary<string, long> RepliedAt { get; } = new(StringComparer.Ordinal);

    public async Task RegisterAsync(int memoryMiB)
    {
        foreach (var family in new[] { Family, ServiceFamily })
        {
            await Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
            {
                Family = family,
                ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = memoryMiB } },
            });
        }
    }

    /// <summary>The coordinator's CPU and memory with the fleet connected and nothing else happening.</summary>
    public async Task<List<Figure>> IdleAsync(TimeSpan window)
    {
        var cpu = await Process.CpuPercentAsync(coordinator.ProcessId, window);
        return
        [
            new($"coordinator idle, {fleet.Agents.Count} agents heartbeating every 2 s", $"CPU {cpu:N1}% of one core", "< 10%"),
            new("coordinator VmRSS, idle", $"{Process.RssKiB(coordinator.ProcessId) / 1024.0:N0} MB", "< 300 MB"),
        ];
    }

    /// <summary>
    /// <paramref name="tasks"/> tasks through RunTask (<paramref name="perCall"/> per call, <paramref name="callers"/>
    /// concurrent callers) until all are RUNNING, while one more caller measures DescribeTasks.
    /// </summary>
    public async Task<List<Figure>> RunTasksAsync(int tasks, int perCall, int callers)
    {
        var cpuBefore = Process.CpuTime(coordinator.ProcessId);
        var started = Stopwatch.StartNew();
        var remaining = tasks;
        var failures = 0;
        var gate = new Lock();
        var reader = DescribeReader.Start(coordinator);
        await Task.WhenAll(Enumerable.Range(0, callers).Select(async _ =>
        {
            while (Interlocked.Add(ref remaining, -perCall) > -perCall)
            {
                var reply = await Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = Family, Count = perCall });
                var at = Stopwatch.GetTimestamp();
                lock (gate)
                {
                    foreach (var task in reply.Tasks)
                    {
                        RepliedAt[task.TaskArn] = at;
                    }

                    reader.Offer(reply.Tasks.Select(t => t.TaskArn));

                    failures += reply.Failures.Count;
                }
            }
        }));
        var placed = started.Elapsed;
        List<string> arns;
        lock (gate)
        {
            arns = [.. RepliedAt.Keys];
        }

        await Eventually.HoldsAsync(() => arns.All(fleet.RunningAt.ContainsKey), TimeSpan.FromMinutes(5), "every placed task RUNNING", Poll);
        var total = started.Elapsed;
        var describe = await reader.StopAsync();
        var cpu = 100 * (Process.CpuTime(coordinator.ProcessId) - cpuBefore).TotalSeconds / total.TotalSeconds;

        var latency = arns.Select(a => Math.Max(0, Stopwatch.GetElapsedTime(RepliedAt[a], fleet.RunningAt[a]).TotalMilliseconds)).Order().ToList();
        return
        [
            new($"RunTask: {arns.Count:N0} tasks placed ({failures} failures), {callers} callers x {perCall} per call", $"{placed.TotalSeconds:N1} s to place, {total.TotalSeconds:N1} s to all RUNNING", "< 50 s"),
            new("end-to-end rate (RunTask call to RUNNING reported)", $"{arns.Count / total.TotalSeconds:N0} tasks/s", ">= 2,000/s"),
            new("RunTask reply to RUNNING", Percentiles(latency), "p99 < 500 ms"),
            new($"DescribeTasks (1 task) during the run, from a process of its own, {describe.Count:N0} calls", Percentiles(describe), "p99 < 5 ms"),
            new("the same: p90, p95, share of calls over 5 ms", $"{At(describe, 90):N1} ms, {At(describe, 95):N1} ms, {Over(describe, 5):N2}%", ""),
            new("coordinator CPU during the run", $"{cpu:N0}% of one core", ""),
            new("coordinator VmRSS after the run", $"{Process.RssKiB(coordinator.ProcessId) / 1024.0:N0} MB", ""),
            new("store on disk", $"{StoreBytes() / 1048576.0:N0} MB", ""),
        ];
    }

    /// <summary>
    /// Baselines for the DescribeTasks figure, after the run (its tasks stored, no writes): with the cores
    /// free, then with every core kept busy by a plain shell busy loop. The second is what any load that
    /// fills both cores costs a reader here, whatever the coordinator does.
    /// </summary>
    public async Task<List<Figure>> DescribeBaselinesAsync(TimeSpan each)
    {
        var figures = new List<Figure>();
        foreach (var busy in new[] { false, true })
        {
            var loops = busy ? Enumerable.Range(0, Environment.ProcessorCount).Select(_ => TestProcess.Start(["sh", "-c", "while :; do :; done"])).ToList() : [];
            var reader = DescribeReader.Start(coordinator);
            reader.Offer(RepliedAt.Keys);
            await Task.Delay(each);
            var describe = await reader.StopAsync();
            foreach (var loop in loops)
            {
                await loop.DisposeAsync();
            }

            figures.Add(new(
                $"baseline: DescribeTasks, no writes, {(busy ? $"{loops.Count} cores kept busy by shell busy loops" : "cores free")}, {describe.Count:N0} calls",
                $"{Percentiles(describe)}; {Over(describe, 5):N2}% over 5 ms", ""));
        }

        return figures;
    }

    /// <summary>
    /// Services totalling <paramref name="serviceTasks"/> tasks, then <paramref name="kill"/> agents die:
    /// from their instances marked disconnected to every affected service task RUNNING elsewhere.
    /// </summary>
    public async Task<List<Figure>> FailoverAsync(int serviceTasks, int services, int kill, TimeSpan grace)
    {
        var perService = serviceTasks / services;
        var startedAt = Stopwatch.GetTimestamp();
        for (var i = 0; i < services; i++)
        {
            await Ecs.CreateServiceAsync(new CreateServiceRequest { ServiceName = $"svc-{i}", TaskDefinition = ServiceFamily, DesiredCount = perService });
        }

        await Eventually.HoldsAsync(() => fleet.Agents.Sum(a => a.Running(ServiceFamily)) == perService * services, TimeSpan.FromMinutes(5), "every service task RUNNING", Poll);
        var steady = Stopwatch.GetElapsedTime(startedAt);

        var victims = fleet.Agents.Where(a => a.Connected).OrderByDescending(a => a.Running(ServiceFamily)).Take(kill).ToList();
        var affected = victims.Sum(a => a.Running(ServiceFamily));
        var before = fleet.RunningAt.Count;
        var killedAt = Stopwatch.GetTimestamp();
        await Task.WhenAll(victims.Select(v => v.DieAsync()));
        var dead = victims.Select(v => v.ContainerInstanceArn!).ToHashSet(StringComparer.Ordinal);
        await Eventually.HoldsAsync(async () => (await DisconnectedAsync()).IsSupersetOf(dead), TimeSpan.FromSeconds(30), "the killed instances marked disconnected", Poll);
        var marked = Stopwatch.GetTimestamp();
        await Eventually.HoldsAsync(() => fleet.Agents.Where(a => !dead.Contains(a.ContainerInstanceArn!)).Sum(a => a.Running(ServiceFamily)) == perService * services,
            TimeSpan.FromMinutes(2), "every affected service task RUNNING elsewhere", Poll);
        var replaced = Stopwatch.GetElapsedTime(marked);
        var newStarts = fleet.RunningAt.Values.Where(t => t > killedAt).Select(t => Math.Max(0, Stopwatch.GetElapsedTime(marked, t).TotalMilliseconds)).Order().ToList();
        return
        [
            new($"{services} services, {perService * services:N0} tasks, to all RUNNING", $"{steady.TotalSeconds:N1} s", ""),
            new($"{kill} agents killed ({affected:N0} service tasks, LostInstanceGrace {grace.TotalSeconds:N0} s): marked disconnected to all RUNNING elsewhere",
                $"{replaced.TotalSeconds:N1} s", "< 10 s"),
            new($"the same, per replacement task ({fleet.RunningAt.Count - before:N0})", Percentiles(newStarts), ""),
        ];
    }

    /// <summary>The coordinator restarts (SIGTERM) on its store: serving again, every agent back, no task started twice.</summary>
    public async Task<List<Figure>> RestartAsync()
    {
        var tasks = fleet.Starts.Count;
        var clock = Stopwatch.StartNew();
        await coordinator.StopAsync();
        await coordinator.StartAgainAsync();
        var serving = coordinator.LastStartToServing;
        var alive = fleet.Agents.Where(a => a.Alive).ToList();
        await Eventually.HoldsAsync(async () => alive.All(a => a.Connected) && await ConnectedCountAsync() == alive.Count, TimeSpan.FromMinutes(1), "every agent reconnected", Poll);
        var reconnected = clock.Elapsed;
        var twice = fleet.Starts.Count(s => s.Value > 1);
        return
        [
            new($"coordinator restart with {tasks:N0} tasks stored: start to SERVING", $"{serving.TotalSeconds:N1} s", "< 3 s"),
            new($"stop to all {alive.Count:N0} agents reconnected", $"{reconnected.TotalSeconds:N1} s", "< 15 s"),
            new("tasks started twice", twice.ToString(CultureInfo.InvariantCulture), "0"),
        ];
    }

    private async Task<HashSet<string>> DisconnectedAsync() => [.. await InstancesAsync("agentConnected == false")];

    private async Task<int> ConnectedCountAsync() => (await InstancesAsync("agentConnected == true")).Count;

    private async Task<List<string>> InstancesAsync(string filter)
    {
        var arns = new List<string>();
        string? token = null;
        do
        {
            var page = await Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest { Filter = filter, MaxResults = 100, NextToken = token ?? "" });
            arns.AddRange(page.ContainerInstanceArns);
            token = page.NextToken is { Length: > 0 } next ? next : null;
        }
        while (token is not null);
        return arns;
    }

    private long StoreBytes() =>
        Directory.EnumerateFiles(coordinator.DataDir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    public static string Percentiles(List<double> sorted) => sorted.Count == 0 ? "no samples"
        : $"p50 {At(sorted, 50):N1} ms, p99 {At(sorted, 99):N1} ms, max {sorted[^1]:N1} ms";

    /// <summary>The share (%) of <paramref name="latencies"/> over <paramref name="ms"/>.</summary>
    private static double Over(List<double> latencies, double ms) => latencies.Count(l => l > ms) * 100.0 / Math.Max(1, latencies.Count);

    /// <summary>The value at <paramref name="percent"/> of an ascending list (nearest rank); NaN for no samples (a short run's reader may make no call).</summary>
    public static double At(List<double> sorted, int percent) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(sorted.Count * percent / 100.0) - 1)];

    /// <summary>CPU time, VmRSS and storage writes of a process, from /proc.</summary>
    public static class Process
    {
        public static TimeSpan CpuTime(int pid)
        {
            var fields = StatFields($"/proc/{pid}/stat");
            return TimeSpan.FromSeconds((long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0);
        }

        /// <summary>
        /// The fields of a process's or thread's /proc stat file from the third (state) on: the name before them,
        /// in parentheses, may hold spaces. Index 11 is utime, 16 the nice value.
        /// </summary>
        public static string[] StatFields(string path)
        {
            var stat = File.ReadAllText(path);
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        }

        public static long RssKiB(int pid) => Field($"/proc/{pid}/status", "VmRSS:");

        /// <summary>The bytes the process has sent to storage so far (its page-cache writes).</summary>
        public static long StorageWriteBytes(int pid) => Field($"/proc/{pid}/io", "write_bytes:");

        /// <summary>The bytes the process has passed to write() and its kin so far, whether or not they reached storage yet.</summary>
        public static long WrittenBytes(int pid) => Field($"/proc/{pid}/io", "wchar:");

        /// <summary>The number after <paramref name="name"/> in a /proc file of "name: value" lines.</summary>
        private static long Field(string path, string name) =>
            long.Parse(File.ReadLines(path).First(l => l.StartsWith(name, StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

        public static async Task<double> CpuPercentAsync(int pid, TimeSpan window)
        {
            var before = CpuTime(pid);
            await Task.Delay(window);
            return 100 * (CpuTime(pid) - before).TotalSeconds / window.TotalSeconds;
        }
    }
}
