namespace EcsLite.Coordinator.State;

/// <summary>How long a background loop (the service scheduler, the schedules) waits after passes that failed in a row: 400 ms doubling, at most 30 s.</summary>
public static class PassBackoff
{
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(30);

    public static TimeSpan After(int failures) =>
        TimeSpan.FromTicks(Math.Min(Max.Ticks, TimeSpan.FromMilliseconds(200).Ticks << Math.Min(failures, 10)));
}
