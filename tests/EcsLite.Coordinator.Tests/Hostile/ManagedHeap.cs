using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace EcsLite.Coordinator.Tests.Hostile;

/// <summary>
/// What another .NET process's managed heap holds alive, read over its diagnostics port as dotnet-gcdump
/// does: an EventPipe session with the GC heap-collect keyword makes the runtime run a full, blocking
/// collection, and its heap statistics say what survived it in every generation (the generations' sizes
/// would count free space left between survivors too, which a burst of large requests leaves behind).
/// </summary>
public static class ManagedHeap
{
    public static async Task<long> LiveBytesAsync(int processId, TimeSpan timeout)
    {
        var client = new DiagnosticsClient(processId);
        var keywords = (long)(ClrTraceEventParser.Keywords.GC | ClrTraceEventParser.Keywords.GCHeapCollect);
        using var session = client.StartEventPipeSession([new EventPipeProvider(ClrTraceEventParser.ProviderName, EventLevel.Informational, keywords)], requestRundown: false);
        using var source = new EventPipeEventSource(session.EventStream);
        var induced = false;
        long total = -1;
        source.Clr.GCStart += e => induced |= e.Reason == GCReason.Induced;
        source.Clr.GCHeapStats += e =>
        {
            if (induced && total < 0)
            {
                total = e.TotalPromoted;
                session.Stop();
            }
        };

        var reading = Task.Run(source.Process);
        if (await Task.WhenAny(reading, Task.Delay(timeout)) != reading)
        {
            session.Stop();
            throw new TimeoutException($"no induced collection in process {processId} within {timeout}");
        }

        return total >= 0 ? total : throw new InvalidOperationException($"process {processId} reported no heap statistics");
    }
}
