using System.Text;
using EcsLite.Coordinator.Store;
using Google.Protobuf;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The cluster store's contract, run against every implementation (the embedded SQLite store and etcd):
/// revisions and versions, compare-and-swap, ranges, order of queued writes, watch from a revision, durability.
/// Revisions are compared with the store's own at the start, as an etcd cluster's do not start at zero.
/// </summary>
public abstract class KeyValueStoreConformance
{
    /// <summary>A store of its own for the test: empty, in a directory or under an etcd root no other test uses.</summary>
    protected abstract Task<IKeyValueStore> OpenAsync();

    /// <summary>The same store opened again (after the one returned by <see cref="OpenAsync"/> was disposed).</summary>
    protected abstract Task<IKeyValueStore> ReopenAsync();

    protected static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    private static async Task<long> RevisionAsync(IKeyValueStore store) => (await store.RangeAsync("/", default)).Revision;

    [Fact]
    public async Task Puts_and_deletes_carry_etcd_revisions_and_versions()
    {
        await using var store = await OpenAsync();
        var start = await RevisionAsync(store);
        var first = await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("1")), new PutOp("/b", B("1"))]), default);
        var second = await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("2"))]), default);
        var noop = await store.TxnAsync(Txn.Unconditional([new DeleteOp("/missing")]), default);

        Assert.Equal((true, start + 1), (first.Succeeded, first.Revision));
        Assert.Equal(start + 2, second.Revision);
        Assert.Equal(start + 2, noop.Revision); // nothing changed: no new revision
        var range = await store.RangeAsync("/", default);
        var a = range.Kvs.Single(kv => kv.Key == "/a");
        Assert.Equal((start + 1, start + 2, 2L, "2"), (a.CreateRevision, a.ModRevision, a.Version, Encoding.UTF8.GetString(a.Value)));
        Assert.Equal(start + 2, range.Revision);
    }

    [Fact]
    public async Task A_put_given_a_record_stores_the_records_bytes_serialized_by_the_store()
    {
        await using var store = await OpenAsync();
        var schedule = new EcsLite.Store.V1.StoredSchedule { Schedule = new() { Name = "nightly", ScheduleExpression = "rate(1 minute)" } };
        var start = await RevisionAsync(store);
        await store.TxnAsync(Txn.Unconditional([new PutOp("/schedules/nightly", schedule), new PutOp("/b", B("1"))]), default);

        var stored = (await store.RangeAsync("/schedules/", default)).Kvs.Single();
        Assert.Equal(schedule.ToByteArray(), stored.Value);
        Assert.Equal(schedule, EcsLite.Store.V1.StoredSchedule.Parser.ParseFrom(stored.Value));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var response in store.WatchAsync("/schedules/", start + 1, cts.Token))
        {
            Assert.Equal(stored.Value, response.Events.Single().Kv.Value);
            break;
        }
    }

    [Fact]
    public async Task Compare_and_swap_applies_the_success_or_the_failure_branch()
    {
        await using var store = await OpenAsync();
        var created = await store.TxnAsync(new Txn([new Compare("/lock", CompareTarget.Version, CompareResult.Equal, 0)], [new PutOp("/lock", B("me"))]), default);
        var again = await store.TxnAsync(new Txn(
            [new Compare("/lock", CompareTarget.Version, CompareResult.Equal, 0)], [new PutOp("/lock", B("you"))], [new PutOp("/lost", B("you"))]), default);
        var stale = await store.TxnAsync(new Txn(
            [new Compare("/lock", CompareTarget.ModRevision, CompareResult.Less, created.Revision)], [new PutOp("/lock", B("stale"))]), default);
        var swap = await store.TxnAsync(new Txn(
            [new Compare("/lock", CompareTarget.ModRevision, CompareResult.Equal, created.Revision)], [new PutOp("/lock", B("next"))]), default);
        var newer = await store.TxnAsync(new Txn(
            [new Compare("/lock", CompareTarget.ModRevision, CompareResult.Greater, created.Revision), new Compare("/lock", CompareTarget.Version, CompareResult.NotEqual, 1)],
            [new PutOp("/lock", B("last"))]), default);

        Assert.Equal([true, false, false, true, true], new[] { created, again, stale, swap, newer }.Select(r => r.Succeeded));
        var kvs = (await store.RangeAsync("/", default)).Kvs.ToDictionary(kv => kv.Key, kv => Encoding.UTF8.GetString(kv.Value));
        Assert.Equal("last", kvs["/lock"]);
        Assert.Equal("you", kvs["/lost"]);
    }

    [Fact]
    public async Task Range_reads_only_the_prefix_in_key_order()
    {
        await using var store = await OpenAsync();
        await store.TxnAsync(Txn.Unconditional([new PutOp("/x/2", B("")), new PutOp("/x/1", B("")), new PutOp("/xy", B("")), new PutOp("/y", B(""))]), default);
        Assert.Equal(["/x/1", "/x/2"], (await store.RangeAsync("/x/", default)).Kvs.Select(kv => kv.Key));
        Assert.Empty((await store.RangeAsync("/z/", default)).Kvs);
    }

    [Fact]
    public async Task A_range_larger_than_one_response_is_read_whole_at_one_revision()
    {
        await using var store = await OpenAsync();
        var record = new byte[2000];
        for (var batch = 0; batch < 5; batch++)
        {
            await store.TxnAsync(Txn.Unconditional([.. Enumerable.Range(0, 1000).Select(i => new PutOp($"/big/{batch}-{i:D4}", record))]), default);
        }

        var range = await store.RangeAsync("/big/", default);
        Assert.Equal(5000, range.Kvs.Count);
        Assert.Equal(range.Kvs.Select(kv => kv.Key).Order(StringComparer.Ordinal), range.Kvs.Select(kv => kv.Key));
        Assert.All(range.Kvs, kv => Assert.Equal(2000, kv.Value.Length));
    }

    [Fact]
    public async Task Transactions_queued_together_take_effect_in_the_order_they_were_queued()
    {
        await using var store = await OpenAsync();
        var start = await RevisionAsync(store);

        // Queued without waiting, as the state machine queues its commands' writes: the last write of a key wins.
        var writes = Enumerable.Range(0, 500).Select(i => store.TxnAsync(Txn.Unconditional(i % 100 == 98
            ? [new DeleteOp("/k/same"), new PutOp($"/k/{i}", B($"{i}"))]
            : [new PutOp("/k/same", B($"{i}")), new PutOp($"/k/{i}", B($"{i}"))]), default)).ToList();
        var results = await Task.WhenAll(writes);

        Assert.All(results, r => Assert.True(r.Succeeded));
        Assert.Equal(results.Select(r => r.Revision).Order(), results.Select(r => r.Revision)); // revisions never go back in queue order
        Assert.InRange(results[0].Revision, start + 1, start + 500);
        var kvs = (await store.RangeAsync("/k/", default)).Kvs.ToDictionary(kv => kv.Key, kv => Encoding.UTF8.GetString(kv.Value));
        Assert.Equal(501, kvs.Count); // 500 keys of their own, and the shared one put again after the last delete
        Assert.Equal("499", kvs["/k/same"]);
    }

    [Fact]
    public async Task Committed_data_and_the_revision_survive_reopening()
    {
        long revision;
        await using (var store = await OpenAsync())
        {
            await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("1"))]), default);
            revision = (await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("2"))]), default)).Revision;
        }

        await using var reopened = await ReopenAsync();
        Assert.Equal(revision, await RevisionAsync(reopened));
        var next = await reopened.TxnAsync(Txn.Unconditional([new PutOp("/b", B("1"))]), default);
        Assert.Equal(revision + 1, next.Revision);
        Assert.Equal("2", Encoding.UTF8.GetString((await reopened.RangeAsync("/a", default)).Kvs[0].Value));
    }

    [Fact]
    public async Task Watch_replays_history_from_a_revision_then_follows_live_changes_under_its_prefix()
    {
        await using var store = await OpenAsync();
        var start = await RevisionAsync(store);
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/a", B("1"))]), default);          // start + 1
        await store.TxnAsync(Txn.Unconditional([new PutOp("/other", B("1"))]), default);        // start + 2
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/b", B("1"))]), default);          // start + 3

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = new List<(WatchEventType, string, long)>();
        var watching = Task.Run(async () =>
        {
            await foreach (var response in store.WatchAsync("/w/", start + 2, cts.Token))
            {
                seen.AddRange(response.Events.Select(change => (change.Type, change.Kv.Key, response.Revision)));
                if (seen.Count == 4)
                {
                    return;
                }
            }
        });

        await store.TxnAsync(Txn.Unconditional([new DeleteOp("/w/a")]), default);              // start + 4
        await store.TxnAsync(Txn.Unconditional([new PutOp("/elsewhere", B("1"))]), default);    // start + 5
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/d", B("1")), new PutOp("/w/c", B("1"))]), default); // start + 6
        await watching;

        // In revision order, and within a revision in key order.
        Assert.Equal([(WatchEventType.Put, "/w/b", start + 3), (WatchEventType.Delete, "/w/a", start + 4), (WatchEventType.Put, "/w/c", start + 6), (WatchEventType.Put, "/w/d", start + 6)], seen);
    }

    [Fact]
    public async Task A_transaction_that_changes_a_key_twice_is_refused()
    {
        await using var store = await OpenAsync();
        Assert.Throws<ArgumentException>(() => { _ = store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("1")), new DeleteOp("/a")]), default); });
    }
}
