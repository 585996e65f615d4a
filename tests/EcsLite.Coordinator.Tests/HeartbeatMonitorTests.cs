using EcsLite.Coordinator.Agents;

namespace EcsLite.Coordinator.Tests;

public sealed class HeartbeatMonitorTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(6); // 3 heartbeats of 2 s

    [Fact]
    public void An_agent_is_silent_for_as_long_as_nobody_heard_of_it_since_it_connected_or_this_coordinator_led()
    {
        static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

        // Heartbeats stopped 7 s ago, long after it connected and the lead began: past the limit.
        Assert.True(HeartbeatMonitor.Silent(S(7), S(600), S(600)) > Limit);
        Assert.True(HeartbeatMonitor.Silent(S(1), S(600), S(600)) <= Limit);

        // Just joined, its session not registered yet (nothing heard): not silent, however long ago the lead began.
        Assert.True(HeartbeatMonitor.Silent(null, S(600), S(0.01)) <= Limit);

        // A new leader has heard nothing yet of agents connected long ago: they have a limit's time to be heard of.
        Assert.True(HeartbeatMonitor.Silent(null, S(1), S(600)) <= Limit);
        Assert.True(HeartbeatMonitor.Silent(null, S(7), S(600)) > Limit);
    }
}
