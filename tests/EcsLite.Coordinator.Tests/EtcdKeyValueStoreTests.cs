using EcsLite.Coordinator.State;
using System.Text;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;
using Microsoft.Extensions.Logging.Abstractions;

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

    [Fact]
    public async Task A_leader_whose_lease_ends_stops_acting_and_its_writes_are_refused_before_the_next_leader_writes()
    {
        await using var first = EtcdKeyValueStore.Connect(etcd.Cluster.Location(_root));
        await using var second = EtcdKeyValueStore.Connect(etcd.Cluster.Location(_root));
        var start = (await first.RangeAsync("/", default)).Revision;
        var ttl = TimeSpan.FromSeconds(3);
        LeaderRecord? seen = null;
        await using var leader = await EtcdLeadership.CampaignAsync(first, new LeaderRecord("first", "https://127.0.0.1:1"), ttl, _ => { }, NullLogger.Instance, default);
        var waiting = EtcdLeadership.CampaignAsync(second, new LeaderRecord("second", "https://127.0.0.1:2"), ttl, l => seen = l, NullLogger.Instance, default);
        await first.TxnAsync(Txn.Unconditional([new PutOp("/w/first-1", B("1"))]), default);
        await Task.Delay(TimeSpan.FromSeconds(4)); // longer than the lease: kept alive, the first still leads
        Assert.False(waiting.IsCompleted);
        Assert.Equal(new LeaderRecord("first", "https://127.0.0.1:1"), seen); // the one waiting knows where to forward changes
        await first.TxnAsync(Txn.Unconditional([new PutOp("/w/first-2", B("1"))]), default);

        // Its lease is revoked (as etcd does when it was cut off for longer than the time to live): it is
        // told, its writes are refused from then on, and the waiting coordinator leads.
        var lease = (await first.Connection.KVClient.RangeAsync(new Etcdserverpb.RangeRequest { Key = first.EtcdKey(EtcdLeadership.Key) })).Kvs[0].Lease;
        await first.Connection.LeaseClient.LeaseRevokeAsync(new Etcdserverpb.LeaseRevokeRequest { ID = lease });
        await Assert.ThrowsAsync<LeadershipLostException>(() => first.TxnAsync(Txn.Unconditional([new PutOp("/w/first-3", B("1"))]), default));
        await Eventually.HoldsAsync(() => (bool)leader.Lost.IsCancellationRequested, TimeSpan.FromSeconds(5), "the first told it lost the lead");
        await using var next = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        await second.TxnAsync(Txn.Unconditional([new PutOp("/w/second-1", B("1"))]), default);
        await Assert.ThrowsAsync<LeadershipLostException>(() => first.TxnAsync(Txn.Unconditional([new PutOp("/w/first-4", B("1"))]), default));

        // The store's history: the first's writes, all before the second led; then only the second's.
        var history = new List<(string Key, long Revision)>();
        await foreach (var response in first.WatchAsync("/w/", start + 1, default))
        {
            history.AddRange(response.Events.Select(e => (e.Kv.Key, response.Revision)));
            if (history.Count == 3)
            {
                break;
            }
        }

        Assert.Equal(["/w/first-1", "/w/first-2", "/w/second-1"], history.Select(h => h.Key));
        Assert.True(history[1].Revision < next.Revision && next.Revision < history[2].Revision, $"{string.Join(", ", history)}; the second led from {next.Revision}");
    }

    [Fact]
    public async Task A_leader_whose_etcd_loses_its_quorum_holds_still_within_its_lease_and_gives_up_after_a_second_one()
    {
        await using var cluster = await EtcdCluster.StartAsync(members: 3);
        await using var store = EtcdKeyValueStore.Connect(cluster.Location("/quorum"));
        var ttl = TimeSpan.FromSeconds(3);
        var holds = new HoldLog();
        await using var leader = await EtcdLeadership.CampaignAsync(store, new LeaderRecord("only", ""), ttl, _ => { }, NullLogger.Instance, default, holds.Add);
        await cluster.KillAsync(1);
        await cluster.KillAsync(2);
        var lost = System.Diagnostics.Stopwatch.StartNew();
        await Eventually.HoldsAsync(() => holds.Held, ttl + TimeSpan.FromSeconds(5), "the leader told to hold still");
        // etcd's raft leader goes on renewing leases until it sees its quorum gone (an election timeout, 1 s), and
        // each renewal extends the lease in etcd too; after the last one the leader has its lease less half a second.
        Assert.True(lost.Elapsed < ttl + TimeSpan.FromSeconds(2), $"it held still {lost.Elapsed.TotalSeconds:0.0} s after the quorum was lost");
        Assert.False(leader.Lost.IsCancellationRequested);

        // No answer for a second time to live: cut off, as far as it can tell; it gives up the lead, still holding.
        await Eventually.HoldsAsync(() => (bool)leader.Lost.IsCancellationRequested, 2 * ttl + TimeSpan.FromSeconds(5), "the leader told it lost the lead");
        Assert.True(lost.Elapsed < 2 * ttl + TimeSpan.FromSeconds(2), $"it gave up {lost.Elapsed.TotalSeconds:0.0} s after the quorum was lost");
        Assert.Equal([true], holds.Changes);
        await Assert.ThrowsAnyAsync<Exception>(() => store.TxnAsync(Txn.Unconditional([new PutOp("/late", B("1"))]), default));
    }

    [Fact]
    public async Task A_leader_holding_still_acts_again_when_etcd_renews_its_lease_and_its_fence_still_holds()
    {
        await using var cluster = await EtcdCluster.StartAsync(members: 3);
        await using var store = EtcdKeyValueStore.Connect(cluster.Location("/held"));
        var ttl = TimeSpan.FromSeconds(6);
        var holds = new HoldLog();
        await using var leader = await EtcdLeadership.CampaignAsync(store, new LeaderRecord("only", ""), ttl, _ => { }, NullLogger.Instance, default, holds.Add);
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/before", B("1"))]), default);

        // No quorum for longer than the lease (an etcd election that drags on); then a member is back.
        await cluster.KillAsync(1);
        await cluster.KillAsync(2);
        await Eventually.HoldsAsync(() => holds.Held, ttl + TimeSpan.FromSeconds(5), "the leader told to hold still");
        await cluster.RestartAsync(1);

        // The new raft leader kept the lease (etcd extends every lease when its leader changes), so nobody else can
        // have led: the leader acts again, and its fenced writes go through.
        await Eventually.HoldsAsync(() => !holds.Held, ttl, "the leader told to act again");
        Assert.Equal([true, false], holds.Changes);
        Assert.False(leader.Lost.IsCancellationRequested);
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/after", B("1"))]), default);
        Assert.Equal(["/w/after", "/w/before"], (await store.RangeAsync("/w/", default)).Kvs.Select(kv => kv.Key).Order());
    }

    /// <summary>What a leadership told its coordinator about holding still, in order.</summary>
    private sealed class HoldLog
    {
        private readonly List<bool> _changes = [];

        public void Add(bool hold)
        {
            lock (_changes)
            {
                _changes.Add(hold);
            }
        }

        public bool Held => Changes is [.., true];

        public List<bool> Changes
        {
            get
            {
                lock (_changes)
                {
                    return [.. _changes];
                }
            }
        }
    }

    [Fact]
    public async Task Over_TLS_the_store_trusts_only_etcd_of_its_CA_and_presents_its_client_certificate()
    {
        await using var secure = await EtcdCluster.StartAsync(tls: true);
        var (ca, certificate, key) = secure.Tls!.Value;
        await using (var store = EtcdKeyValueStore.Connect(secure.Location("/tls"), ca, certificate, key))
        {
            await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("1"))]), default);
            Assert.Equal("1", Encoding.UTF8.GetString((await store.RangeAsync("/a", default)).Kvs.Single().Value));
        }

        // Without a client certificate etcd refuses the connection; trusting another CA, the store refuses etcd.
        await using (var anonymous = EtcdKeyValueStore.Connect(secure.Location("/tls"), ca))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => anonymous.RangeAsync("/", default));
        }

        await using var other = await EtcdCluster.StartAsync(tls: true);
        await using var mistrusting = EtcdKeyValueStore.Connect(secure.Location("/tls"), other.Tls!.Value.CaFile, other.Tls!.Value.CertificateFile, other.Tls!.Value.KeyFile);
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => mistrusting.RangeAsync("/", default));
        Assert.Contains("SSL", refused.Status.DebugException?.ToString() ?? refused.Status.Detail, StringComparison.OrdinalIgnoreCase);
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
