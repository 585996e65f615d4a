using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Threading.Channels;
using EcsLite.Agent.Core;
using EcsLite.Api.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsLite.Agent;

/// <summary>What the agent channel needs from the agent it serves (the real host, or a simulated one).</summary>
public interface IAgentRuntime
{
    /// <summary>The hello to send, naming the instance the agent already is, if any.</summary>
    AgentHello Hello(string? containerInstanceArn);

    HostUsage Usage();

    /// <summary>Applies a desired task set; the set is acknowledged once this returns.</summary>
    Task ApplyAsync(DesiredTaskSet desired, CancellationToken cancellationToken);

    /// <summary>
    /// A container's logs in chunks (events, and the awslogs names in the first); ends when the logs
    /// do, or with <see cref="LogsUnavailableException"/> when there are none to read.
    /// </summary>
    IAsyncEnumerable<LogChunk> LogsAsync(LogRequest request, CancellationToken cancellationToken);
}

/// <summary>Why a log request cannot be served, in ECS's words ("ResourceNotFoundException: ...").</summary>
public sealed class LogsUnavailableException(string message) : Exception(message);

/// <summary>
/// The agent's end of the agent channel: dials a coordinator over mutual TLS (joining first with the
/// token if this host has no certificate yet), says hello, keeps the stream with heartbeats,
/// acknowledges desired task sets, renews its certificate when it nears its end, and when anything
/// breaks reconnects forever, with capped exponential backoff and jitter, trying each coordinator in turn.
/// </summary>
public sealed partial class CoordinatorConnection(
    IReadOnlyList<Uri> coordinators, IAgentRuntime runtime, InstanceIdentity identity, AgentCredentials credentials, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan WelcomeTimeout = TimeSpan.FromSeconds(15);

    /// <summary>A session that lasted this long was a working one: the next reconnect starts from the shortest wait.</summary>
    private static readonly TimeSpan StableSession = TimeSpan.FromSeconds(30);

    /// <summary>The largest message the agent takes (the coordinator sends desired sets in parts well below it).</summary>
    public const int MaxMessageBytes = 16 * 1024 * 1024;
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the agent has first been welcomed as a container instance.</summary>
    public Task Registered => _registered.Task;

    private readonly ConcurrentDictionary<string, TaskStateChange> _unsent = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _reportsWaiting = new(0);

    /// <summary>True while a stream to a coordinator is established.</summary>
    public bool Connected { get; private set; }

    /// <summary>The instance this agent is, once welcomed.</summary>
    public string? ContainerInstanceArn => identity.ContainerInstanceArn;

    public string? Cluster => identity.Cluster;

    /// <summary>
    /// Reports a task's state. Never dropped and never blocking: each task's newest state waits here
    /// until the stream takes it (a burst of changes to one task goes as one), so a host handed many
    /// tasks at once reports every one. While disconnected they wait too, and the next hello's full
    /// snapshot makes them redundant but harmless (the coordinator only moves a task forward).
    /// </summary>
    public void Report(TaskStateChange change)
    {
        _unsent[change.TaskArn] = change;
        if (_reportsWaiting.CurrentCount == 0)
        {
            _reportsWaiting.Release();
        }
    }

    /// <summary>
    /// Whether the loop that takes the coordinator's messages has been busy with one for longer than
    /// <paramref name="limit"/> (waiting for the next message is not busy): systemd's watchdog is fed only
    /// while it is not.
    /// </summary>
    public bool BusyLongerThan(TimeSpan limit)
    {
        var since = Volatile.Read(ref _busySince);
        return since != 0 && time.GetElapsedTime(since) > limit;
    }

    private long _busySince;

    /// <summary>Stops heartbeats while the stream stays open: how the fleet simulator plays a host that hangs.</summary>
    public bool HeartbeatsPaused { get; set; }

    /// <summary>Invoked after every welcome (for systemd's STATUS line, tests, the simulator).</summary>
    public event Action<Welcome, Uri>? Welcomed;

    public async Task RunAsync(CancellationToken stopping)
    {
        var attempt = 0;
        var index = 0;
        while (!stopping.IsCancellationRequested)
        {
            var coordinator = coordinators[index % coordinators.Count];
            var welcomed = false;
            var began = time.GetTimestamp();
            try
            {
                welcomed = await SessionAsync(coordinator, () => welcomed = true, stopping);
                LogStreamEnded(logger, coordinator);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.FailedPrecondition
                or StatusCode.Aborted or StatusCode.PermissionDenied or StatusCode.Unauthenticated)
            {
                LogRefused(logger, coordinator, e.Status.Detail);
            }
            catch (NotJoinedException e)
            {
                LogNotJoined(logger, coordinator, e.Message);
            }
            catch (Exception e) when (e is RpcException or IOException or HttpRequestException or SocketException or TimeoutException)
            {
                if (credentials.LastRefusal is { } refusal)
                {
                    LogUntrusted(logger, coordinator, refusal);
                }
                else
                {
                    LogUnreachable(logger, coordinator, e.Message);
                }
            }
            finally
            {
                Connected = false;
            }

            // Only a session that worked for a while resets the backoff: one that breaks soon after its
            // welcome (a message it cannot take, a coordinator that drops it) must not become a busy loop.
            if (welcomed && time.GetElapsedTime(began) >= StableSession)
            {
                attempt = 0;
            }
            else if (!welcomed)
            {
                index++;
            }

            // A standby leads within seconds of the leader's death: it must not find its agents in a long wait.
            var delay = Backoff.Delay(attempt++, Random.Shared.NextDouble(), coordinators.Count);
            LogReconnecting(logger, delay.TotalMilliseconds);
            try
            {
                await Task.Delay(delay, time, stopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<bool> SessionAsync(Uri coordinator, Action markWelcomed, CancellationToken stopping)
    {
        var secure = coordinator.Scheme == Uri.UriSchemeHttps;
        credentials.LastRefusal = null;
        if (secure && credentials.Certificate is null)
        {
            var joining = runtime.Hello(null);
            LogEnrolled(logger, coordinator, await credentials.EnrollAsync(coordinator, joining.Cluster, joining.Hostname, stopping));
        }

        // A fresh channel per attempt: our backoff decides when to retry, not the channel's own.
        using var channel = credentials.Channel(coordinator, MaxMessageBytes);
        using var session = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        using var call = new AgentChannel.AgentChannelClient(channel).Connect(cancellationToken: session.Token);
        var outbox = Channel.CreateBounded<AgentMessage>(new BoundedChannelOptions(64) { SingleReader = true });
        var writer = WriteAsync(call.RequestStream, outbox.Reader, session.Token);
        var logRequests = new ConcurrentDictionary<ulong, CancellationTokenSource>();
        Task heartbeats = Task.CompletedTask;
        try
        {
            // The instance this host is: its certificate's (TLS), or the one it was welcomed as (insecure test mode).
            var hello = runtime.Hello(secure ? credentials.ContainerInstanceArn : identity.ContainerInstanceArn);
            if (secure && credentials.Cluster is { } joined)
            {
                hello.Cluster = joined; // the cluster the token joined this host to, whatever ECS_CLUSTER says
            }

            await outbox.Writer.WriteAsync(new AgentMessage { Hello = hello }, session.Token);
            using (var welcomeTimeout = CancellationTokenSource.CreateLinkedTokenSource(session.Token))
            {
                welcomeTimeout.CancelAfter(WelcomeTimeout);
                if (!await call.ResponseStream.MoveNext(welcomeTimeout.Token) || call.ResponseStream.Current.KindCase != CoordinatorMessage.KindOneofCase.Welcome)
                {
                    throw new IOException("the coordinator did not answer hello with welcome");
                }
            }

            var welcome = call.ResponseStream.Current.Welcome;
            identity.Save(welcome.ContainerInstanceArn, welcome.Cluster);
            markWelcomed();
            Connected = true;
            LogWelcomed(logger, coordinator, welcome.ContainerInstanceArn, welcome.Cluster);
            Welcomed?.Invoke(welcome, coordinator);
            _registered.TrySetResult();

            var interval = welcome.HeartbeatInterval?.ToTimeSpan() is { TotalMilliseconds: > 0 } given ? given : TimeSpan.FromSeconds(2);
            heartbeats = Task.WhenAll(HeartbeatAsync(outbox.Writer, interval, session.Token), SendReportsAsync(outbox.Writer, session.Token));
            while (await call.ResponseStream.MoveNext(session.Token))
            {
                var message = call.ResponseStream.Current;
                Volatile.Write(ref _busySince, time.GetTimestamp());
                switch (message.KindCase)
                {
                    case CoordinatorMessage.KindOneofCase.DesiredTasks:
                        await runtime.ApplyAsync(message.DesiredTasks, session.Token);
                        await outbox.Writer.WriteAsync(new AgentMessage { Ack = new Acknowledgement { Sequence = message.DesiredTasks.Sequence } }, session.Token);
                        break;
                    case CoordinatorMessage.KindOneofCase.LogRequest:
                        var request = message.LogRequest;
                        var serving = CancellationTokenSource.CreateLinkedTokenSource(session.Token);
                        if (logRequests.TryAdd(request.RequestId, serving))
                        {
                            _ = ServeLogsAsync(request, outbox.Writer, serving, logRequests);
                        }

                        break;
                    case CoordinatorMessage.KindOneofCase.LogCancel when logRequests.TryRemove(message.LogCancel.RequestId, out var cancelled):
                        await cancelled.CancelAsync();
                        cancelled.Dispose();
                        break;
                    case CoordinatorMessage.KindOneofCase.Certificate:
                        if (credentials.Renewed(message.Certificate.Certificate))
                        {
                            LogRenewed(logger, credentials.Certificate!.NotAfter);
                        }

                        break;
                }

                Volatile.Write(ref _busySince, 0);
            }

            return true;
        }
        finally
        {
            Volatile.Write(ref _busySince, 0);
            outbox.Writer.TryComplete();
            await session.CancelAsync();
            await Task.WhenAll(writer, heartbeats).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>
    /// Streams one log request's chunks with the stream's backpressure, then a last chunk with end set
    /// (and the error, if any). A cancelled request (LogCancel, or the session ending) sends nothing more.
    /// </summary>
    private async Task ServeLogsAsync(LogRequest request, ChannelWriter<AgentMessage> outbox, CancellationTokenSource serving,
        ConcurrentDictionary<ulong, CancellationTokenSource> requests)
    {
        var last = new LogChunk { RequestId = request.RequestId, End = true };
        try
        {
            try
            {
                await foreach (var chunk in runtime.LogsAsync(request, serving.Token))
                {
                    chunk.RequestId = request.RequestId;
                    await outbox.WriteAsync(new AgentMessage { LogChunk = chunk }, serving.Token);
                }
            }
            catch (Exception e) when (!serving.IsCancellationRequested)
            {
                last.Error = e is LogsUnavailableException ? e.Message : $"ServerException: {e.Message}";
            }

            await outbox.WriteAsync(new AgentMessage { LogChunk = last }, serving.Token);
        }
        catch (Exception) when (serving.IsCancellationRequested)
        {
        }
        finally
        {
            // Whoever takes the request out of the table disposes it (here, or the LogCancel handler).
            if (requests.TryRemove(request.RequestId, out _))
            {
                serving.Dispose();
            }
        }
    }

    /// <summary>Heartbeats; and once per session, when the certificate nears its end, a renewal request.</summary>
    private async Task HeartbeatAsync(ChannelWriter<AgentMessage> outbox, TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        var renewalAsked = false;
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            if (!renewalAsked && credentials.NeedsRenewal(time.GetUtcNow()))
            {
                renewalAsked = true;
                var request = new CertificateRenewal { CertificateSigningRequest = Google.Protobuf.ByteString.CopyFrom(credentials.RenewalRequest()) };
                await outbox.WriteAsync(new AgentMessage { RenewCertificate = request }, cancellationToken);
            }

            if (!HeartbeatsPaused)
            {
                var heartbeat = new AgentHeartbeat { SentAt = Timestamp.FromDateTimeOffset(time.GetUtcNow()), Usage = runtime.Usage() };
                await outbox.WriteAsync(new AgentMessage { Heartbeat = heartbeat }, cancellationToken);
            }
        }
    }

    /// <summary>Moves waiting task reports onto the stream, waiting for room rather than dropping any.</summary>
    private async Task SendReportsAsync(ChannelWriter<AgentMessage> outbox, CancellationToken cancellationToken)
    {
        while (true)
        {
            foreach (var arn in _unsent.Keys)
            {
                if (_unsent.TryRemove(arn, out var change))
                {
                    await outbox.WriteAsync(new AgentMessage { TaskStateChange = change }, cancellationToken);
                }
            }

            await _reportsWaiting.WaitAsync(cancellationToken);
        }
    }

    /// <summary>The one writer of the request stream.</summary>
    private static async Task WriteAsync(IClientStreamWriter<AgentMessage> stream, ChannelReader<AgentMessage> outbox, CancellationToken cancellationToken)
    {
        await foreach (var message in outbox.ReadAllAsync(cancellationToken))
        {
            await stream.WriteAsync(message, cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Joined {Coordinator} as {ContainerInstanceArn} in cluster {Cluster}")]
    private static partial void LogWelcomed(ILogger logger, Uri coordinator, string containerInstanceArn, string cluster);

    [LoggerMessage(Level = LogLevel.Information, Message = "Enrolled with {Coordinator} as {ContainerInstanceArn}: client certificate kept in the data directory's tls/")]
    private static partial void LogEnrolled(ILogger logger, Uri coordinator, string containerInstanceArn);

    [LoggerMessage(Level = LogLevel.Information, Message = "Renewed the client certificate (valid until {NotAfter:u})")]
    private static partial void LogRenewed(ILogger logger, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot join {Coordinator}: {Reason}")]
    private static partial void LogNotJoined(ILogger logger, Uri coordinator, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Refused to trust {Coordinator}: {Reason}")]
    private static partial void LogUntrusted(ILogger logger, Uri coordinator, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The stream to {Coordinator} ended")]
    private static partial void LogStreamEnded(ILogger logger, Uri coordinator);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Coordinator} refused this agent: {Detail}")]
    private static partial void LogRefused(ILogger logger, Uri coordinator, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot reach {Coordinator}: {Reason}")]
    private static partial void LogUnreachable(ILogger logger, Uri coordinator, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Reconnecting in {DelayMs:F0} ms")]
    private static partial void LogReconnecting(ILogger logger, double delayMs);
}
