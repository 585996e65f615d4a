using System.Collections.Immutable;
using EcsLite.Coordinator.Core.Schedules;
using EcsLite.Coordinator.State;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Schedules;

/// <summary>
/// Fires schedules when their slots come: a pass (one command of the state machine, see
/// <see cref="ScheduleRunner"/>) when the earliest slot or retry is due. When that is, is worked out
/// again only when the schedules change (a pass, or a schedule created, updated or deleted). The tasks
/// a pass starts reach their agents as every task change does. A failing pass is retried with a growing delay.
/// </summary>
public sealed partial class ScheduleLoop(CoordinatorRole role, ClusterStateMachine state, TimeProvider time, ILogger<ScheduleLoop> logger) : BackgroundService
{
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await role.Leading.WaitAsync(stoppingToken); // the leader's work only
        var failures = 0;
        ImmutableSortedDictionary<string, StoredSchedule>? seen = null;
        DateTimeOffset? due = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var changed = state.Changed;
            var wait = Idle;
            try
            {
                var current = state.Current;
                if (!ReferenceEquals(current.Schedules, seen))
                {
                    (seen, due) = (current.Schedules, ScheduleRunner.NextDue(current));
                }

                if (state.Loaded && due <= time.GetUtcNow())
                {
                    await RunPassesAsync(stoppingToken);
                    failures = 0;
                    continue; // the passes changed the schedules: when the next is due is worked out again
                }

                if (due is { } at)
                {
                    wait = TimeSpan.FromTicks(Math.Clamp((at - time.GetUtcNow()).Ticks, 0, Idle.Ticks));
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                failures++;
                wait = PassBackoff.After(failures);
                LogPassFailed(logger, failures, wait, e);
            }

            await Task.WhenAny(changed, Task.Delay(wait, time, stoppingToken)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Passes follow each other while slots are left, each queued as soon as the one before has run (not
    /// once it is on disk: the store commits one while the next computes), and the next queued before this
    /// loop looks at the one before: the command thread goes from pass to pass without waiting for this
    /// loop's turn on a busy thread pool. The pass queued after the last finds nothing left (or what fell
    /// due meanwhile). Done once every pass is durable.
    /// </summary>
    private async Task RunPassesAsync(CancellationToken stoppingToken)
    {
        var committing = new List<Task>();
        var queued = RunPassAsync();
        try
        {
            SchedulePass pass;
            do
            {
                var running = queued;
                queued = RunPassAsync();
                (pass, var committed) = await running;
                committing.Add(committed);
                LogPass(pass);
            }
            while (pass.More && !stoppingToken.IsCancellationRequested);
        }
        finally
        {
            var (last, committed) = await queued;
            committing.Add(committed);
            LogPass(last);
        }

        await Task.WhenAll(committing);
    }

    private Task<(SchedulePass Result, Task Committed)> RunPassAsync() =>
        state.RunAsync((s, c) => ScheduleRunner.Run(s, c, Random.Shared, () => Guid.NewGuid().ToString("N")));

    private void LogPass(SchedulePass pass)
    {
        if (pass.Fired > 0)
        {
            LogFired(logger, pass.Fired);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Schedules fired {Fired} slot(s)")]
    private static partial void LogFired(ILogger logger, int fired);

    [LoggerMessage(Level = LogLevel.Error, Message = "Schedule pass failed ({Failures} in a row); next try in {Wait}")]
    private static partial void LogPassFailed(ILogger logger, int failures, TimeSpan wait, Exception exception);
}
