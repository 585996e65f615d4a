using System.Text;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>The embedded store's etcd-shaped contract: revisions, compare-and-swap, range, watch, durability.</summary>
public sealed class SqliteKeyValueStoreTests : IDisposable
{
    private readonly string _directory = CoordinatorProcess.TempDirectory("ecslite-store");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public async Task Puts_and_deletes_carry_etcd_revisions_and_versions()
    {
        await using var store = SqliteKeyValueStore.Open(_directory);
        var first = await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("1")), new PutOp("/b", B("1"))]), default);
        var second = await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("2"))]), default);
        var noop = await store.TxnAsync(Txn.Unconditional([new DeleteOp("/missing")]), default);

        Assert.Equal((true, 1L), (first.Succeeded, first.Revision));
        Assert.Equal(2, second.Revision);
        Assert.Equal(2, noop.Revision);
        var range = await store.RangeAsync("/", default);
        var a = range.Kvs.Single(kv => kv.Key == "/a");
        Assert.Equal((1L, 2L, 2L, "2"), (a.CreateRevision, a.ModRevision, a.Version, Encoding.UTF8.GetString(a.Value)));
        Assert.Equal(2, range.Revision);
    }

    [Fact]
    public async Task Compare_and_swap_applies_the_success_or_the_failure_branch()
    {
        await using var store = SqliteKeyValueStore.Open(_directory);
        var created = await store.TxnAsync(new Txn([new Compare("/lock", CompareTarget.Version, CompareResult.Equal, 0)], [new PutOp("/lock", B("me"))]), default);
        var again = await store.TxnAsync(new Txn(
            [new Compare("/lock", CompareTarget.Version, CompareResult.Equal, 0)], [new PutOp("/lock", B("you"))], [new PutOp("/lost", B("you"))]), default);
        var swap = await store.TxnAsync(new Txn(
            [new Compare("/lock", CompareTarget.ModRevision, CompareResult.Equal, created.Revision)], [new PutOp("/lock", B("next"))]), default);

        Assert.True(created.Succeeded);
        Assert.False(again.Succeeded);
        Assert.True(swap.Succeeded);
        var kvs = (await store.RangeAsync("/", default)).Kvs.ToDictionary(kv => kv.Key, kv => Encoding.UTF8.GetString(kv.Value));
        Assert.Equal("next", kvs["/lock"]);
        Assert.Equal("you", kvs["/lost"]);
    }

    [Fact]
    public async Task Range_reads_only_the_prefix()
    {
        await using var store = SqliteKeyValueStore.Open(_directory);
        await store.TxnAsync(Txn.Unconditional([new PutOp("/x/1", B("")), new PutOp("/x/2", B("")), new PutOp("/xy", B("")), new PutOp("/y", B(""))]), default);
        Assert.Equal(["/x/1", "/x/2"], (await store.RangeAsync("/x/", default)).Kvs.Select(kv => kv.Key));
    }

    [Fact]
    public async Task Concurrent_transactions_are_group_committed_with_one_revision_each()
    {
        await using var store = SqliteKeyValueStore.Open(_directory);
        var results = await Task.WhenAll(Enumerable.Range(0, 500).Select(i => store.TxnAsync(Txn.Unconditional([new PutOp($"/k/{i}", B($"{i}"))]), default)));
        Assert.Equal(Enumerable.Range(1, 500).Select(i => (long)i), results.Select(r => r.Revision).Order());
        Assert.Equal(500, (await store.RangeAsync("/k/", default)).Kvs.Count);
    }

    [Fact]
    public async Task Committed_data_and_the_revision_survive_reopening()
    {
        await using (var store = SqliteKeyValueStore.Open(_directory))
        {
            await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("1"))]), default);
            await store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("2"))]), default);
        }

        await using var reopened = SqliteKeyValueStore.Open(_directory);
        Assert.Equal(2, reopened.Revision);
        var next = await reopened.TxnAsync(Txn.Unconditional([new PutOp("/b", B("1"))]), default);
        Assert.Equal(3, next.Revision);
        Assert.Equal("2", Encoding.UTF8.GetString((await reopened.RangeAsync("/a", default)).Kvs[0].Value));
    }

    [Fact]
    public async Task Watch_replays_history_from_a_revision_then_follows_live_changes_under_its_prefix()
    {
        await using var store = SqliteKeyValueStore.Open(_directory);
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/a", B("1"))]), default);          // 1
        await store.TxnAsync(Txn.Unconditional([new PutOp("/other", B("1"))]), default);        // 2
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/b", B("1"))]), default);          // 3

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = new List<(WatchEventType, string, long)>();
        var watching = Task.Run(async () =>
        {
            await foreach (var response in store.WatchAsync("/w/", 2, cts.Token))
            {
                seen.AddRange(response.Events.Select(change => (change.Type, change.Kv.Key, response.Revision)));
                if (seen.Count == 3)
                {
                    return;
                }
            }
        });

        await store.TxnAsync(Txn.Unconditional([new DeleteOp("/w/a")]), default);              // 4
        await store.TxnAsync(Txn.Unconditional([new PutOp("/elsewhere", B("1"))]), default);    // 5
        await store.TxnAsync(Txn.Unconditional([new PutOp("/w/c", B("1"))]), default);          // 6
        await watching;

        Assert.Equal([(WatchEventType.Put, "/w/b", 3L), (WatchEventType.Delete, "/w/a", 4L), (WatchEventType.Put, "/w/c", 6L)], seen);
    }

    [Fact]
    public async Task A_watcher_that_falls_behind_is_ended_with_the_revision_to_resume_from_and_resuming_misses_nothing()
    {
        await using var store = SqliteKeyValueStore.Open(_directory, watchBuffer: 100);
        await using var watch = store.WatchAsync("/l/", 1, default).GetAsyncEnumerator();
        var first = watch.MoveNextAsync(); // registers the watcher; it then reads nothing while 300 changes commit
        for (var i = 0; i < 100; i++)
        {
            // Three keys a revision: the buffer (100) fills part way through the 34th revision.
            await store.TxnAsync(Txn.Unconditional([new PutOp($"/l/{i}/a", B("1")), new PutOp($"/l/{i}/b", B("1")), new PutOp($"/l/{i}/c", B("1"))]), default);
        }

        Assert.True(await first);
        var seen = new List<WatchResponse> { watch.Current };
        var lagged = await Assert.ThrowsAsync<WatchLaggedException>(async () =>
        {
            while (await watch.MoveNextAsync())
            {
                seen.Add(watch.Current);
            }
        });

        // Whole revisions only, then the next one to read; from there history has the rest.
        Assert.All(seen, r => Assert.Equal(3, r.Events.Count));
        Assert.Equal(seen[^1].Revision + 1, lagged.ResumeRevision);
        Assert.InRange(seen.Count, 33, 34); // 33 revisions waiting (99 changes); a 34th if the first was read live
        await foreach (var response in store.WatchAsync("/l/", lagged.ResumeRevision, default))
        {
            seen.Add(response);
            if (response.Revision == 100)
            {
                break;
            }
        }

        Assert.Equal(Enumerable.Range(1, 100).Select(r => (long)r), seen.Select(r => r.Revision));
    }

    [Fact]
    public async Task Watching_from_a_compacted_revision_is_refused()
    {
        await using var store = SqliteKeyValueStore.Open(_directory, historyToKeep: 10);
        for (var i = 0; i < 5000; i++)
        {
            await store.TxnAsync(Txn.Unconditional([new PutOp("/c", B($"{i}"))]), default);
        }

        var error = await Assert.ThrowsAsync<CompactedException>(async () =>
        {
            await foreach (var _ in store.WatchAsync("/", 1, default))
            {
            }
        });
        Assert.True(error.CompactRevision > 1);
    }

    [Fact]
    public async Task A_transaction_that_changes_a_key_twice_is_refused()
    {
        await using var store = SqliteKeyValueStore.Open(_directory);
        Assert.Throws<ArgumentException>(() => { _ = store.TxnAsync(Txn.Unconditional([new PutOp("/a", B("1")), new DeleteOp("/a")]), default); });
    }

    [Fact]
    public async Task Space_is_given_back_after_records_are_deleted_and_history_is_bounded_in_bytes()
    {
        // 20,000 task-sized records written, rewritten and deleted, with history kept to 4 MiB.
        await using var store = SqliteKeyValueStore.Open(_directory, historyToKeep: 100_000, historyBytesToKeep: 4 * 1024 * 1024);
        await store.TxnAsync(Txn.Unconditional([new PutOp("/clusters/default", B("cluster"))]), default);
        var before = store.SizeOnDisk;
        var record = new byte[1500];
        Random.Shared.NextBytes(record);
        for (var round = 0; round < 20; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => store.TxnAsync(Txn.Unconditional([new PutOp($"/tasks/{round}-{i}", record)]), default)));
            await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => store.TxnAsync(Txn.Unconditional([new PutOp($"/tasks/{round}-{i}", record)]), default)));
            await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => store.TxnAsync(Txn.Unconditional([new DeleteOp($"/tasks/{round}-{i}")]), default)));
        }

        var peak = store.SizeOnDisk;
        await store.TxnAsync(Txn.Unconditional([new PutOp("/clusters/default", B("cluster"))]), default); // one more pass of housekeeping

        // 60 MB went through; the history (4 MiB at most, cut to 3 MiB) and the emptied pages do not stay.
        Assert.True(store.SizeOnDisk < 12 * 1024 * 1024, $"{store.SizeOnDisk} bytes on disk (before: {before}, peak {peak}; db {new FileInfo(store.Path).Length}, wal {new FileInfo(store.Path + "-wal").Length})");
        var oldest = await Assert.ThrowsAsync<CompactedException>(async () =>
        {
            await foreach (var _ in store.WatchAsync("/tasks/", 1, default))
            {
            }
        });
        Assert.True(oldest.CompactRevision > 0);
        Assert.Single((await store.RangeAsync("/", default)).Kvs);
    }
}
