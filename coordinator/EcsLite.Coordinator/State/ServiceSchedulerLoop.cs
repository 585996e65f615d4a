using EcsLite.Coordinator.Agents;
using EcsLite.Coordinator.Core.Services;
using EcsLite.Coordinator.Core.State;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.State;

/// <summary>
/// Runs the service scheduler level-triggered: after any published change (changes that arrive while
/// a pass runs coalesce into the next one), when a grace period or throttle ends, and every few seconds
/// regardless. Its changes go through the state machine like any command; agents then hear of the
/// tasks it placed or stopped (<see cref="ClusterStateMachine.TasksForAgents"/>). A failing pass is retried with a growing delay.
/// </summary>
public sealed partial class ServiceSchedulerLoop(
    CoordinatorRole role, ClusterStateMachine state, TimeProvider time, Observability.CoordinatorMetrics metrics,
    IOptions<CoordinatorOptions> options, ILogger<ServiceSchedulerLoop> logger) : BackgroundService
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(5);
    private readonly ServicePassMemo _memo = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await role.Leading.WaitAsync(stoppingToken); // the leader's work only
        // Agents not seen since this start get the time to reconnect (their backoff is capped at 30 s) on top of the grace.
        var settings = new ServiceSchedulerSettings(options.Value.LostInstanceGrace, time.GetUtcNow() + TimeSpan.FromSeconds(30));
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var changed = state.Changed;
            var wait = Idle;
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                if (state.Loaded && !state.Current.Services.IsEmpty)
                {
                    var pass = await state.ApplyAsync((s, c) => ServiceScheduler.Run(s, c, settings, Random.Shared, () => Guid.NewGuid().ToString("N"), _memo), stoppingToken);
                    metrics.ObservePass(System.Diagnostics.Stopwatch.GetElapsedTime(started), ok: true);
                    if (pass.RecheckAt is { } at)
                    {
                        wait = TimeSpan.FromTicks(Math.Clamp((at - time.GetUtcNow()).Ticks, TimeSpan.FromMilliseconds(50).Ticks, Idle.Ticks));
                    }

                    // A pass that changed something is seen by the next one: go again at once.
                    if (pass.ChangedTasks.Count > 0)
                    {
                        failures = 0;
                        continue;
                    }
                }

                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                failures++;
                metrics.ObservePass(System.Diagnostics.Stopwatch.GetElapsedTime(started), ok: false);
                wait = PassBackoff.After(failures);
                LogPassFailed(logger, failures, wait, e);
            }

            await Task.WhenAny(changed, Task.Delay(wait, time, stoppingToken)).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Service scheduler pass failed ({Failures} in a row); next try in {Wait}")]
    private static partial void LogPassFailed(ILogger logger, int failures, TimeSpan wait, Exception exception);
}
