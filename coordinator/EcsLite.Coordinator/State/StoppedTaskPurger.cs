using EcsLite.Coordinator.Core.Tasks;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.State;

/// <summary>
/// Purges STOPPED tasks, INACTIVE services and deregistered container instances once they are older than
/// StoppedTaskRetention, so the state and the store do not grow without bound.
/// </summary>
public sealed partial class StoppedTaskPurger(CoordinatorRole role, ClusterStateMachine state, TimeProvider time, IOptions<CoordinatorOptions> options, ILogger<StoppedTaskPurger> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await role.Leading.WaitAsync(stoppingToken); // the leader's work only
        var retention = options.Value.StoppedTaskRetention;
        var every = TimeSpan.FromTicks(Math.Clamp(retention.Ticks / 4, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(1).Ticks));
        using var timer = new PeriodicTimer(every, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!state.Loaded)
            {
                continue;
            }

            var purged = await state.ApplyAsync((s, c) => TaskCommands.Purge(s, c, retention), stoppingToken);
            if (purged > 0)
            {
                LogPurged(logger, purged, retention);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Purged {Count} STOPPED tasks, INACTIVE services and deregistered instances older than {Retention}")]
    private static partial void LogPurged(ILogger logger, int count, TimeSpan retention);
}
