using System.Runtime;
using EcsLite.Coordinator.State;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The load's request for no collections: granted where the runtime can, harmless where it cannot.
/// Run alone: the region is process-wide, and other tests' allocations would count against it.
/// </summary>
[Collection(nameof(LoadingRegionTests))]
[CollectionDefinition(nameof(LoadingRegionTests), DisableParallelization = true)]
public sealed class LoadingRegionTests
{
    [Fact]
    public void A_region_is_granted_for_a_load_and_ended_after_it_and_an_impossible_one_is_declined()
    {
        using (var region = LoadingRegion.Begin(4 << 20))
        {
            Assert.True(region.Started);
            var collections = GC.CollectionCount(0);
            var kept = Enumerable.Range(0, 10_000).Select(i => new byte[100]).ToList();
            Assert.Equal(collections, GC.CollectionCount(0));
            Assert.Equal(10_000, kept.Count);
        }

        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);

        using var impossible = LoadingRegion.Begin(long.MaxValue / LoadingRegion.AllocationPerRecordByte);
        Assert.False(impossible.Started);
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }
}
