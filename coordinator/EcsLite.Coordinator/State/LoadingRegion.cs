using System.Runtime;

namespace EcsLite.Coordinator.State;

/// <summary>
/// Loading the state builds one big graph of objects that all stay alive, so garbage collections during
/// it only copy that graph from generation to generation: with 100,000 tasks stored they were half of
/// the start-up time. This asks the GC not to collect until the load has allocated what it is expected
/// to. Where the runtime cannot promise that (a heap hard limit, a small 32-bit heap) the load runs with
/// collections as usual; if the guess is short the GC simply resumes collecting.
/// </summary>
public sealed class LoadingRegion : IDisposable
{
    /// <summary>Bytes a load allocates per byte of stored records (measured: parsing and the indexes, with room).</summary>
    public const int AllocationPerRecordByte = 8;

    private LoadingRegion(bool started) => Started = started;

    /// <summary>Whether the runtime granted the region (it need not).</summary>
    public bool Started { get; }

    public static LoadingRegion Begin(long recordBytes)
    {
        try
        {
            return new LoadingRegion(GC.TryStartNoGCRegion(Math.Max(recordBytes * AllocationPerRecordByte, 1 << 20)));
        }
        catch (ArgumentOutOfRangeException)
        {
            return new LoadingRegion(false);
        }
    }

    public void Dispose()
    {
        if (Started && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
        {
            GC.EndNoGCRegion();
        }
    }
}
