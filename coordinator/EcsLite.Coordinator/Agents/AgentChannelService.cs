using System.Threading.Channels;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Coordinator.Security;
using EcsLite.Coordinator.State;
using EcsLite.Security;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// The coordinator's end of each agent's stream: hello registers or rejoins the container instance,
/// welcome and the full desired task set answer it, heartbeats keep it connected. An agent speaks for
/// the one container instance its client certificate names (checked against the cluster CA in the TLS
/// handshake); a deregistered instance's certificate is refused. Any coordinator of an etcd store serves the
/// agents connected to it: their desired sets from its own state, what changes the state through the leader
/// (<see cref="AgentLedger"/>).
/// </summary>
public sealed partial class AgentChannelService(
    ClusterStateMachine state, CoordinatorRole role, AgentLedger ledger, AgentSessions sessions, TaskDispatcher dispatcher, TimeProvider time, IHostApplicationLifetime lifetime,
    ClusterCertificates certificates, AuditLog audit, IOptions<CoordinatorOptions> options, ILogger<AgentChannelService> logger) : AgentChannel.AgentChannelBase
{
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The largest message either end of an agent's stream takes: a hello carries every task the host
    /// has. What the coordinator sends is cut into pieces well below it (<see cref="DesiredChunkBytes"/>).
    /// </summary>
    public const int MaxMessageBytes = 16 * 1024 * 1024;

    /// <summary>The most tasks' worth of bytes one desired set message carries.</summary>
    public const int DesiredChunkBytes = 1024 * 1024;

    /// <summary>Reports waiting to be applied before the stream is read no further (its flow control then holds the agent back).</summary>
    private const int ReportBacklog = 10_000;

    /// <summary>At most this many reports go into one command.</summary>
    private const int ReportBatch = 500;

    private static readonly WriteOptions Buffered = new(WriteFlags.BufferHint);

    public override async Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<CoordinatorMessage> responseStream, ServerCallContext context)
    {
        var certified = CertifiedInstance(context);
        var hello = await ReadHelloAsync(requestStream, context.CancellationToken);
        if (certified is not null && hello.ContainerInstanceArn != certified)
        {
            if (hello.ContainerInstanceArn.Length > 0)
            {
                audit.Other(certified, "ecslite:AgentConnect", hello.ContainerInstanceArn, context.Peer, "PermissionDenied");
                throw new RpcException(new Status(StatusCode.PermissionDenied,
                    $"This agent's certificate is for {certified}; it cannot speak for {CallerText.Quote(hello.ContainerInstanceArn, 1600)}."));
            }

            hello.ContainerInstanceArn = certified;
        }

        // Applied by the leader (here, or forwarded there), with what the agent already runs.
        var (arn, cluster) = await ledger.JoinAsync(hello, ledger.Self, context.CancellationToken);

        using var session = new AgentSession(arn, time.GetTimestamp(), context.CancellationToken);
        session.Send(new CoordinatorMessage
        {
            Welcome = new Welcome { ContainerInstanceArn = arn, Cluster = cluster, HeartbeatInterval = Duration.FromTimeSpan(options.Value.HeartbeatInterval) },
        });
        sessions.Replace(session)?.Close("replaced by a newer connection from the same container instance");

        // A stream lasts as long as its agent does: on shutdown end it, or stopping would wait for every agent.
        using var stopping = lifetime.ApplicationStopping.Register(() => session.Close("the coordinator is stopping"));
        LogConnected(logger, arn, CallerText.Quote(hello.Hostname, 255), context.Peer);
        var writer = WriteAsync(session, responseStream);

        // Everything wanted of it, from this coordinator's state (which holds the join); from now on each
        // change to its tasks reaches it from here too (TaskDispatcher).
        dispatcher.Send(session, TaskCommands.DesiredFor(state.Current, arn), full: true);

        // Reports are applied in order, many to a command, by a loop of their own: the stream goes on being
        // read meanwhile, so heartbeats never wait behind a burst of reports for their writes.
        var reports = Channel.CreateBounded<TaskStateChange>(new BoundedChannelOptions(ReportBacklog) { SingleReader = true, SingleWriter = true });
        var applying = ApplyReportsAsync(session, reports.Reader);
        try
        {
            while (await requestStream.MoveNext(session.Closed))
            {
                await HandleAsync(session, requestStream.Current, reports.Writer);
            }
        }
        catch (OperationCanceledException) when (session.Closed.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
            // the agent's connection broke
        }
        finally
        {
            // Reports received are applied, and what was already queued for the agent (a welcome, a desired
            // set) still goes out before the call ends, so it learns what it was told even when its stream fails.
            reports.Writer.TryComplete();
            await applying;
            session.EndOutbox();
            await writer.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
            session.Close("the stream ended");
            if (sessions.Remove(session))
            {
                try
                {
                    await ledger.DisconnectAsync(arn, ledger.Self, CancellationToken.None);
                }
                catch (RpcException e)
                {
                    LogDisconnectNotApplied(logger, arn, e.Status.Detail); // the leader's monitor finds the silence
                }
            }

            LogDisconnected(logger, arn, session.CloseReason ?? "");
            await writer;
        }

        if (session.CloseReason is { } reason && reason != "the stream ended" && !context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Aborted, reason));
        }
    }

    /// <summary>
    /// The container instance the caller's client certificate names, if it is still one of this cluster's
    /// (enrolled, not deregistered); null only in the insecure test mode. Anything else is refused.
    /// </summary>
    private string? CertifiedInstance(ServerCallContext context)
    {
        var certificate = context.GetHttpContext().Connection.ClientCertificate;
        if (certificate is null)
        {
            if (options.Value.InsecureTestMode)
            {
                return null;
            }

            audit.Other("anonymous", "ecslite:AgentConnect", null, context.Peer, Core.Security.IamErrorType.MissingAuthenticationTokenException);
            throw new RpcException(new Status(StatusCode.Unauthenticated,
                "The agent channel takes a client certificate from the cluster CA, over TLS: join the host with a token (ECSLITE_JOIN_TOKEN)."));
        }

        var arn = ClusterCertificates.InstanceOf(certificate);
        var instance = arn is null ? null : state.Current.ContainerInstances.GetValueOrDefault(arn)?.ContainerInstance;
        if (instance is null || instance.Status == ContainerInstanceStatus.Inactive)
        {
            audit.Other(arn ?? "anonymous", "ecslite:AgentConnect", arn, context.Peer, "PermissionDenied");
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"The certificate of {arn ?? "no container instance"} is revoked: the instance was deregistered. Join the host again with a new token."));
        }

        return arn;
    }

    /// <summary>Applies an agent's reports in the order they came, as many at once as have queued up (with other agents' reports, see <see cref="AgentReports"/>).</summary>
    private async Task ApplyReportsAsync(AgentSession session, ChannelReader<TaskStateChange> reports)
    {
        var batch = new List<TaskStateChange>();
        while (await reports.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < ReportBatch && reports.TryRead(out var report))
            {
                batch.Add(report);
            }

            try
            {
                await ledger.ReportAsync(session.ContainerInstanceArn, ledger.Self, batch);
            }
            catch (Exception e) when (e is EcsException or RpcException)
            {
                // The store failed (the coordinator is restarting), or the leader did not answer: the agent
                // connects again and reports everything it knows.
                var reason = e is RpcException r ? r.Status.Detail : e.Message;
                LogReportsRefused(logger, session.ContainerInstanceArn, reason);
                session.Close($"its reports were not applied: {reason}");
            }
        }
    }

    private async Task HandleAsync(AgentSession session, AgentMessage message, ChannelWriter<TaskStateChange> reports)
    {
        switch (message.KindCase)
        {
            case AgentMessage.KindOneofCase.Heartbeat:
                // The usage it carries is not kept yet: nothing reads it until metrics exist.
                session.Heartbeat(time.GetTimestamp());

                // Heartbeats resumed after the monitor marked the instance disconnected (a stalled agent); a
                // follower says so with the next of its reports to the leader (HeartbeatMonitor).
                if (role.IsLeader && !state.Current.IsConnected(session.ContainerInstanceArn) && sessions.Find(session.ContainerInstanceArn) == session)
                {
                    await state.ApplyAsync((s, c) => ContainerInstanceCommands.Reconnected(s, session.ContainerInstanceArn, c, ledger.Self), session.Closed);
                    LogHeartbeatsResumed(logger, session.ContainerInstanceArn);
                }

                break;
            case AgentMessage.KindOneofCase.Ack:
                session.Acknowledge(message.Ack.Sequence);
                break;
            case AgentMessage.KindOneofCase.TaskStateChange:
                await reports.WriteAsync(message.TaskStateChange, session.Closed);
                break;
            case AgentMessage.KindOneofCase.LogChunk:
                session.Deliver(message.LogChunk);
                break;
            case AgentMessage.KindOneofCase.RenewCertificate when !options.Value.InsecureTestMode:
                var request = message.RenewCertificate.CertificateSigningRequest.ToByteArray();
                using (var renewed = certificates.IssueClient(EnrollmentService.CheckedRequest(request), session.ContainerInstanceArn, time.GetUtcNow()))
                {
                    session.Send(new CoordinatorMessage { Certificate = new RenewedCertificate { Certificate = renewed.ExportCertificatePem() } });
                }

                LogRenewed(logger, session.ContainerInstanceArn);
                break;
            default:
                throw EcsException.InvalidParameter("message", $"'{message.KindCase}' is not expected after hello.");
        }
    }

    private static async Task<AgentHello> ReadHelloAsync(IAsyncStreamReader<AgentMessage> requestStream, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HelloTimeout);
        try
        {
            if (await requestStream.MoveNext(timeout.Token) && requestStream.Current.KindCase == AgentMessage.KindOneofCase.Hello)
            {
                return requestStream.Current.Hello;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "the agent ended its stream before its hello"));
        }

        throw EcsException.InvalidParameter("hello", "an agent must send hello first, within 10 seconds of connecting.");
    }

    /// <summary>The one writer of this response stream.</summary>
    private async Task WriteAsync(AgentSession session, IServerStreamWriter<CoordinatorMessage> responseStream)
    {
        try
        {
            var outbox = session.Outbox;
            while (await outbox.WaitToReadAsync(session.Closed))
            {
                while (outbox.TryRead(out var message))
                {
                    if (message.DesiredTasks is { } set)
                    {
                        DesiredSets.TakeQueued(set, outbox);
                    }

                    if (role.Acting is { IsCompleted: false } acting)
                    {
                        await acting.WaitAsync(session.Closed); // the lead is in doubt: agents are told nothing until etcd answers
                    }

                    // Flushed once nothing more is queued: the messages of a burst share TLS records and writes.
                    responseStream.WriteOptions = outbox.TryPeek(out _) ? Buffered : null;
                    await responseStream.WriteAsync(message, session.Closed);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            session.Close("the stream to the agent broke");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent connected: {ContainerInstanceArn} ({Hostname}, from {Peer})")]
    private static partial void LogConnected(ILogger logger, string containerInstanceArn, string hostname, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent disconnected: {ContainerInstanceArn} ({Reason})")]
    private static partial void LogDisconnected(ILogger logger, string containerInstanceArn, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reports of {ContainerInstanceArn} were not applied: {Reason}")]
    private static partial void LogReportsRefused(ILogger logger, string containerInstanceArn, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The end of {ContainerInstanceArn}'s stream was not applied: {Reason}")]
    private static partial void LogDisconnectNotApplied(ILogger logger, string containerInstanceArn, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Renewed the client certificate of {ContainerInstanceArn}")]
    private static partial void LogRenewed(ILogger logger, string containerInstanceArn);

    [LoggerMessage(Level = LogLevel.Information, Message = "Heartbeats resumed: {ContainerInstanceArn} is connected again")]
    private static partial void LogHeartbeatsResumed(ILogger logger, string containerInstanceArn);
}
