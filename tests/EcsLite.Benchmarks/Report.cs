using EcsLite.Testing;
using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace EcsLite.Benchmarks;

/// <summary>Options, process readings from /proc, and the Markdown table every benchmark prints.</summary>
internal static class Report
{
    /// <summary>
    /// Starts an agent build ("PATH" or "PATH ENV=VALUE ...", a .dll run with dotnet) against
    /// <paramref name="coordinator"/>, joining with <paramref name="joinToken"/>, with <paramref name="settings"/> added.
    /// </summary>
    public static TestProcess StartAgent(string build, string coordinator, string? joinToken, string dataDir, IReadOnlyDictionary<string, string>? settings = null)
    {
        // "[WRAPPER ...] PATH [ENV=VALUE ...]": the words before the first NAME=VALUE are the command line.
        var parts = build.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var command = parts.TakeWhile(p => !p.Contains('=', StringComparison.Ordinal)).ToList();
        var environment = parts.Skip(command.Count).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        foreach (var (name, value) in settings ?? new Dictionary<string, string>())
        {
            environment[name] = value;
        }

        if (joinToken is not null)
        {
            environment["ECSLITE_JOIN_TOKEN"] = joinToken;
        }

        if (command[^1].EndsWith(".dll", StringComparison.Ordinal))
        {
            command.Insert(command.Count - 1, "dotnet");
        }

        return TestProcess.Start([.. command, "--coordinator", coordinator, "--data-dir", dataDir], environment);
    }

    public static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    public static IEnumerable<string> Options(string[] args, string name) =>
        args.Select((a, i) => (a, i)).Where(p => p.a == name && p.i + 1 < args.Length).Select(p => args[p.i + 1]);

    public static TimeSpan CpuTime(int pid) => FleetSimulator.ScaleRun.Process.CpuTime(pid);

    public static long RssKiB(int pid) => FleetSimulator.ScaleRun.Process.RssKiB(pid);

    public static long StorageWriteBytes(int pid) => FleetSimulator.ScaleRun.Process.StorageWriteBytes(pid);

    public static long WrittenBytes(int pid) => FleetSimulator.ScaleRun.Process.WrittenBytes(pid);

    /// <summary>Calls <paramref name="call"/> for 0 to <paramref name="count"/> - 1 from <paramref name="callers"/> callers, each waiting for its last call to end.</summary>
    public static Task FromCallersAsync(int callers, int count, Func<int, Task> call)
    {
        var next = -1;
        return Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                await call(i);
            }
        })));
    }

    /// <summary>A process's share of one core over <paramref name="window"/>, in percent.</summary>
    public static Task<double> CpuPercentAsync(int pid, TimeSpan window) => FleetSimulator.ScaleRun.Process.CpuPercentAsync(pid, window);

    /// <summary>
    /// Gives every thread of this process (and so the threads they start) the niceness <paramref name="nice"/>:
    /// simulated hosts stand in for machines of their own, so on a machine shared with the coordinator
    /// they take what it leaves rather than half of it. Linux keeps a niceness per thread.
    /// </summary>
    public static void LowerOwnPriority(int nice)
    {
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            _ = SetPriority(0 /* PRIO_PROCESS */, int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture), nice);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "setpriority")]
    private static extern int SetPriority(int which, int who, int prio);

    /// <summary>Runs a BenchmarkDotNet class in this process (the code under test is a library), 10 measured iterations.</summary>
    public static int RunInProcess<T>(string[] args, int warmups)
    {
        var config = ManualConfig.CreateMinimumViable()
            .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(warmups).WithIterationCount(10))
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        BenchmarkRunner.Run<T>(config, args.Skip(1).ToArray());
        return 0;
    }

    /// <summary>
    /// Each caller makes one call (connections and handshakes before the clock), then all call in a loop for
    /// <paramref name="phase"/>: calls per second, and the CPU <paramref name="cpu"/> reads, per call in µs.
    /// </summary>
    public static async Task<(double Rate, double CpuMicroseconds)> CallRateAsync(int callers, TimeSpan phase, Func<TimeSpan> cpu, Func<int, Func<Task>> call)
    {
        var calls = 0L;
        var ready = 0;
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watch = new System.Diagnostics.Stopwatch();
        var cpuBefore = TimeSpan.Zero;
        await Task.WhenAll(Enumerable.Range(0, callers).Select(async caller =>
        {
            var once = call(caller);
            await once();
            if (Interlocked.Increment(ref ready) == callers)
            {
                cpuBefore = cpu();
                watch.Start();
                start.SetResult();
            }

            await start.Task;
            while (watch.Elapsed < phase)
            {
                await once();
                Interlocked.Increment(ref calls);
            }
        }));
        var used = cpu() - cpuBefore;
        return (calls / watch.Elapsed.TotalSeconds, used.TotalMicroseconds / calls);
    }

    public static void Print(IEnumerable<(string Measure, string Value, string Target)> results)
    {
        Console.WriteLine();
        Console.WriteLine("| measure | result | target |");
        Console.WriteLine("| --- | --- | --- |");
        foreach (var (measure, value, target) in results)
        {
            Console.WriteLine($"| {measure} | {value} | {target} |");
        }
    }
}
