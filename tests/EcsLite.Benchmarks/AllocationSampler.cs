using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace EcsLite.Benchmarks;

/// <summary>
/// The runtime's allocation samples (one event per ~100 KB allocated, naming the type that crossed it),
/// added up by type: where a benchmark's allocation goes, without a profiler.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new(StringComparer.Ordinal);

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.PayloadNames is not { } names)
        {
            return;
        }

        var type = e.Payload![names.IndexOf("TypeName")] as string ?? "?";
        var amount = Convert.ToInt64(e.Payload[names.IndexOf("AllocationAmount64")], System.Globalization.CultureInfo.InvariantCulture);
        _bytes.AddOrUpdate(type, amount, (_, sum) => sum + amount);
    }

    /// <summary>The types that took most, in MiB, largest first, and resets the sums.</summary>
    public string Top(int count)
    {
        var top = _bytes.OrderByDescending(p => p.Value).Take(count).Select(p => $"  {p.Value / 1048576.0,7:N1} MiB  {p.Key}");
        var text = string.Join(Environment.NewLine, top);
        _bytes.Clear();
        return text;
    }
}
