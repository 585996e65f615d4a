using EcsLite.Api.V1;
using EcsLite.Coordinator.Api;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.State;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// On the leader: marks an instance disconnected once its agent has missed the configured number of
/// heartbeats, even while its stream stays open (a stalled agent or a half-open connection). The leader
/// hears the heartbeats of agents it holds itself; of agents another coordinator holds, from that
/// coordinator, which tells it every heartbeat interval which of its agents send them. A coordinator that
/// dies takes its word with it: its agents count as disconnected once the leader has missed it as long.
/// A leader just elected counts every connected agent as heard of when it began to lead, and every agent
/// counts as heard of when it connected.
/// </summary>
public sealed partial class HeartbeatMonitor(
    CoordinatorRole role, AgentSessions sessions, AgentLedger ledger, ClusterStateMachine state, LeaderForwarder forwarder, TimeProvider time,
    IOptions<CoordinatorOptions> options, ILogger<HeartbeatMonitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.HeartbeatInterval;
        var limit = interval * options.Value.MissedHeartbeats;
        using var timer = new PeriodicTimer(interval / 4, time);
        long? ledAt = null;
        for (var tick = 0L; await timer.WaitForNextTickAsync(stoppingToken); tick++)
        {
            if (role.IsLeader)
            {
                ledAt ??= time.GetTimestamp();
                await MarkSilentAsync(ledAt.Value, limit, stoppingToken);
            }
            else if (tick % 4 == 0 && role.Leader is { Address.Length: > 0 } leader)
            {
                await TellLeaderAsync(leader, limit, stoppingToken);
            }
        }
    }

    private async Task MarkSilentAsync(long ledAt, TimeSpan limit, CancellationToken stoppingToken)
    {
        var (now, wallNow) = (time.GetTimestamp(), time.GetUtcNow());
        foreach (var (arn, connection) in state.Current.Connections)
        {
            var heard = connection.Holder == ledger.Self ? sessions.Find(arn)?.LastHeartbeat : ledger.LastAlive(arn);
            if (!connection.Connected || Silent(heard is { } at ? time.GetElapsedTime(at, now) : null, time.GetElapsedTime(ledAt, now), wallNow - connection.Since) <= limit)
            {
                continue;
            }

            var holder = connection.Holder == ledger.Self ? "" : $" (held by {connection.Holder})";
            LogMissed(logger, arn, options.Value.MissedHeartbeats, holder);
            await state.ApplyAsync((s, c) => ContainerInstanceCommands.Disconnected(s, arn, c, connection.Holder), stoppingToken);
        }
    }

    /// <summary>
    /// How long an agent has not been heard of: since its last heartbeat here or the last word of the coordinator
    /// holding it (null: none yet), and at most since it connected (its session may not be registered yet) or
    /// since this coordinator began to lead.
    /// </summary>
    public static TimeSpan Silent(TimeSpan? sinceHeard, TimeSpan sinceLeading, TimeSpan sinceConnected) =>
        TimeSpan.FromTicks(Math.Min(Math.Min(sinceHeard?.Ticks ?? long.MaxValue, sinceLeading.Ticks), sinceConnected.Ticks));

    /// <summary>A follower's word to the leader: the agents it holds whose heartbeats arrive.</summary>
    private async Task TellLeaderAsync(LeaderRecord leader, TimeSpan limit, CancellationToken stoppingToken)
    {
        var now = time.GetTimestamp();
        var alive = sessions.All.Where(s => time.GetElapsedTime(s.LastHeartbeat, now) <= limit).Select(s => s.ContainerInstanceArn).ToList();
        if (alive.Count == 0)
        {
            return;
        }

        try
        {
            await new AgentPeers.AgentPeersClient(forwarder.ChannelTo(leader.Address))
                .AliveAsync(new PeerAliveRequest { Holder = ledger.Self, ContainerInstanceArns = { alive } }, deadline: DateTime.UtcNow + limit, cancellationToken: stoppingToken);
        }
        catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
        {
            LogLeaderNotTold(logger, leader.Name, e.Status.Detail); // again next interval
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Agent {ContainerInstanceArn} missed {Missed} heartbeats{Holder}; marked disconnected")]
    private static partial void LogMissed(ILogger logger, string containerInstanceArn, int missed, string holder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not tell the leader, {Leader}, which agents are here: {Reason}")]
    private static partial void LogLeaderNotTold(ILogger logger, string leader, string reason);
}
