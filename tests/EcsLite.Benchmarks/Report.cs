using System.Globalization;

namespace EcsLite.Benchmarks;

/// <summary>Options, process readings from /proc, and the Markdown table every benchmark prints.</summary>
internal static class Report
{
    public static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    public static IEnumerable<string> Options(string[] args, string name) =>
        args.Select((a, i) => (a, i)).Where(p => p.a == name && p.i + 1 < args.Length).Select(p => args[p.i + 1]);

    /// <summary>User plus system CPU time of a process so far, from /proc/PID/stat.</summary>
    public static TimeSpan CpuTime(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
    }

    public static long RssKiB(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    /// <summary>A process's share of one core over <paramref name="window"/>, in percent.</summary>
    public static async Task<double> CpuPercentAsync(int pid, TimeSpan window)
    {
        var before = CpuTime(pid);
        await Task.Delay(window);
        return 100 * (CpuTime(pid) - before).TotalSeconds / window.TotalSeconds;
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
