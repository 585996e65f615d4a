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
/// handshake); a deregistered instance's certificate is refused.
/// </summary>
public sealed partial class AgentChannelService(
    ClusterStateMachine state, CoordinatorRole role, AgentRelay relay, AgentSessions sessions, TaskDispatcher dispatcher, AgentReports agentReports, TimeProvider time, IHostApplicationLifetime lifetime,
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
        if (!role.IsLeader)
        {
            // The leader runs every agent's protocol; a follower passes the stream on.
            await relay.RelayAsync(requestStream, responseStream, context);
            return;
        }

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

        var stored = await state.ApplyAsync((s, c) => ContainerInstanceCommands.Join(s, hello, c, Guid.NewGuid().ToString("N")), context.CancellationToken);
        var arn = stored.ContainerInstance.ContainerInstanceArn;

        using var session = new AgentSession(arn, time.GetTimestamp(), context.CancellationToken);
        sessions.Replace(session)?.Close("replaced by a newer connection from the same container instance");

        // A stream lasts as long as its agent does: on shutdown end it, or stopping would wait for every agent.
        using var stopping = lifetime.ApplicationStopping.Register(() => session.Close("the coordinator is stopping"));
        LogConnected(logger, arn, CallerText.Quote(hello.Hostname, 255), context.Peer);
        var writer = WriteAsync(session, responseStream);

        session.Send(new CoordinatorMessage
        {
            Welcome = new Welcome { ContainerInstanceArn = arn, Cluster = stored.Cluster, HeartbeatInterval = Duration.FromTimeSpan(options.Value.HeartbeatInterval) },
        });

        // What the agent already runs, as it says, then everything wanted of it (after the reports, so
        // tasks it finished while away count as finished).
        await state.ApplyAsync((s, c) => TaskCommands.ReportAll(s, arn, hello.Tasks, c), context.CancellationToken);

        dispatcher.Send(session, TaskCommands.DesiredFor(state.Current, arn), full: true);

        // Reports are applied in order, many to a command, by a loop of their own: the stream goes on being
        // read meanwhile, so heartbeats never wait behind a burst of reports for their writes.
        var reports = Channel.CreateBounded<TaskStateChange>(new BoundedChannelOptions(ReportBacklog) { SingleReader = true, SingleWriter = true });
        var applying = ApplyReportsAsync(arn, reports.Reader);
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
                await state.ApplyAsync((s, c) => ContainerInstanceCommands.Disconnected(s, arn, c), CancellationToken.None);
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
        if (certificate is not null && context.RequestHeaders.GetValue(AgentRelay.AgentCertificateHeader) is { } relayed)
        {
            certificate = RelayedCertificate(certificate, relayed, context);
        }
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

    /// <summary>The certificate of an agent a following coordinator relays: believed only from a coordinator, and only if the CA issued it.</summary>
    private System.Security.Cryptography.X509Certificates.X509Certificate2 RelayedCertificate(
        System.Security.Cryptography.X509Certificates.X509Certificate2 relay, string relayed, ServerCallContext context)
    {
        if (!certificates.IssuedCoordinator(relay))
        {
            audit.Other(ClusterCertificates.InstanceOf(relay) ?? "anonymous", "ecslite:AgentConnect", null, context.Peer, "PermissionDenied");
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"Only a coordinator of this cluster may relay an agent ({AgentRelay.AgentCertificateHeader})."));
        }

        try
        {
            var agent = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(Convert.FromBase64String(relayed));
            if (certificates.IssuedClient(agent))
            {
                return agent;
            }
        }
        catch (Exception e) when (e is FormatException or System.Security.Cryptography.CryptographicException)
        {
        }

        throw new RpcException(new Status(StatusCode.PermissionDenied, "The relayed agent's certificate is not one of this cluster's."));
    }

    /// <summary>Applies an agent's reports in the order they came, as many at once as have queued up (with other agents' reports, see <see cref="AgentReports"/>).</summary>
    private async Task ApplyReportsAsync(string containerInstanceArn, ChannelReader<TaskStateChange> reports)
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
                await agentReports.ApplyAsync(containerInstanceArn, batch);
            }
            catch (EcsException e)
            {
                LogReportsRefused(logger, containerInstanceArn, e.Message); // the store failed: the coordinator is restarting
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

                // Heartbeats resumed after the monitor marked the instance disconnected (a stalled agent).
                if (!state.Current.IsConnected(session.ContainerInstanceArn) && sessions.Find(session.ContainerInstanceArn) == session)
                {
                    await state.ApplyAsync((s, c) => ContainerInstanceCommands.Reconnected(s, session.ContainerInstanceArn, c), session.Closed);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Renewed the client certificate of {ContainerInstanceArn}")]
    private static partial void LogRenewed(ILogger logger, string containerInstanceArn);

    [LoggerMessage(Level = LogLevel.Information, Message = "Heartbeats resumed: {ContainerInstanceArn} is connected again")]
    private static partial void LogHeartbeatsResumed(ILogger logger, string containerInstanceArn);
}
