using Microsoft.Extensions.Hosting.Systemd;

namespace EcsLite.Coordinator.State;

/// <summary>
/// Feeds systemd's watchdog (the unit's WatchdogSec, given as WATCHDOG_USEC) only while the coordinator's
/// heart works: at every half interval a command that changes nothing goes through the state machine and
/// behind the store's writes in flight (<see cref="ClusterStateMachine.ProbeAsync"/>), and WATCHDOG=1 is
/// sent only if it came back within that half. A stuck command thread or a store that no longer commits
/// stops the pings, and systemd restarts the service, which rebuilds its state from the store.
/// Outside systemd (AddSystemd registers no notifier then) it does nothing.
/// </summary>
internal sealed partial class SystemdWatchdog(ClusterStateMachine state, ILogger<SystemdWatchdog> logger, ISystemdNotifier? systemd = null) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (systemd is not { IsEnabled: true } || !long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), out var usec) || usec <= 0)
        {
            return;
        }

        var half = TimeSpan.FromMicroseconds(usec / 2);
        using var timer = new PeriodicTimer(half);
        Task? probe = null; // one at a time: a stuck probe is waited for again, not joined by more
        var stalled = false;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                probe ??= state.ProbeAsync();
                if (await Task.WhenAny(probe, Task.Delay(half, stoppingToken)) == probe && probe.IsCompletedSuccessfully)
                {
                    probe = null;
                    systemd.Notify(new ServiceState("WATCHDOG=1"));
                    stalled = false;
                }
                else if (!stalled)
                {
                    stalled = true;
                    LogStalled(logger, half.TotalSeconds);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The state machine or the store has not answered within {Seconds:F1} s: the systemd watchdog is not fed until it does")]
    private static partial void LogStalled(ILogger logger, double seconds);
}
