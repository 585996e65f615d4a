using System.Text;
using EcsLite.Coordinator.Store;
using Microsoft.Data.Sqlite;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>The embedded store: the store contract (<see cref="KeyValueStoreConformance"/>), and what is its own: one revision per transaction in a group commit, a bounded watch buffer, history bounded in count and bytes, values stored once (a key's current one kept through compaction), and the move of an older build's file to that layout.</summary>
public sealed class SqliteKeyValueStoreTests : KeyValueStoreConformance, IDisposable
{
    private readonly string _directory = CoordinatorProcess.TempDirectory("ecslite-store");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    protected override Task<IKeyValueStore> OpenAsync() => Task.FromResult<IKeyValueStore>(SqliteKeyValueStore.Open(_directory));

    protected override Task<IKeyValueStore> ReopenAsync() => OpenAsync();

    [Fact]
    public async Task Concurrent_transactions_are_group_committed_with_one_revision_each()
    {
        await using var store = SqliteKeyValueStore.Open(_directory);
        var results = await Task.WhenAll(Enumerable.Range(0, 500).Select(i => store.TxnAsync(Txn.Unconditional([new PutOp($"/k/{i}", B($"{i}"))]), default)));
        Assert.Equal(Enumerable.Range(1, 500).Select(i => (long)i), results.Select(r => r.Revision).Order());
        Assert.Equal(500, (await store.RangeAsync("/k/", default)).Kvs.Count);
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

    [Fact]
    public async Task Compaction_keeps_each_keys_current_value_and_drops_the_values_it_replaced()
    {
        await using (var store = SqliteKeyValueStore.Open(_directory, historyToKeep: 10))
        {
            await store.TxnAsync(Txn.Unconditional([new PutOp("/kept", B("first")), new PutOp("/replaced", B("old"))]), default);
            await store.TxnAsync(Txn.Unconditional([new PutOp("/gone", B("soon"))]), default);
            await WriteUntilCompactedPastAsync(store, 3);

            // Revision 1 is compacted; its values are still what /kept and /replaced hold.
            Assert.Equal(["first", "old"], (await store.RangeAsync("/kept", default)).Kvs.Concat((await store.RangeAsync("/replaced", default)).Kvs).Select(kv => Encoding.UTF8.GetString(kv.Value)));
            var replaced = await store.TxnAsync(Txn.Unconditional([new PutOp("/replaced", B("new"))]), default);
            await store.TxnAsync(Txn.Unconditional([new DeleteOp("/gone")]), default);
            await WriteUntilCompactedPastAsync(store, replaced.Revision + 1);
            Assert.Equal(2, (await store.RangeAsync("/replaced", default)).Kvs.Single().Version);
        }

        // One value is left of each key written before the last compaction: its current one, or none once deleted.
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_directory, SqliteKeyValueStore.FileName)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT key, COUNT(*) FROM history WHERE key IN ('/kept', '/replaced', '/gone') GROUP BY key ORDER BY key";
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            rows.Add($"{reader.GetString(0)} {reader.GetInt64(1)}");
        }

        Assert.Equal(["/kept 1", "/replaced 1"], rows);
        await using var reopened = SqliteKeyValueStore.Open(_directory);
        Assert.Equal(["/c", "/kept", "/replaced"], (await reopened.RangeAsync("/", default)).Kvs.Select(kv => kv.Key));
        Assert.Equal("new", Encoding.UTF8.GetString((await reopened.RangeAsync("/replaced", default)).Kvs.Single().Value));
    }

    [Fact]
    public async Task A_store_of_an_older_build_keeps_every_record_and_revision()
    {
        // The layout before values were stored once: each key's current value in the kv table too.
        Directory.CreateDirectory(_directory);
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(_directory, SqliteKeyValueStore.FileName)};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                PRAGMA page_size = 16384; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;
                CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE history (revision INTEGER NOT NULL, key TEXT NOT NULL, value BLOB, create_revision INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (revision, key)) WITHOUT ROWID;
                CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO meta VALUES ('revision', 7), ('compact_revision', 5);
                INSERT INTO kv VALUES ('/clusters/default', X'61', 1, 1, 1), ('/tasks/t', X'6263', 2, 7, 3);
                INSERT INTO history VALUES (6, '/tasks/t', X'62', 2, 2), (7, '/tasks/t', X'6263', 2, 3);
                """;
            command.ExecuteNonQuery();
        }

        await using (var store = SqliteKeyValueStore.Open(_directory))
        {
            Assert.Equal(7, store.Revision);
            Assert.Equal(["/clusters/default a 1 1 1", "/tasks/t bc 2 7 3"], (await store.RangeAsync("/", default)).Kvs.Select(Describe));
            var events = new List<string>();
            await foreach (var response in store.WatchAsync("/", 6, default))
            {
                events.AddRange(response.Events.Select(e => Describe(e.Kv)));
                if (response.Revision == 7)
                {
                    break;
                }
            }

            Assert.Equal(["/tasks/t b 2 6 2", "/tasks/t bc 2 7 3"], events);
            await store.TxnAsync(Txn.Unconditional([new PutOp("/tasks/t", B("d"))]), default);
        }

        await using var reopened = SqliteKeyValueStore.Open(_directory);
        Assert.Equal(["/clusters/default a 1 1 1", "/tasks/t d 2 8 4"], (await reopened.RangeAsync("/", default)).Kvs.Select(Describe));
    }

    private static string Describe(KeyValue kv) => $"{kv.Key} {Encoding.UTF8.GetString(kv.Value)} {kv.CreateRevision} {kv.ModRevision} {kv.Version}";

    /// <summary>Rewrites one key until the store has compacted its history past <paramref name="revision"/>.</summary>
    private static async Task WriteUntilCompactedPastAsync(SqliteKeyValueStore store, long revision)
    {
        for (var i = 0; i < 20_000; i++)
        {
            await store.TxnAsync(Txn.Unconditional([new PutOp("/c", B($"{i}"))]), default);
            if (i % 500 == 0)
            {
                try
                {
                    await foreach (var _ in store.WatchAsync("/", revision, default))
                    {
                        break;
                    }
                }
                catch (CompactedException)
                {
                    return;
                }
            }
        }

        throw new InvalidOperationException($"revision {revision} was never compacted");
    }
}
