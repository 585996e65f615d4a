using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading.Channels;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Mvccpb;

namespace EcsLite.Coordinator.Store;

/// <summary>
/// The cluster store on an etcd cluster (its v3 API through dotnet-etcd's client, which balances calls over
/// the members it is given). Every key lives under a root prefix of the store's own, so one etcd cluster can
/// hold several EcsLite clusters. Writes go to etcd in the order they were queued, one transaction at a time;
/// unconditional ones queued together are sent as one etcd transaction (group commit: one raft round and
/// one fsync for many commands) and share its revision. A transaction with compares is sent on its own.
/// </summary>
public sealed class EtcdKeyValueStore : IKeyValueStore
{
    /// <summary>What one etcd transaction may hold; etcd must allow it (its --max-txn-ops and --max-request-bytes, see docs/cluster-store.md).</summary>
    public const int MaxOpsPerTxn = 10_000;

    public const int MaxBytesPerTxn = 8 * 1024 * 1024;

    private const int RangePage = 1000;
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    /// <summary>How long a read refused as Unavailable is tried again (<see cref="ReadAsync"/>).</summary>
    private static readonly TimeSpan ReadRetries = TimeSpan.FromSeconds(5);

    private readonly EtcdClient _client;
    private readonly string _root;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    private EtcdKeyValueStore(EtcdClient client, string root)
    {
        (_client, _root, Connection) = (client, root, client.GetConnection());
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>The endpoints (host:port, comma-separated) and root prefix of the store, as written in the Store setting.</summary>
    public string Description { get; private init; } = "";

    /// <summary>etcd's own API, for what only etcd has (leases, for leadership).</summary>
    internal dotnet_etcd.interfaces.IConnection Connection { get; }

    /// <summary>
    /// From now on every transaction also requires <paramref name="fence"/> (the leadership key still this
    /// coordinator's): one sent after it broke fails with <see cref="LeadershipLostException"/> and changes nothing.
    /// </summary>
    public void Fence(Compare fence) => Volatile.Write(ref _fence, fence);

    private Compare? _fence;

    /// <summary>Raised after each etcd transaction with how long it took (for the metrics).</summary>
    public event Action<TimeSpan>? Committed;

    /// <summary>
    /// Connects to etcd as <paramref name="location"/> says: <c>etcd://host1:2379,host2:2379[/root]</c>. With a CA
    /// file the connection is TLS and etcd's certificate must chain to that CA; a client certificate and key
    /// are presented when given (etcd's --client-cert-auth). Nothing is sent until the first call.
    /// </summary>
    public static EtcdKeyValueStore Connect(string location, string caFile = "", string certificateFile = "", string keyFile = "")
    {
        var (endpoints, root) = ParseLocation(location);
        var tls = caFile.Length > 0;
        var scheme = tls ? "https" : "http";
        var connection = string.Join(",", endpoints.Select(e => $"{scheme}://{e}"));
        void Channel(Grpc.Net.Client.GrpcChannelOptions options)
        {
            options.MaxReceiveMessageSize = 64 * 1024 * 1024; // a page of the state's records
            options.MaxSendMessageSize = MaxBytesPerTxn + (1024 * 1024);
        }

        var client = tls
            ? new EtcdClient(connection, ssl => Trust(ssl, caFile, certificateFile, keyFile), configureChannelOptions: Channel)
            : new EtcdClient(connection, configureChannelOptions: Channel);
        return new EtcdKeyValueStore(client, root) { Description = location };
    }

    /// <summary>Splits <c>etcd://host:port,host:port/root</c>; the root is "" or starts with '/' and does not end with one.</summary>
    public static (IReadOnlyList<string> Endpoints, string Root) ParseLocation(string location)
    {
        const string scheme = "etcd://";
        if (!location.StartsWith(scheme, StringComparison.Ordinal))
        {
            throw new FormatException($"'{location}' is not an etcd store: etcd://host:port[,host:port...][/root]");
        }

        var rest = location[scheme.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var root = slash < 0 ? "" : rest[slash..].TrimEnd('/');
        var endpoints = (slash < 0 ? rest : rest[..slash]).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (endpoints.Length == 0 || endpoints.Any(e => !Uri.TryCreate($"http://{e}", UriKind.Absolute, out var uri) || uri.Port is <= 0 || e.Contains('@', StringComparison.Ordinal) || !e.Contains(':', StringComparison.Ordinal)))
        {
            throw new FormatException($"'{location}' must name each etcd member as host:port (etcd://10.0.0.1:2379,10.0.0.2:2379)");
        }

        return (endpoints, root);
    }

    private static void Trust(SslClientAuthenticationOptions ssl, string caFile, string certificateFile, string keyFile)
    {
        var cas = new X509Certificate2Collection();
        cas.ImportFromPemFile(caFile); // one CA, or a bundle
        ssl.ApplicationProtocols = [SslApplicationProtocol.Http2];
        ssl.CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        ssl.CertificateChainPolicy.CustomTrustStore.AddRange(cas);
        if (certificateFile.Length > 0)
        {
            using var pem = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
            ssl.ClientCertificates = [X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null)];
        }
    }

    public async Task<RangeResult> RangeAsync(string prefix, CancellationToken cancellationToken)
    {
        // Paged at one revision: a big state is more than one response may carry.
        var key = EtcdKey(prefix);
        var end = RangeEnd(key);
        var kvs = new List<KeyValue>();
        long revision = 0;
        while (true)
        {
            var response = await ReadAsync(new RangeRequest { Key = key, RangeEnd = end, Limit = RangePage, Revision = revision }, cancellationToken);
            revision = response.Header.Revision;
            kvs.AddRange(response.Kvs.Select(FromEtcd));
            if (!response.More || response.Kvs.Count == 0)
            {
                return new RangeResult(kvs, revision);
            }

            key = ByteString.CopyFrom([.. response.Kvs[^1].Key.Span, 0]); // the next key after the last one read
        }
    }

    public Task<TxnResult> TxnAsync(Txn txn, CancellationToken cancellationToken)
    {
        foreach (var ops in new[] { txn.Success, txn.Failure ?? [] })
        {
            if (ops.GroupBy(op => op.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            {
                throw new ArgumentException($"a transaction changes the key {twice.Key} more than once", nameof(txn));
            }
        }

        var pending = new Pending(txn, new TaskCompletionSource<TxnResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(EtcdKeyValueStore));
        }

        return pending.Done.Task;
    }

    public async IAsyncEnumerable<WatchResponse> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var key = EtcdKey(prefix);
        using var call = Connection.WatchClient.Watch(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest { Key = key, RangeEnd = RangeEnd(key), StartRevision = Math.Max(1, fromRevision) },
        }, cancellationToken);

        // etcd sends whole revisions, several in one response at times; each is handed on as one WatchResponse.
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            var response = call.ResponseStream.Current;
            if (response.CompactRevision > 0)
            {
                throw new CompactedException(fromRevision, response.CompactRevision);
            }

            if (response.Canceled)
            {
                throw new InvalidOperationException($"etcd ended the watch of {prefix}: {response.CancelReason}");
            }

            foreach (var revision in response.Events.GroupBy(e => e.Kv.ModRevision))
            {
                yield return new WatchResponse(revision.Key, [.. revision.OrderBy(e => e.Kv.Key, KeyOrder.Instance).Select(e => new WatchEvent(
                    e.Type == Event.Types.EventType.Delete ? WatchEventType.Delete : WatchEventType.Put,
                    e.Type == Event.Types.EventType.Delete ? FromEtcd(e.Kv) with { Value = [] } : FromEtcd(e.Kv)))]);
            }
        }
    }

    /// <summary>
    /// Gives up etcd's history before <paramref name="revision"/> (of every key of the etcd cluster, not only this
    /// store's root): watching from before it is then refused with <see cref="CompactedException"/>.
    /// </summary>
    public async Task CompactAsync(long revision, CancellationToken cancellationToken) =>
        await Connection.KVClient.CompactAsync(new CompactionRequest { Revision = revision, Physical = true }, deadline: Deadline(), cancellationToken: cancellationToken);

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        _client.Dispose();
    }

    private sealed record Pending(Txn Txn, TaskCompletionSource<TxnResult> Done);

    /// <summary>Takes queued transactions in order: a conditional one alone, unconditional ones together up to etcd's limits.</summary>
    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Pending>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            var (ops, bytes) = (0, 0L);
            while (reader.TryPeek(out var next))
            {
                var conditional = next.Txn.Compares.Count > 0;
                var size = next.Txn.Success.Sum(Size);
                if (batch.Count > 0 && (conditional || ops + next.Txn.Success.Count > MaxOpsPerTxn || bytes + size > MaxBytesPerTxn))
                {
                    break;
                }

                reader.TryRead(out _);
                batch.Add(next);
                (ops, bytes) = (ops + next.Txn.Success.Count, bytes + size);
                if (conditional)
                {
                    break;
                }
            }

            try
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var fence = Volatile.Read(ref _fence);
                var request = Request(batch);
                if (fence is not null)
                {
                    request.Compare.Add(ToEtcd(fence));
                }

                var response = await SendAsync(request, retry: batch[0].Txn.Compares.Count == 0).ConfigureAwait(false);
                Committed?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(started));
                if (!response.Succeeded && fence is not null && (request.Compare.Count == 1 || !await HoldsAsync(fence).ConfigureAwait(false)))
                {
                    throw new LeadershipLostException(fence.Key);
                }

                foreach (var pending in batch)
                {
                    pending.Done.SetResult(new TxnResult(response.Succeeded, response.Header.Revision));
                }
            }
            catch (Exception e)
            {
                foreach (var pending in batch)
                {
                    pending.Done.SetException(e);
                }
            }
        }
    }

    /// <summary>
    /// Sends a transaction. One of writes only is sent again when the member it went to failed (killed, or
    /// its connection reset) for up to <see cref="CallTimeout"/>: sending it twice leaves the same keys with
    /// the same values, and its fence still holds. One with compares is not: a second answer could be wrong.
    /// </summary>
    private async Task<TxnResponse> SendAsync(TxnRequest request, bool retry)
    {
        var deadline = Deadline();
        while (true)
        {
            try
            {
                return await Connection.KVClient.TxnAsync(request, deadline: deadline).ResponseAsync.ConfigureAwait(false);
            }
            catch (RpcException e) when (retry && e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Whether a compare on a key's mod revision holds now (the fence, after a conditional transaction failed).</summary>
    private async Task<bool> HoldsAsync(Compare compare)
    {
        var response = await Connection.KVClient.RangeAsync(new RangeRequest { Key = EtcdKey(compare.Key) }, deadline: Deadline()).ResponseAsync.ConfigureAwait(false);
        return response.Kvs is [var kv] && kv.ModRevision == compare.Value;
    }

    /// <summary>The etcd transaction for a batch: one conditional transaction as it is, or unconditional ones merged (a key's last op wins).</summary>
    private TxnRequest Request(List<Pending> batch)
    {
        var request = new TxnRequest();
        if (batch is [{ Txn.Compares.Count: > 0 } conditional])
        {
            request.Compare.AddRange(conditional.Txn.Compares.Select(ToEtcd));
            request.Success.AddRange(conditional.Txn.Success.Select(ToEtcd));
            request.Failure.AddRange((conditional.Txn.Failure ?? []).Select(ToEtcd));
            return request;
        }

        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        var ops = new List<TxnOp>();
        foreach (var op in batch.SelectMany(p => p.Txn.Success))
        {
            if (last.TryGetValue(op.Key, out var at))
            {
                ops[at] = op;
            }
            else
            {
                last[op.Key] = ops.Count;
                ops.Add(op);
            }
        }

        request.Success.AddRange(ops.Select(ToEtcd));
        return request;
    }

    private static long Size(TxnOp op) => op.Key.Length + (op is PutOp put ? put.Value.Length : 0) + 16;

    private RequestOp ToEtcd(TxnOp op) => op switch
    {
        PutOp put => new RequestOp { RequestPut = new PutRequest { Key = EtcdKey(put.Key), Value = ByteString.CopyFrom(put.Value) } },
        DeleteOp delete => new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = EtcdKey(delete.Key) } },
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown op"),
    };

    private Etcdserverpb.Compare ToEtcd(Compare compare)
    {
        var etcd = new Etcdserverpb.Compare
        {
            Key = EtcdKey(compare.Key),
            Result = compare.Result switch
            {
                CompareResult.Equal => Etcdserverpb.Compare.Types.CompareResult.Equal,
                CompareResult.NotEqual => Etcdserverpb.Compare.Types.CompareResult.NotEqual,
                CompareResult.Less => Etcdserverpb.Compare.Types.CompareResult.Less,
                _ => Etcdserverpb.Compare.Types.CompareResult.Greater,
            },
        };
        if (compare.Target == CompareTarget.Version)
        {
            (etcd.Target, etcd.Version) = (Etcdserverpb.Compare.Types.CompareTarget.Version, compare.Value);
        }
        else
        {
            (etcd.Target, etcd.ModRevision) = (Etcdserverpb.Compare.Types.CompareTarget.Mod, compare.Value);
        }

        return etcd;
    }

    private KeyValue FromEtcd(Mvccpb.KeyValue kv) =>
        new(Encoding.UTF8.GetString(kv.Key.Span)[_root.Length..], kv.Value.ToByteArray(), kv.CreateRevision, kv.ModRevision, kv.Version);

    internal ByteString EtcdKey(string key) => ByteString.CopyFromUtf8(_root + key);

    /// <summary>The end of a prefix's range: the prefix with its last byte that is not 0xff increased, as etcd's clients do.</summary>
    private static ByteString RangeEnd(ByteString prefix)
    {
        var end = prefix.ToByteArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return ByteString.CopyFrom(end, 0, i + 1);
            }
        }

        return ByteString.CopyFrom(0); // every key
    }

    /// <summary>Keys in etcd's order: bytewise.</summary>
    private sealed class KeyOrder : IComparer<ByteString>
    {
        public static readonly KeyOrder Instance = new();

        public int Compare(ByteString? x, ByteString? y) => x!.Span.SequenceCompareTo(y!.Span);
    }

    private static DateTime Deadline() => DateTime.UtcNow + CallTimeout;

    /// <summary>
    /// A read, tried again on a member that does not answer: right after a member comes back, the client may
    /// still pick one that is down (a coordinator that has just won the lead would otherwise fail its load).
    /// </summary>
    private async Task<RangeResponse> ReadAsync(RangeRequest request, CancellationToken cancellationToken)
    {
        var giveUp = DateTime.UtcNow + ReadRetries;
        while (true)
        {
            try
            {
                return await Connection.KVClient.RangeAsync(request, deadline: Deadline(), cancellationToken: cancellationToken);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && DateTime.UtcNow < giveUp)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
            }
        }
    }
}

/// <summary>A write refused because this coordinator no longer leads (the leadership key is gone or another's).</summary>
public sealed class LeadershipLostException(string key)
    : Exception($"this coordinator no longer leads (the key {key} is gone or another coordinator's): the write was refused");
