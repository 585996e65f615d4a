using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace EcsLite.Coordinator.Store;

/// <summary>
/// The embedded cluster store: one SQLite file in WAL mode with synchronous=FULL, so a commit is on
/// disk before it is acknowledged. One writer loop applies transactions in arrival order and commits
/// whatever has queued up as one SQLite transaction (group commit: one fsync for many writes).
/// Values are stored once, by revision (the history table), so a transaction appends its values in
/// revision order; the keys table holds only each key's revisions and version. A watcher resumes from the
/// history, which is bounded in revisions and in bytes: compaction drops values that are neither that recent
/// nor a key's current one. (Keeping values in the keys table as well wrote each twice, and each changed key
/// rewrote a whole page of it: a slot of 10,000 schedule fires passed 1-1.5 GB through write().)
/// The file gives back the space of what was deleted (incremental auto-vacuum), and the write-ahead log is
/// truncated after checkpoints.
/// </summary>
public sealed class SqliteKeyValueStore : IKeyValueStore
{
    public const string FileName = "cluster-store.db";
    private const int MaxBatch = 512;
    private const string PrefixEnd = "\uFFFF";

    private readonly string _connectionString;
    private readonly SqliteConnection _writer;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _watchGate = new();
    private readonly List<Watcher> _watchers = [];
    private readonly long _historyToKeep;
    private readonly long _historyBytesToKeep;
    private readonly int _watchBuffer;
    private readonly Task _writerLoop;
    private long _revision;
    private long _compactRevision;
    private long _compactedUpTo; // the history rows up to here are a key's current value or gone (on disk: compact_revision)
    private long _commitsSinceCompaction;

    // The history's size per revision since the last compaction, oldest first: what a compaction by bytes cuts.
    private readonly Queue<(long Revision, long Bytes)> _historySizes = new();
    private long _historyBytes;

    private const int PageSize = 16384;

    /// <summary>Free pages worth giving back to the file system (4 MiB).</summary>
    private const long VacuumAtFreePages = 256;

    private SqliteKeyValueStore(string path, long historyToKeep, long historyBytesToKeep, int watchBuffer)
    {
        _watchBuffer = watchBuffer;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
        _historyToKeep = historyToKeep;
        _historyBytesToKeep = historyBytesToKeep;
        _writer = new SqliteConnection(_connectionString);
        _writer.Open();

        // The page size and incremental auto-vacuum are chosen before the first table exists; a store made
        // by an older build is rebuilt once (VACUUM, outside WAL mode) to take them. 16 KiB pages hold a
        // task's record (1-3 KiB) inline; on 4 KiB pages each took an overflow page of its own as well.
        if (Number(Scalar(_writer, "PRAGMA auto_vacuum")) != 2 || Number(Scalar(_writer, "PRAGMA page_size")) != PageSize)
        {
            Execute(_writer, $"PRAGMA journal_mode = DELETE; PRAGMA page_size = {PageSize}; PRAGMA auto_vacuum = INCREMENTAL; VACUUM;");
        }

        Execute(_writer, """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            PRAGMA wal_autocheckpoint = 256;
            PRAGMA journal_size_limit = 4194304;
            CREATE TABLE IF NOT EXISTS keys (
                key TEXT PRIMARY KEY, create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS history (
                revision INTEGER NOT NULL, key TEXT NOT NULL, value BLOB,
                create_revision INTEGER NOT NULL, version INTEGER NOT NULL,
                PRIMARY KEY (revision, key)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
            INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compact_revision', 0);
            """);
        if (Number(Scalar(_writer, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'kv'")) > 0)
        {
            // A store of an older build kept each current value in its keys table (kv): moved to the history, once.
            Execute(_writer, """
                BEGIN IMMEDIATE;
                INSERT OR REPLACE INTO history (revision, key, value, create_revision, version)
                    SELECT mod_revision, key, value, create_revision, version FROM kv;
                INSERT INTO keys SELECT key, create_revision, mod_revision, version FROM kv;
                DROP TABLE kv;
                COMMIT;
                """);
        }

        _revision = ReadMeta(_writer, "revision");
        _compactRevision = _compactedUpTo = ReadMeta(_writer, "compact_revision");
        using (var sizes = _writer.CreateCommand())
        {
            sizes.CommandText = "SELECT revision, SUM(LENGTH(key) + COALESCE(LENGTH(value), 0)) FROM history WHERE revision > $compacted GROUP BY revision ORDER BY revision";
            sizes.Parameters.AddWithValue("$compacted", _compactRevision);
            using var reader = sizes.ExecuteReader();
            while (reader.Read())
            {
                _historySizes.Enqueue((reader.GetInt64(0), reader.GetInt64(1)));
                _historyBytes += reader.GetInt64(1);
            }
        }

        // A thread of its own: commits block on fsync, which must never hold one of the few pool threads.
        _writerLoop = Task.Factory.StartNew(WriteLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public string Path { get; private init; } = "";

    /// <summary>The revision of the last durable transaction.</summary>
    public long Revision => Volatile.Read(ref _revision);

    /// <param name="historyToKeep">Revisions of history kept for watchers to resume from.</param>
    /// <param name="historyBytesToKeep">And at most this much of it (keys and values).</param>
    /// <param name="watchBuffer">Changes a watcher may have waiting before it is ended as lagging.</param>
    public static SqliteKeyValueStore Open(string directory, long historyToKeep = 20_000, long historyBytesToKeep = 16 * 1024 * 1024, int watchBuffer = 10_000)
    {
        Directory.CreateDirectory(directory);
        var path = System.IO.Path.Combine(directory, FileName);
        return new SqliteKeyValueStore(path, historyToKeep, historyBytesToKeep, watchBuffer) { Path = path };
    }

    /// <summary>The store's files on disk: the database and its write-ahead log.</summary>
    /// <summary>Told how long each commit took, from its transaction's start to its fsync (one per batch of writes).</summary>
    public event Action<TimeSpan>? Committed;

    public long SizeOnDisk => new[] { Path, Path + "-wal" }.Sum(f => File.Exists(f) ? new FileInfo(f).Length : 0);

    public async Task<RangeResult> RangeAsync(string prefix, CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        // A deferred transaction reads one WAL snapshot without taking the write lock.
        await using var transaction = connection.BeginTransaction(deferred: true);
        var revision = ReadMeta(connection, "revision", transaction);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT k.key, h.value, k.create_revision, k.mod_revision, k.version FROM keys k CROSS JOIN history h ON h.revision = k.mod_revision AND h.key = k.key
            WHERE k.key >= $p AND k.key < $end ORDER BY k.key
            """;
        command.Parameters.AddWithValue("$p", prefix);
        command.Parameters.AddWithValue("$end", prefix + PrefixEnd);
        var kvs = new List<KeyValue>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            kvs.Add(new KeyValue(reader.GetString(0), (byte[])reader.GetValue(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        }

        return new RangeResult(kvs, revision);
    }

    public Task<TxnResult> TxnAsync(Txn txn, CancellationToken cancellationToken)
    {
        if (txn.Success.Select(op => op.Key).Distinct(StringComparer.Ordinal).Count() != txn.Success.Count ||
            (txn.Failure ?? []).Select(op => op.Key).Distinct(StringComparer.Ordinal).Count() != (txn.Failure?.Count ?? 0))
        {
            throw new ArgumentException("a transaction must not change the same key twice", nameof(txn));
        }

        var pending = new Pending(txn, new TaskCompletionSource<TxnResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(SqliteKeyValueStore));
        }

        return pending.Done.Task;
    }

    public async IAsyncEnumerable<WatchResponse> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var watcher = new Watcher(prefix);

        // The history up to now is read without holding the writer back (a reader's snapshot); only what
        // committed meanwhile is read under the lock, where the watcher starts taking live changes.
        var upTo = Volatile.Read(ref _revision);
        var history = fromRevision > 0 && fromRevision <= upTo ? ReadHistory(prefix, fromRevision, upTo) : [];
        lock (_watchGate)
        {
            if (fromRevision > 0 && fromRevision <= _compactRevision)
            {
                throw new CompactedException(fromRevision, _compactRevision + 1);
            }

            var from = Math.Max(fromRevision, upTo + 1);
            if (fromRevision > 0 && from <= _revision)
            {
                history.AddRange(ReadHistory(prefix, from, _revision));
            }

            _watchers.Add(watcher);
        }

        try
        {
            foreach (var revision in history.GroupBy(e => e.Kv.ModRevision))
            {
                yield return new WatchResponse(revision.Key, [.. revision]);
            }

            await foreach (var response in watcher.Responses.Reader.ReadAllAsync(cancellationToken))
            {
                Interlocked.Add(ref watcher.Waiting, -response.Events.Count);
                yield return response;
            }
        }
        finally
        {
            lock (_watchGate)
            {
                _watchers.Remove(watcher);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writerLoop.ConfigureAwait(false);
        lock (_watchGate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Responses.Writer.TryComplete();
            }
        }

        await _writer.DisposeAsync();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
    }

    private void WriteLoop()
    {
        var batch = new List<Pending>(MaxBatch);
        var statements = new Statements(_writer);
        while (_queue.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var pending))
            {
                batch.Add(pending);
            }

            var results = new TxnResult[batch.Count];
            var events = new List<WatchEvent>();
            var revision = _revision;
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                using var transaction = _writer.BeginTransaction(deferred: false);
                statements.Use(transaction);
                for (var i = 0; i < batch.Count; i++)
                {
                    var before = events.Count;
                    results[i] = Apply(statements, batch[i].Txn, ref revision, _compactRevision, events);
                    if (events.Count > before)
                    {
                        var bytes = events.Skip(before).Sum(e => (long)e.Kv.Key.Length + e.Kv.Value.Length);
                        _historySizes.Enqueue((revision, bytes));
                        _historyBytes += bytes;
                    }
                }

                statements.SetMeta("revision", revision);
                transaction.Commit();
                Committed?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(started));
            }
            catch (Exception e)
            {
                foreach (var pending in batch)
                {
                    pending.Done.TrySetException(e);
                }

                continue;
            }

            Publish(revision, events);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(results[i]);
            }

            _commitsSinceCompaction += batch.Count;
            if (_historyBytes > _historyBytesToKeep || (_commitsSinceCompaction >= 4096 && revision - _compactRevision > _historyToKeep))
            {
                Compact(statements, CompactionPoint(revision));
            }

            if (_commitsSinceCompaction == 0 || _commitsSinceCompaction % 1024 < batch.Count)
            {
                GiveBackSpace();
            }
        }
    }

    /// <summary>Where the history is cut: at most the revisions to keep, and within three quarters of the bytes to keep.</summary>
    private long CompactionPoint(long revision)
    {
        var upTo = Math.Max(_compactRevision, revision - _historyToKeep);
        var bytes = _historyBytes - _historySizes.TakeWhile(s => s.Revision <= upTo).Sum(s => s.Bytes);
        foreach (var (at, size) in _historySizes.SkipWhile(s => s.Revision <= upTo))
        {
            if (bytes <= _historyBytesToKeep * 3 / 4)
            {
                break;
            }

            upTo = at;
            bytes -= size;
        }

        return upTo;
    }

    /// <summary>Returns freed pages to the file system once there are enough of them (deletes and compactions free them).</summary>
    private void GiveBackSpace()
    {
        try
        {
            if (Number(Scalar(_writer, "PRAGMA freelist_count")) >= VacuumAtFreePages)
            {
                // The pragma frees one page per step, and its steps' rows have no columns, which the ADO.NET
                // reader takes for a statement without rows: it is stepped to its end natively.
                var handle = _writer.Handle!;
                if (SQLitePCL.raw.sqlite3_prepare_v2(handle, "PRAGMA incremental_vacuum", out var vacuum) == SQLitePCL.raw.SQLITE_OK)
                {
                    using (vacuum)
                    {
                        while (SQLitePCL.raw.sqlite3_step(vacuum) == SQLitePCL.raw.SQLITE_ROW)
                        {
                        }
                    }
                }

                Execute(_writer, "PRAGMA wal_checkpoint(TRUNCATE);");
            }
        }
        catch (SqliteException)
        {
            // Housekeeping; the next pass tries again (a reader may hold the log for a moment).
        }
    }

    private static TxnResult Apply(Statements statements, Txn txn, ref long revision, long compactRevision, List<WatchEvent> events)
    {
        var succeeded = txn.Compares.All(statements.Holds);
        var ops = succeeded ? txn.Success : txn.Failure ?? [];
        if (ops.Count == 0)
        {
            return new TxnResult(succeeded, revision);
        }

        var next = revision + 1;
        var changed = false;
        foreach (var op in ops)
        {
            var change = op switch
            {
                PutOp put => statements.Put(put.Key, put.Value, next, compactRevision),
                DeleteOp delete => statements.Delete(delete.Key, next, compactRevision),
                _ => throw new ArgumentOutOfRangeException(nameof(txn), op, "unknown operation"),
            };
            if (change is not null)
            {
                events.Add(change);
                changed = true;
            }
        }

        if (changed)
        {
            revision = next;
        }

        return new TxnResult(succeeded, revision);
    }

    private void Publish(long revision, List<WatchEvent> events)
    {
        lock (_watchGate)
        {
            Volatile.Write(ref _revision, revision);
            _watchers.RemoveAll(watcher => !Deliver(watcher, events));
        }
    }

    /// <summary>
    /// Queues a watcher's changes, a revision at a time; false if it has fallen behind by more than the
    /// buffer, in which case it is ended with the first revision it did not get (a revision is never
    /// split, so resuming from there misses nothing and repeats nothing).
    /// </summary>
    private bool Deliver(Watcher watcher, List<WatchEvent> events)
    {
        foreach (var revision in events.Where(e => e.Kv.Key.StartsWith(watcher.Prefix, StringComparison.Ordinal)).GroupBy(e => e.Kv.ModRevision))
        {
            var changes = revision.OrderBy(e => e.Kv.Key, StringComparer.Ordinal).ToList(); // in key order, as history is read
            var waiting = Volatile.Read(ref watcher.Waiting);
            if (waiting > 0 && waiting + changes.Count > _watchBuffer)
            {
                watcher.Responses.Writer.TryComplete(new WatchLaggedException(revision.Key, _watchBuffer));
                return false;
            }

            Interlocked.Add(ref watcher.Waiting, changes.Count);
            watcher.Responses.Writer.TryWrite(new WatchResponse(revision.Key, changes));
        }

        return true;
    }

    private void Compact(Statements statements, long upTo)
    {
        // Said before the rows go: a watcher that read its history without the lock (WatchAsync) and
        // then finds this revision is refused, so none can start with rows missing.
        lock (_watchGate)
        {
            _compactRevision = upTo;
        }

        try
        {
            using var transaction = _writer.BeginTransaction(deferred: false);
            statements.Use(transaction);
            statements.DeleteHistory(_compactedUpTo, upTo);
            statements.SetMeta("compact_revision", upTo);
            transaction.Commit();
            _compactedUpTo = upTo;

            while (_historySizes.TryPeek(out var oldest) && oldest.Revision <= upTo)
            {
                _historyBytes -= _historySizes.Dequeue().Bytes;
            }

            _commitsSinceCompaction = 0;
        }
        catch (SqliteException)
        {
            // Compaction is housekeeping; the next pass tries again.
        }
    }

    private List<WatchEvent> ReadHistory(string prefix, long from, long to)
    {
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT revision, key, value, create_revision, version FROM history
            WHERE revision >= $from AND revision <= $to AND key >= $p AND key < $end ORDER BY revision, key
            """;
        command.Parameters.AddWithValue("$from", from);
        command.Parameters.AddWithValue("$to", to);
        command.Parameters.AddWithValue("$p", prefix);
        command.Parameters.AddWithValue("$end", prefix + PrefixEnd);
        using var reader = command.ExecuteReader();
        var events = new List<WatchEvent>();
        while (reader.Read())
        {
            var deleted = reader.IsDBNull(2);
            var kv = new KeyValue(reader.GetString(1), deleted ? [] : (byte[])reader.GetValue(2), reader.GetInt64(3), reader.GetInt64(0), reader.GetInt64(4));
            events.Add(new WatchEvent(deleted ? WatchEventType.Delete : WatchEventType.Put, kv));
        }

        return events;
    }

    private static long Number(object? value) => Convert.ToInt64(value ?? 0L, System.Globalization.CultureInfo.InvariantCulture);

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long ReadMeta(SqliteConnection connection, string name, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT value FROM meta WHERE name = $name";
        command.Parameters.AddWithValue("$name", name);
        return Convert.ToInt64(command.ExecuteScalar() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed record Pending(Txn Txn, TaskCompletionSource<TxnResult> Done);

    private sealed class Watcher(string Prefix)
    {
        public string Prefix { get; } = Prefix;

        public Channel<WatchResponse> Responses { get; } = Channel.CreateUnbounded<WatchResponse>(new UnboundedChannelOptions { SingleReader = true });

        /// <summary>Changes queued and not yet read: the buffer a slow reader fills.</summary>
        public int Waiting;
    }

    /// <summary>The writer's prepared statements, reused for every transaction.</summary>
    private sealed class Statements
    {
        private readonly SqliteCommand _read;
        private readonly SqliteCommand _put;
        private readonly SqliteCommand _delete;
        private readonly SqliteCommand _history;
        private readonly SqliteCommand _forget;
        private readonly SqliteCommand _meta;
        private readonly SqliteCommand _compact;

        public Statements(SqliteConnection connection)
        {
            _read = Command(connection, "SELECT version, mod_revision FROM keys WHERE key = $key", "$key");
            _put = Command(connection, """
                INSERT INTO keys (key, create_revision, mod_revision, version) VALUES ($key, $rev, $rev, 1)
                ON CONFLICT (key) DO UPDATE SET mod_revision = excluded.mod_revision, version = version + 1
                RETURNING create_revision, version
                """, "$key", "$rev");
            _delete = Command(connection, "DELETE FROM keys WHERE key = $key RETURNING create_revision, version, mod_revision", "$key");
            _history = Command(connection, "INSERT INTO history (revision, key, value, create_revision, version) VALUES ($rev, $key, $value, $create, $version)",
                "$rev", "$key", "$value", "$create", "$version");
            _forget = Command(connection, "DELETE FROM history WHERE revision = $rev AND key = $key", "$rev", "$key");
            _meta = Command(connection, "UPDATE meta SET value = $value WHERE name = $name", "$name", "$value");
            _compact = Command(connection, """
                DELETE FROM history WHERE revision > $from AND revision <= $to
                AND NOT EXISTS (SELECT 1 FROM keys WHERE keys.key = history.key AND keys.mod_revision = history.revision)
                """, "$from", "$to");
        }

        public void Use(SqliteTransaction transaction)
        {
            foreach (var command in new[] { _read, _put, _delete, _history, _forget, _meta, _compact })
            {
                command.Transaction = transaction;
            }
        }

        public bool Holds(Compare compare)
        {
            var (version, modRevision) = Read(compare.Key);
            var actual = compare.Target == CompareTarget.Version ? version : modRevision;
            return compare.Result switch
            {
                CompareResult.Equal => actual == compare.Value,
                CompareResult.NotEqual => actual != compare.Value,
                CompareResult.Less => actual < compare.Value,
                CompareResult.Greater => actual > compare.Value,
                _ => false,
            };
        }

        /// <summary>
        /// Stores <paramref name="key"/>'s new value at <paramref name="revision"/>. The value it replaces stays as
        /// history until compacted, unless it is from a revision compacted already (kept only as the current one).
        /// </summary>
        public WatchEvent Put(string key, byte[] value, long revision, long compactRevision)
        {
            var (_, replaced) = Read(key);
            _put.Parameters[0].Value = key;
            _put.Parameters[1].Value = revision;
            long create, version;
            using (var reader = _put.ExecuteReader())
            {
                reader.Read();
                create = reader.GetInt64(0);
                version = reader.GetInt64(1);
            }

            AddHistory(revision, key, value, create, version);
            ForgetIfCompacted(replaced, key, compactRevision);
            return new WatchEvent(WatchEventType.Put, new KeyValue(key, value, create, revision, version));
        }

        public WatchEvent? Delete(string key, long revision, long compactRevision)
        {
            _delete.Parameters[0].Value = key;
            long create, version, replaced;
            using (var reader = _delete.ExecuteReader())
            {
                if (!reader.Read())
                {
                    return null;
                }

                create = reader.GetInt64(0);
                version = reader.GetInt64(1);
                replaced = reader.GetInt64(2);
            }

            AddHistory(revision, key, null, create, version);
            ForgetIfCompacted(replaced, key, compactRevision);
            return new WatchEvent(WatchEventType.Delete, new KeyValue(key, [], create, revision, version));
        }

        public void SetMeta(string name, long value)
        {
            _meta.Parameters[0].Value = name;
            _meta.Parameters[1].Value = value;
            _meta.ExecuteNonQuery();
        }

        /// <summary>Drops the history after <paramref name="from"/> up to <paramref name="to"/>, but for keys' current values.</summary>
        public void DeleteHistory(long from, long to)
        {
            _compact.Parameters[0].Value = from;
            _compact.Parameters[1].Value = to;
            _compact.ExecuteNonQuery();
        }

        /// <summary>A key's version and the revision of its value (zeros for a key that does not exist).</summary>
        private (long Version, long ModRevision) Read(string key)
        {
            _read.Parameters[0].Value = key;
            using var reader = _read.ExecuteReader();
            return reader.Read() ? (reader.GetInt64(0), reader.GetInt64(1)) : (0, 0);
        }

        private void ForgetIfCompacted(long revision, string key, long compactRevision)
        {
            if (revision > 0 && revision <= compactRevision)
            {
                _forget.Parameters[0].Value = revision;
                _forget.Parameters[1].Value = key;
                _forget.ExecuteNonQuery();
            }
        }

        private void AddHistory(long revision, string key, byte[]? value, long create, long version)
        {
            _history.Parameters[0].Value = revision;
            _history.Parameters[1].Value = key;
            _history.Parameters[2].Value = (object?)value ?? DBNull.Value;
            _history.Parameters[3].Value = create;
            _history.Parameters[4].Value = version;
            _history.ExecuteNonQuery();
        }

        private static SqliteCommand Command(SqliteConnection connection, string sql, params string[] parameters)
        {
            var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var name in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            return command;
        }
    }
}
