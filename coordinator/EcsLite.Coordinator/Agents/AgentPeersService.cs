using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Security;
using EcsLite.Coordinator.State;
using EcsLite.Security;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// The coordinators' service to each other (never for other callers: only a client certificate the cluster
/// CA issued to a coordinator is answered). The leader applies what the followers' agents change (joins,
/// reports, ends, liveness, tasks too large to send); any coordinator reads logs from the agents it holds.
/// </summary>
public sealed class AgentPeersService(
    CoordinatorRole role, AgentLedger ledger, AgentLogs logs, ClusterStateMachine state, ClusterCertificates certificates, AuditLog audit, IOptions<CoordinatorOptions> options)
    : AgentPeers.AgentPeersBase
{
    public override async Task<PeerJoinResponse> Join(PeerJoinRequest request, ServerCallContext context)
    {
        Admit(context, leaderOnly: true);
        var (arn, cluster) = await ledger.JoinAsync(request.Hello, request.Holder, context.CancellationToken);
        return new PeerJoinResponse { ContainerInstanceArn = arn, Cluster = cluster, Revision = state.Revision };
    }

    public override async Task<PeerResponse> Report(PeerReportRequest request, ServerCallContext context)
    {
        Admit(context, leaderOnly: true);
        await ledger.ReportAsync(request.ContainerInstanceArn, request.Holder, request.Reports);
        return new PeerResponse { Revision = state.Revision };
    }

    public override async Task<PeerResponse> Disconnect(PeerAgentRequest request, ServerCallContext context)
    {
        Admit(context, leaderOnly: true);
        await ledger.DisconnectAsync(request.ContainerInstanceArn, request.Holder, context.CancellationToken);
        return new PeerResponse { Revision = state.Revision };
    }

    public override async Task<PeerResponse> Alive(PeerAliveRequest request, ServerCallContext context)
    {
        Admit(context, leaderOnly: true);
        await ledger.AliveAsync(request.Holder, request.ContainerInstanceArns, context.CancellationToken);
        return new PeerResponse { Revision = state.Revision };
    }

    public override async Task<PeerResponse> Undeliverable(PeerUndeliverableRequest request, ServerCallContext context)
    {
        Admit(context, leaderOnly: true);
        await ledger.UndeliverableAsync(request.TaskArns, context.CancellationToken);
        return new PeerResponse { Revision = state.Revision };
    }

    public override async Task ReadLogs(PeerLogsRequest request, IServerStreamWriter<LogChunk> responseStream, ServerCallContext context)
    {
        Admit(context, leaderOnly: false);
        try
        {
            await foreach (var chunk in logs.ReadAsync(request.ContainerInstanceArn, request.Request, hereOnly: true, context.CancellationToken))
            {
                await responseStream.WriteAsync(chunk, context.CancellationToken);
            }
        }
        catch (IOException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
        }
    }

    /// <summary>
    /// Only another coordinator of this cluster; what changes the state, only on the leader (a coordinator that
    /// no longer leads refuses, and the caller asks whichever leads now).
    /// </summary>
    private void Admit(ServerCallContext context, bool leaderOnly)
    {
        var certificate = context.GetHttpContext().Connection.ClientCertificate;
        if (!options.Value.InsecureTestMode && (certificate is null || !certificates.IssuedCoordinator(certificate)))
        {
            audit.Other(certificate is null ? "anonymous" : ClusterCertificates.InstanceOf(certificate) ?? "anonymous", "ecslite:AgentPeers", null, context.Peer,
                certificate is null ? IamErrorType.MissingAuthenticationTokenException : IamErrorType.UnrecognizedClientException);
            throw new RpcException(new Status(StatusCode.Unauthenticated, "Only a coordinator of this cluster may call AgentPeers (with its client certificate)."));
        }

        if (leaderOnly && !role.IsLeader)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "This coordinator does not lead the cluster (any more): ask the one that does."));
        }
    }
}
