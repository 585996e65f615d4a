using System.Collections.Concurrent;
using System.Threading.Channels;
using EcsLite.Api.V1;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// One agent's live stream. Everything sent to the agent goes through <see cref="Send"/> into a bounded
/// outbox that a single writer drains, so the response stream has exactly one writer.
/// </summary>
public sealed class AgentSession(string containerInstanceArn, long connectedAt, CancellationToken callCancelled) : IDisposable
{
    public const int OutboxCapacity = 256;

    private readonly Channel<CoordinatorMessage> _outbox = Channel.CreateBounded<CoordinatorMessage>(
        new BoundedChannelOptions(OutboxCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly CancellationTokenSource _closed = CancellationTokenSource.CreateLinkedTokenSource(callCancelled);
    private long _lastHeartbeat = connectedAt;
    private long _sequence;
    private long _acknowledged;

    public string ContainerInstanceArn { get; } = containerInstanceArn;

    /// <summary>Cancelled when the call ends or the coordinator closes the session.</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>Why the coordinator closed the session, if it did.</summary>
    public string? CloseReason { get; private set; }

    public long LastHeartbeat => Interlocked.Read(ref _lastHeartbeat);

    public ulong Acknowledged => (ulong)Interlocked.Read(ref _acknowledged);

    public ChannelReader<CoordinatorMessage> Outbox => _outbox.Reader;

    public ulong NextSequence() => (ulong)Interlocked.Increment(ref _sequence);

    public void Heartbeat(long timestamp) => Interlocked.Exchange(ref _lastHeartbeat, timestamp);

    public void Acknowledge(ulong sequence) => Interlocked.Exchange(ref _acknowledged, (long)sequence);

    /// <summary>Queues a message; an agent that lets its outbox fill up is not keeping up and is disconnected.</summary>
    public void Send(CoordinatorMessage message)
    {
        if (!_outbox.Writer.TryWrite(message))
        {
            Close($"the agent did not read its last {OutboxCapacity} messages");
        }
    }

    public void Close(string reason)
    {
        CloseReason ??= reason;
        _outbox.Writer.TryComplete();
        _closed.Cancel();
    }

    public void Dispose()
    {
        _outbox.Writer.TryComplete();
        _closed.Dispose();
    }
}

/// <summary>The live sessions, at most one per container instance: a newer connection replaces an older one.</summary>
public sealed class AgentSessions
{
    private readonly ConcurrentDictionary<string, AgentSession> _byInstance = new(StringComparer.Ordinal);

    public int Count => _byInstance.Count;

    public IEnumerable<AgentSession> All => _byInstance.Values;

    /// <summary>Makes <paramref name="session"/> the instance's session and returns the one it replaced.</summary>
    public AgentSession? Replace(AgentSession session)
    {
        AgentSession? previous = null;
        _byInstance.AddOrUpdate(session.ContainerInstanceArn, session, (_, old) =>
        {
            previous = old;
            return session;
        });
        return previous;
    }

    /// <summary>Removes the session if it is still the instance's current one.</summary>
    public bool Remove(AgentSession session) =>
        _byInstance.TryRemove(new KeyValuePair<string, AgentSession>(session.ContainerInstanceArn, session));

    public AgentSession? Find(string containerInstanceArn) => _byInstance.GetValueOrDefault(containerInstanceArn);
}
