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
    public const int LogBuffer = 256;

    private readonly Channel<CoordinatorMessage> _outbox = Channel.CreateBounded<CoordinatorMessage>(
        new BoundedChannelOptions(OutboxCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly CancellationTokenSource _closed = CancellationTokenSource.CreateLinkedTokenSource(callCancelled);
    private long _lastHeartbeat = connectedAt;
    private long _sequence;
    private long _acknowledged;
    private long _logRequests;
    private readonly ConcurrentDictionary<ulong, Channel<LogChunk>> _logs = new();

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

    /// <summary>Nothing more is queued; what is queued is still written.</summary>
    public void EndOutbox() => _outbox.Writer.TryComplete();

    public void Close(string reason)
    {
        CloseReason ??= reason;
        _outbox.Writer.TryComplete();
        _closed.Cancel();
        foreach (var logs in _logs.Values)
        {
            logs.Writer.TryComplete(new IOException($"the agent's stream ended: {reason}"));
        }
    }

    /// <summary>
    /// Asks the agent for a container's logs; its LogChunks for this request arrive on the returned
    /// reader, which ends after the chunk marked end. <see cref="EndLogs"/> when done with it.
    /// </summary>
    public (ulong RequestId, ChannelReader<LogChunk> Chunks) RequestLogs(LogRequest request)
    {
        request.RequestId = (ulong)Interlocked.Increment(ref _logRequests);
        var chunks = Channel.CreateBounded<LogChunk>(new BoundedChannelOptions(LogBuffer) { SingleReader = true, SingleWriter = true });
        _logs[request.RequestId] = chunks;
        Send(new CoordinatorMessage { LogRequest = request });
        return (request.RequestId, chunks.Reader);
    }

    /// <summary>
    /// A chunk from the agent, passed to whoever asked. Never waits: the agent's stream also carries its
    /// heartbeats and reports, so a reader that falls <see cref="LogBuffer"/> chunks behind is cut off.
    /// </summary>
    public void Deliver(LogChunk chunk)
    {
        if (!_logs.TryGetValue(chunk.RequestId, out var chunks))
        {
            return;
        }

        if (!chunks.Writer.TryWrite(chunk))
        {
            chunks.Writer.TryComplete(new IOException($"the log reader fell {LogBuffer} chunks behind"));
            EndLogs(chunk.RequestId);
        }
        else if (chunk.End)
        {
            chunks.Writer.TryComplete();
        }
    }

    /// <summary>The caller is done: forget the request, and tell the agent to stop if it has not ended.</summary>
    public void EndLogs(ulong requestId)
    {
        if (_logs.TryRemove(requestId, out var chunks))
        {
            chunks.Writer.TryComplete();
            Send(new CoordinatorMessage { LogCancel = new LogCancel { RequestId = requestId } });
        }
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
