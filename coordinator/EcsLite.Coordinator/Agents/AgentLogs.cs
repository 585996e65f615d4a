using System.Runtime.CompilerServices;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Api;
using EcsLite.Coordinator.State;
using Grpc.Core;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// A container's logs, asked of its agent over the agent's own stream: here when this coordinator holds it,
/// else through the coordinator that does (the connection names it). The answer ends with the agent's last
/// chunk; an agent no coordinator holds, or one lost midway, is an <see cref="IOException"/>.
/// </summary>
public sealed class AgentLogs(AgentSessions sessions, ClusterStateMachine state, AgentLedger ledger, LeaderForwarder forwarder)
{
    public async IAsyncEnumerable<LogChunk> ReadAsync(string containerInstanceArn, LogRequest request, bool hereOnly, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (sessions.Find(containerInstanceArn) is { } session)
        {
            var (id, chunks) = session.RequestLogs(request);
            try
            {
                await foreach (var chunk in chunks.ReadAllAsync(cancellationToken))
                {
                    yield return chunk;
                }
            }
            finally
            {
                session.EndLogs(id);
            }

            yield break;
        }

        var holder = state.Current.Connections.GetValueOrDefault(containerInstanceArn) is { Connected: true } connection
            && connection.Holder.Length > 0 && connection.Holder != ledger.Self && !hereOnly ? connection.Holder : null;
        if (holder is null)
        {
            throw new IOException($"the agent of {containerInstanceArn}, which has this task's logs, is not connected.");
        }

        using var call = new AgentPeers.AgentPeersClient(forwarder.ChannelTo(holder))
            .ReadLogs(new PeerLogsRequest { ContainerInstanceArn = containerInstanceArn, Request = request }, cancellationToken: cancellationToken);
        while (true)
        {
            try
            {
                if (!await call.ResponseStream.MoveNext(cancellationToken))
                {
                    yield break;
                }
            }
            catch (RpcException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            catch (RpcException e)
            {
                throw new IOException($"{e.Status.Detail} (through {holder})", e);
            }

            yield return call.ResponseStream.Current;
        }
    }
}
