using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// N schedules of rate(1 minute) over M simulated hosts (the fleet simulator's agents; their tasks end on
/// their own after 20 s, as a batch job's do). Lateness is measured twice: from each slot to its fire
/// (the pass that placed its task, from the schedule's own record), and from each slot to the moment the
/// task's host reports it RUNNING (it does so as soon as it hears of the task). Baseline: the
/// coordinator's CPU with the same fleet and no schedules, measured first in the same run.
/// The fleet runs at a lower CPU priority than the coordinator (<c>--fleet-nice</c>, 10; 0 for none): the
/// hosts it stands in for have CPUs of their own.
/// Usage: ... schedules [--schedules 10000] [--agents 1000] [--minutes 3] [--fleet-nice 10]
/// </summary>
internal static class ScheduleBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var schedules = Report.Option(args, "--schedules", 10_000);
        var agents = Report.Option(args, "--agents", 1000);
        var minutes = Report.Option(args, "--minutes", 3);
        var fleetNice = Report.Option(args, "--fleet-nice", 10);
        await using var coordinator = await CoordinatorProcess.StartAsync(null, "--StoppedTaskRetention=00:01:00");
        Report.LowerOwnPriority(fleetNice); // the coordinator started first, at the priority it has alone
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, agents, runFor: TimeSpan.FromSeconds(20)).WaitAsync(TimeSpan.FromMinutes(5));
        await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "job", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16, Cpu = 8 } },
        });

        await Task.Delay(TimeSpan.FromSeconds(10));
        var window = TimeSpan.FromMinutes(minutes);
        var baselineWrites = Report.StorageWriteBytes(coordinator.ProcessId);
        var baseline = await Report.CpuPercentAsync(coordinator.ProcessId, window);
        baselineWrites = Report.StorageWriteBytes(coordinator.ProcessId) - baselineWrites;
        var baselineRss = Report.RssKiB(coordinator.ProcessId);

        // The schedules, created by 16 callers, all within one minute (so their first slots are all the same
        // one, and it is measured: the first fires run the passes' code cold); all share the slots of whole minutes.
        if (DateTimeOffset.UtcNow.Second is var second and > 40)
        {
            await Task.Delay(TimeSpan.FromSeconds(61 - second));
        }

        var boundary = MinuteOf(DateTimeOffset.UtcNow).AddMinutes(1);
        var scheduler = new Scheduler.SchedulerClient(coordinator.Channel);
        var created = Stopwatch.StartNew();
        await Report.FromCallersAsync(16, schedules, i => scheduler.CreateScheduleAsync(new CreateScheduleRequest
        {
            Name = $"job-{i:D5}", ScheduleExpression = "rate(1 minute)", FlexibleTimeWindow = new FlexibleTimeWindow { Mode = "OFF" },
            Target = new Target { Arn = "arn:aws:ecs:local:000000000000:cluster/default", EcsParameters = new EcsParameters { TaskDefinitionArn = "job" } },
        }).ResponseAsync);
        var createTime = created.Elapsed;

        // Measured over whole minutes from the schedules' first slot, for the same window as the baseline.
        var (wallAtStart, ticksAtStart) = (DateTimeOffset.UtcNow, Stopwatch.GetTimestamp());
        if (wallAtStart >= boundary)
        {
            throw new InvalidOperationException($"creating {schedules:N0} schedules took past their first slot ({createTime.TotalSeconds:N1} s)");
        }

        await Task.Delay(boundary - DateTimeOffset.UtcNow - TimeSpan.FromSeconds(1));
        var loadedWrites = Report.StorageWriteBytes(coordinator.ProcessId);
        var loaded = await Report.CpuPercentAsync(coordinator.ProcessId, window);
        loadedWrites = Report.StorageWriteBytes(coordinator.ProcessId) - loadedWrites;
        await Task.Delay(TimeSpan.FromSeconds(5));
        var loadedRss = Report.RssKiB(coordinator.ProcessId);

        // Each task's lateness: its RUNNING report's wall time, less the whole minute it belongs to.
        var lateness = fleet.RunningAt.Values
            .Select(ticks => wallAtStart + Stopwatch.GetElapsedTime(ticksAtStart, ticks))
            .Where(at => at >= boundary && at < boundary + window)
            .Select(at => (at - MinuteOf(at)).TotalMilliseconds)
            .Order().ToList();
        var expected = schedules * minutes;

        // Each fire's lateness, from the schedules' records of their last fires.
        var fires = new System.Collections.Concurrent.ConcurrentBag<(DateTimeOffset Slot, double Late)>();
        await Report.FromCallersAsync(16, schedules, async i =>
        {
            foreach (var fire in (await scheduler.GetScheduleAsync(new GetScheduleRequest { Name = $"job-{i:D5}" })).LastFires)
            {
                if (fire.SlotTime.ToDateTimeOffset() >= boundary && fire.SlotTime.ToDateTimeOffset() < boundary + window)
                {
                    fires.Add((fire.SlotTime.ToDateTimeOffset(), (fire.FiredAt.ToDateTimeOffset() - fire.SlotTime.ToDateTimeOffset()).TotalMilliseconds));
                }
            }
        });
        var fireLateness = fires.Select(f => f.Late).Order().ToList();
        var lastFires = string.Join(", ", fires.GroupBy(f => f.Slot).OrderBy(g => g.Key).Select(g => $"{g.Max(f => f.Late):N0} ms"));
        Report.Print(
        [
            ($"{schedules:N0} schedules created (16 callers)", $"{createTime.TotalSeconds:N1} s", ""),
            ($"tasks started over {minutes} slots", $"{lateness.Count:N0} of {expected:N0}", "all"),
            ($"slot to fire ({fireLateness.Count:N0} fires: the pass placing its task)", ScaleRun.Percentiles(fireLateness), "p99 < 1,000 ms"),
            ("each slot's last fire, the first slot (cold) first", lastFires, ""),
            ("slot to task RUNNING on its host", ScaleRun.Percentiles(lateness), ""),
            ($"coordinator, {agents} agents, no schedules (baseline)", $"CPU {baseline:N1}% of one core, VmRSS {baselineRss:N0} kB, storage writes {baselineWrites / 1e6:N0} MB", ""),
            ($"coordinator, {agents} agents, {schedules:N0} schedules firing", $"CPU {loaded:N1}% of one core, VmRSS {loadedRss:N0} kB, storage writes {loadedWrites / 1e6:N0} MB", ""),
        ]);
        return lateness.Count == expected ? 0 : 1;
    }

    /// <summary>The whole minute <paramref name="at"/> falls in.</summary>
    private static DateTimeOffset MinuteOf(DateTimeOffset at) =>
        new(at.UtcTicks / TimeSpan.TicksPerMinute * TimeSpan.TicksPerMinute, TimeSpan.Zero);
}
