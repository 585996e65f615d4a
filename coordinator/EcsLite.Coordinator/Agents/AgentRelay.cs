using EcsLite.Api.V1;
using EcsLite.Coordinator.Api;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.State;
using Grpc.Core;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// A following coordinator's end of an agent's stream: relayed, message for message, to the leader, which
/// runs the protocol (hello, desired sets, reports, heartbeats, logs, certificate renewal) as for an agent
/// connected to it. The leader takes the agent's identity from its certificate, which the relay passes on
/// (<see cref="AgentCertificateHeader"/>) and the leader believes only from a coordinator's certificate.
/// The relay ends when the leader changes or stops answering; the agent connects again, keeping its containers.
/// </summary>
public sealed partial class AgentRelay(CoordinatorRole role, LeaderForwarder forwarder, IHostApplicationLifetime lifetime, ILogger<AgentRelay> logger)
{
    /// <summary>The relayed agent's client certificate (DER, base64), as the follower's TLS handshake took it.</summary>
    public const string AgentCertificateHeader = "ecslite-agent-certificate";

    private static readonly TimeSpan LeaderWait = TimeSpan.FromSeconds(10);

    public async Task RelayAsync(IAsyncStreamReader<AgentMessage> fromAgent, IServerStreamWriter<CoordinatorMessage> toAgent, ServerCallContext context)
    {
        LeaderRecord leader;
        try
        {
            leader = await role.LeaderAsync(LeaderWait, context.CancellationToken)
                ?? throw new RpcException(new Status(StatusCode.Unavailable, "This coordinator has just become the leader: connect again."));
        }
        catch (EcsException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
        }

        var headers = new Metadata();
        if (context.GetHttpContext().Connection.ClientCertificate is { } certificate)
        {
            headers.Add(AgentCertificateHeader, Convert.ToBase64String(certificate.RawData));
        }

        using var relay = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        var leaderChanged = EndOnLeaderChangeAsync(leader, relay);
        LogRelaying(logger, context.Peer, leader.Name);
        using var upstream = new AgentChannel.AgentChannelClient(forwarder.ChannelTo(leader.Address)).Connect(headers, cancellationToken: relay.Token);
        var up = Task.Run(async () =>
        {
            await foreach (var message in fromAgent.ReadAllAsync(relay.Token))
            {
                await upstream.RequestStream.WriteAsync(message, relay.Token);
            }

            await upstream.RequestStream.CompleteAsync();
        });
        try
        {
            await foreach (var message in upstream.ResponseStream.ReadAllAsync(relay.Token))
            {
                await toAgent.WriteAsync(message, relay.Token);
            }
        }
        catch (RpcException e) when (!context.CancellationToken.IsCancellationRequested)
        {
            // The leader's refusal (a revoked certificate, a bad hello) or its end, as the agent would have had it.
            throw new RpcException(new Status(e.StatusCode == StatusCode.Cancelled ? StatusCode.Unavailable : e.StatusCode,
                $"{e.Status.Detail} (relayed from the leader, {leader.Name})"), e.Trailers);
        }
        catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "The leader changed, or this coordinator is stopping: connect again."));
        }
        finally
        {
            relay.Cancel();
            await Task.WhenAll(up, leaderChanged).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Ends the relay once the leader changes (to this one, too) or is gone.</summary>
    private async Task EndOnLeaderChangeAsync(LeaderRecord leader, CancellationTokenSource relay)
    {
        while (!relay.IsCancellationRequested)
        {
            var changed = role.Changed;
            if (role.IsLeader || role.Leader?.Address != leader.Address)
            {
                await relay.CancelAsync();
                return;
            }

            await changed.WaitAsync(relay.Token);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Relaying the agent at {Peer} to the leader, {Leader}")]
    private static partial void LogRelaying(ILogger logger, string peer, string leader);
}
