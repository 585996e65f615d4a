using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.State;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// Marks an instance disconnected once its agent has missed the configured number of heartbeats,
/// even while its stream stays open (a stalled agent or a half-open connection).
/// </summary>
public sealed partial class HeartbeatMonitor(
    CoordinatorRole role, AgentSessions sessions, ClusterStateMachine state, TimeProvider time,
    IOptions<CoordinatorOptions> options, ILogger<HeartbeatMonitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await role.Leading.WaitAsync(stoppingToken); // the leader's work only
        var interval = options.Value.HeartbeatInterval;
        var limit = interval * options.Value.MissedHeartbeats;
        using var timer = new PeriodicTimer(interval / 4, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = time.GetTimestamp();
            foreach (var session in sessions.All)
            {
                if (time.GetElapsedTime(session.LastHeartbeat, now) <= limit || !state.Current.IsConnected(session.ContainerInstanceArn))
                {
                    continue;
                }

                LogMissed(logger, session.ContainerInstanceArn, options.Value.MissedHeartbeats);
                await state.ApplyAsync((s, c) => ContainerInstanceCommands.Disconnected(s, session.ContainerInstanceArn, c), stoppingToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Agent {ContainerInstanceArn} missed {Missed} heartbeats; marked disconnected")]
    private static partial void LogMissed(ILogger logger, string containerInstanceArn, int missed);
}
