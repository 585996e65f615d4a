using System.Text;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>One real etcd member for the etcd store tests; each test works under a root of its own.</summary>
public sealed class EtcdFixture : IAsyncLifetime
{
    public EtcdCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await EtcdCluster.StartAsync();

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>The etcd store against a real etcd (Debian's etcd-server): the store contract, and what is its own.</summary>
public sealed class EtcdKeyValueStoreTests(EtcdFixture etcd) : KeyValueStoreConformance, IClassFixture<EtcdFixture>
{
    private readonly string _root = $"/test-{Guid.NewGuid():N}";

    protected override Task<IKeyValueStore> OpenAsync() => Task.FromResult<IKeyValueStore>(EtcdKeyValueStore.Connect(etcd.Cluster.Location(_root)));

    protected override Task<IKeyValueStore> ReopenAsync() => OpenAsync();

    [Fact]
    public async Task Stores_under_different_roots_of_one_etcd_see_only_their_own_keys()
    {
        await using var mine = await OpenAsync();
        await using var theirs = EtcdKeyValueStore.Connect(etcd.Cluster.Location(_root + "-other"));
        await mine.TxnAsync(Txn.Unconditional([new PutOp("/clusters/default", B("mine"))]), default);
        await theirs.TxnAsync(Txn.Unconditional([new PutOp("/clusters/default", B("theirs"))]), default);

        var kv = Assert.Single((await mine.RangeAsync("/", default)).Kvs);
        Assert.Equal(("/clusters/default", "mine"), (kv.Key, Encoding.UTF8.GetString(kv.Value)));
    }

    [Fact]
    public async Task Unconditional_writes_queued_together_are_one_etcd_transaction_and_a_conditional_one_goes_alone()
    {
        await using var store = await OpenAsync();
        var start = (await store.RangeAsync("/", default)).Revision;
        var together = Enumerable.Range(0, 200).Select(i => store.TxnAsync(Txn.Unconditional([new PutOp($"/g/{i}", B("x"))]), default)).ToList();
        var conditional = store.TxnAsync(new Txn([new Compare("/g/0", CompareTarget.Version, CompareResult.Equal, 1)], [new PutOp("/g/0", B("y"))]), default);
        var results = await Task.WhenAll(together);

        // Group commit: far fewer revisions than writes; the conditional one saw every write queued before it.
        Assert.InRange(results.Select(r => r.Revision).Distinct().Count(), 1, 50);
        Assert.True((await conditional).Succeeded);
        Assert.True((await conditional).Revision > results.Max(r => r.Revision));
        Assert.InRange((await conditional).Revision, start + 2, start + 51);
    }

    [Fact]
    public async Task Watching_from_a_compacted_revision_is_refused_with_the_oldest_revision_kept()
    {
        await using var store = await OpenAsync();
        long last = 0;
        for (var i = 0; i < 5; i++)
        {
            last = (await store.TxnAsync(Txn.Unconditional([new PutOp("/c", B($"{i}"))]), default)).Revision;
        }

        await ((EtcdKeyValueStore)store).CompactAsync(last, default);
        var error = await Assert.ThrowsAsync<CompactedException>(async () =>
        {
            await foreach (var _ in store.WatchAsync("/", last - 2, default))
            {
            }
        });
        Assert.Equal((last - 2, last), (error.RequestedRevision, error.CompactRevision));
    }

    [Theory]
    [InlineData("etcd://127.0.0.1:2379", "127.0.0.1:2379", "")]
    [InlineData("etcd://10.0.0.1:2379,10.0.0.2:2379, etcd-3.lan:2379/ecslite/", "10.0.0.1:2379,10.0.0.2:2379,etcd-3.lan:2379", "/ecslite")]
    public void The_store_location_names_the_members_and_a_root(string location, string endpoints, string root)
    {
        var parsed = EtcdKeyValueStore.ParseLocation(location);
        Assert.Equal((endpoints, root), (string.Join(",", parsed.Endpoints), parsed.Root));
    }

    [Theory]
    [InlineData("http://127.0.0.1:2379")]
    [InlineData("etcd://")]
    [InlineData("etcd://127.0.0.1")]
    [InlineData("etcd://user@127.0.0.1:2379")]
    public void A_location_that_is_not_etcd_host_port_is_refused(string location) =>
        Assert.Throws<FormatException>(() => EtcdKeyValueStore.ParseLocation(location));
}
