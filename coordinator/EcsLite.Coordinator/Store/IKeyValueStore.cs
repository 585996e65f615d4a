using Google.Protobuf;

namespace EcsLite.Coordinator.Store;

/// <summary>
/// The cluster store: keys with revisions, compare-and-swap transactions, range reads and watch by
/// prefix from a revision. It is shaped like etcd's KV and Watch APIs so the embedded SQLite store and
/// an etcd store are interchangeable and several coordinators can share etcd.
/// A transaction is acknowledged only once it is durable.
/// </summary>
public interface IKeyValueStore : IAsyncDisposable
{
    /// <summary>Every key starting with <paramref name="prefix"/>, in key order, at one revision.</summary>
    Task<RangeResult> RangeAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>If every compare holds, applies the success ops, else the failure ops, atomically.</summary>
    Task<TxnResult> TxnAsync(Txn txn, CancellationToken cancellationToken);

    /// <summary>
    /// Changes to keys under <paramref name="prefix"/> from <paramref name="fromRevision"/> on, history
    /// first, then live, until cancelled. Throws <see cref="CompactedException"/> if that history is gone,
    /// and <see cref="WatchLaggedException"/> once the watcher has fallen too far behind (so a slow reader
    /// costs the store a bounded buffer, never a stall).
    /// </summary>
    IAsyncEnumerable<WatchResponse> WatchAsync(string prefix, long fromRevision, CancellationToken cancellationToken);
}

public sealed record KeyValue(string Key, byte[] Value, long CreateRevision, long ModRevision, long Version);

public sealed record RangeResult(IReadOnlyList<KeyValue> Kvs, long Revision);

public enum CompareTarget
{
    /// <summary>Number of puts since the key was created; 0 when it does not exist.</summary>
    Version,

    /// <summary>Revision of the last change to the key; 0 when it does not exist.</summary>
    ModRevision,
}

public enum CompareResult
{
    Equal,
    NotEqual,
    Less,
    Greater,
}

public sealed record Compare(string Key, CompareTarget Target, CompareResult Result, long Value);

public abstract record TxnOp(string Key);

public sealed record PutOp : TxnOp
{
    private readonly IMessage? _record;
    private byte[]? _value;

    public PutOp(string key, byte[] value)
        : base(key) => _value = value;

    /// <summary>
    /// A record serialized when the store writes it, on the store's writer rather than the caller's thread
    /// (the cluster command thread, whose time decides when a schedule slot's last task is placed). The record
    /// must not change once handed over, as the cluster state's records never do.
    /// </summary>
    public PutOp(string key, IMessage record)
        : base(key) => _record = record;

    public byte[] Value => _value ??= _record!.ToByteArray();
}

public sealed record DeleteOp(string Key) : TxnOp(Key);

public sealed record Txn(IReadOnlyList<Compare> Compares, IReadOnlyList<TxnOp> Success, IReadOnlyList<TxnOp>? Failure = null)
{
    public static Txn Unconditional(IReadOnlyList<TxnOp> ops) => new([], ops);
}

/// <summary>Whether the compares held, and the store's revision after the transaction.</summary>
public sealed record TxnResult(bool Succeeded, long Revision);

public enum WatchEventType
{
    Put,
    Delete,
}

/// <summary>A revision's changes under the watched prefix, in key order: a revision is never split across responses.</summary>
public sealed record WatchResponse(long Revision, IReadOnlyList<WatchEvent> Events);

/// <summary>One change; for a delete, <see cref="KeyValue.Value"/> is empty and ModRevision is the deletion's revision.</summary>
public sealed record WatchEvent(WatchEventType Type, KeyValue Kv);

public sealed class CompactedException(long requested, long compacted)
    : Exception($"revision {requested} has been compacted; the oldest revision kept is {compacted}")
{
    public long CompactRevision { get; } = compacted;

    public long RequestedRevision { get; } = requested;
}

/// <summary>A watcher that fell behind; every change before <see cref="ResumeRevision"/> was delivered.</summary>
public sealed class WatchLaggedException(long resumeRevision, int buffer)
    : Exception($"the watcher fell more than {buffer} changes behind; resume from revision {resumeRevision}")
{
    public long ResumeRevision { get; } = resumeRevision;
}
