using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// The coordinator's end of each agent's stream: hello registers or rejoins the container instance,
/// welcome and the full desired task set answer it, heartbeats keep it connected.
/// </summary>
public sealed partial class AgentChannelService(
    ClusterStateMachine state, AgentSessions sessions, TimeProvider time, IHostApplicationLifetime lifetime,
    IOptions<CoordinatorOptions> options, ILogger<AgentChannelService> logger) : AgentChannel.AgentChannelBase
{
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);

    public override async Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<CoordinatorMessage> responseStream, ServerCallContext context)
    {
        var hello = await ReadHelloAsync(requestStream, context.CancellationToken);
        var stored = await state.ApplyAsync((s, c) => ContainerInstanceCommands.Join(s, hello, c, Guid.NewGuid().ToString("N")), context.CancellationToken);
        var arn = stored.ContainerInstance.ContainerInstanceArn;

        using var session = new AgentSession(arn, time.GetTimestamp(), context.CancellationToken);
        sessions.Replace(session)?.Close("replaced by a newer connection from the same container instance");

        // A stream lasts as long as its agent does: on shutdown end it, or stopping would wait for every agent.
        using var stopping = lifetime.ApplicationStopping.Register(() => session.Close("the coordinator is stopping"));
        LogConnected(logger, arn, hello.Hostname, context.Peer);
        var writer = WriteAsync(session, responseStream);

        session.Send(new CoordinatorMessage
        {
            Welcome = new Welcome { ContainerInstanceArn = arn, Cluster = stored.Cluster, HeartbeatInterval = Duration.FromTimeSpan(options.Value.HeartbeatInterval) },
        });

        // What the agent already runs, as it says, then everything wanted of it (after the reports, so
        // tasks it finished while away count as finished).
        await state.ApplyAsync((s, c) => TaskCommands.ReportAll(s, arn, hello.Tasks, c), context.CancellationToken);

        var full = new DesiredTaskSet { Sequence = session.NextSequence(), Full = true };
        full.Tasks.Add(TaskCommands.DesiredFor(state.Current, arn));
        session.Send(new CoordinatorMessage { DesiredTasks = full });

        try
        {
            while (await requestStream.MoveNext(session.Closed))
            {
                await HandleAsync(session, requestStream.Current);
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

    private async Task HandleAsync(AgentSession session, AgentMessage message)
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
                var report = message.TaskStateChange;
                await state.ApplyAsync((s, c) => TaskCommands.Report(s, session.ContainerInstanceArn, report, c), session.Closed);
                break;
            case AgentMessage.KindOneofCase.LogChunk:
                session.Deliver(message.LogChunk);
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

        throw EcsException.InvalidParameter("hello", "an agent must send hello first, within 10 seconds of connecting.");
    }

    /// <summary>The one writer of this response stream.</summary>
    private async Task WriteAsync(AgentSession session, IServerStreamWriter<CoordinatorMessage> responseStream)
    {
        try
        {
            await foreach (var message in session.Outbox.ReadAllAsync(session.Closed))
            {
                await responseStream.WriteAsync(message, session.Closed);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Heartbeats resumed: {ContainerInstanceArn} is connected again")]
    private static partial void LogHeartbeatsResumed(ILogger logger, string containerInstanceArn);
}
