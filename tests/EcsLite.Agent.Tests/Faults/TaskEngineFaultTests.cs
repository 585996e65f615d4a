using System.Collections.Concurrent;
using EcsLite.Agent.Core;
using EcsLite.Agent.Tasks;
using EcsLite.Api.V1;
using Microsoft.Extensions.Logging.Abstractions;

namespace EcsLite.Agent.Tests.Faults;

/// <summary>
/// The agent's task engine and supervisors (the real ones, with the pure state machine inside) against
/// an engine that fails in every way a real one can: errors, refused connections, hangs, answers lost
/// after the work was done, a breaking event stream. Whatever the schedule, a task never gets stuck:
/// it ends RUNNING or STOPPED with ECS's stop code and reason, a stop is obeyed whenever it comes, and
/// a task reported STOPPED has nothing left running.
/// </summary>
public sealed class TaskEngineFaultTests
{
    private const int Schedules = 500;
    private const string Instance = "arn:aws:ecs:local:000000000000:container-instance/default/faults";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    // The real timings in small: a hang costs 50 ms, and a retry a few.
    private static readonly SupervisorTimings Fast = new(
        PollInterval: TimeSpan.FromMilliseconds(20), RetryInitial: TimeSpan.FromMilliseconds(1), RetryCap: TimeSpan.FromMilliseconds(8),
        StopRetryCap: TimeSpan.FromMilliseconds(16), Attempts: 4, InspectFailures: 5,
        PullTimeout: TimeSpan.FromMilliseconds(50), CreateTimeout: TimeSpan.FromMilliseconds(50), StartTimeout: TimeSpan.FromMilliseconds(50),
        InspectTimeout: TimeSpan.FromMilliseconds(50), RemoveTimeout: TimeSpan.FromMilliseconds(50), StopGrace: TimeSpan.FromMilliseconds(50),
        EngineWait: TimeSpan.FromMilliseconds(100));

    [Fact]
    public async Task Under_500_seeded_fault_schedules_every_task_ends_RUNNING_or_STOPPED_and_every_stop_is_obeyed()
    {
        var outcomes = await Task.WhenAll(Enumerable.Range(0, Schedules).Select(seed => Task.Run(() => RunAsync(seed))));

        var wrong = outcomes.Where(o => o.Problem is not null).Select(o => $"seed {o.Seed}: {o.Problem}").ToList();
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {Schedules} schedules went wrong:\n{string.Join("\n", wrong.Take(20))}");

        // The schedules did what they are for: every operation met every fault that can befall it, and
        // there were tasks that ran and tasks that failed to start.
        foreach (var operation in new[] { "pull", "create", "start", "pause", "inspect", "stop", "remove" })
        {
            foreach (var fault in new[] { Fault.ServerError, Fault.Refused, Fault.Hang, Fault.LostAnswer, Fault.Slow })
            {
                var count = outcomes.Sum(o => o.Tally.GetValueOrDefault((operation, fault)));
                Assert.True(count > 0, $"{operation} met {fault} only {count} times");
            }
        }

        Assert.True(outcomes.Sum(o => o.Injected) > 1_000, $"only {outcomes.Sum(o => o.Injected)} faults injected");
        Assert.True(outcomes.Count(o => o.EventsDropped) > Schedules / 5, "too few schedules broke the event stream");
        Assert.True(outcomes.Count(o => o.ReachedRunning) > Schedules / 4, $"only {outcomes.Count(o => o.ReachedRunning)} tasks reached RUNNING");
        Assert.True(outcomes.Count(o => o.FailedToStart) > Schedules / 10, $"only {outcomes.Count(o => o.FailedToStart)} tasks failed to start");
    }

    private sealed record Outcome(int Seed, string? Problem, int Injected, bool ReachedRunning, bool FailedToStart, bool EventsDropped,
        IReadOnlyDictionary<(string, Fault), int> Tally);

    private static async Task<Outcome> RunAsync(int seed)
    {
        var random = new Random(seed);
        var plan = new FaultPlan(seed);
        var engine = new FakeEngine("app:1");
        var dataDir = Directory.CreateTempSubdirectory("ecslite-faults-").FullName;
        var settings = new AgentSettings { DataDir = dataDir, ImageCleanupDisabled = true, TaskCleanupWaitDuration = TimeSpan.FromMilliseconds(30), ContainerStopTimeout = TimeSpan.FromMilliseconds(10) };
        var tasks = new TaskEngine(new FaultyRuntime(engine, plan), new TaskStore(dataDir), settings, TimeProvider.System, NullLogger.Instance, Fast);
        var reports = new ConcurrentQueue<TaskStateChange>();
        var reported = new SemaphoreSlim(0);
        tasks.Changed += change =>
        {
            reports.Enqueue(change);
            reported.Release();
        };

        var (task, awsvpc) = RandomTask(random, seed);
        var reachedRunning = false;
        try
        {
            await tasks.ApplyAsync(new DesiredTaskSet { Tasks = { task } }, Instance, "default", default);

            // Half the schedules stop at a random moment; the other half first wait for the task to settle.
            if (random.Next(2) == 0)
            {
                await Task.Delay(random.Next(150));
            }
            else
            {
                var settled = await WaitAsync(reports, reported, r => r.LastStatus is "RUNNING" or "STOPPED");
                if (settled is null)
                {
                    return Problem($"stuck before RUNNING or STOPPED; last reported {Last(reports)}");
                }

                // Without random faults the outcome is known: RUNNING, or the one operation that always fails says why not.
                reachedRunning = settled.LastStatus == "RUNNING";
                var expected = plan.Persistent is { } always ? Expected(always.Operation, awsvpc) : [];
                if (plan.Rate == 0 && expected.Length == 0 && !reachedRunning)
                {
                    return Problem($"nothing fails, yet {settled.LastStatus}: {settled.StoppedReason}");
                }

                if (plan.Rate == 0 && expected.Length > 0 && (reachedRunning || !expected.Any(e => settled.StoppedReason.StartsWith(e, StringComparison.Ordinal))))
                {
                    return Problem($"{plan.Persistent!.Value.Operation} always fails, yet the task is {settled.LastStatus} '{settled.StoppedReason}'");
                }
            }

            await tasks.ApplyAsync(new DesiredTaskSet { Tasks = { new DesiredTask { TaskArn = task.TaskArn, DesiredStatus = "STOPPED", TaskDefinition = task.TaskDefinition } } },
                Instance, "default", default);
            if (await WaitAsync(reports, reported, r => r.LastStatus == "STOPPED") is null)
            {
                return Problem($"the stop was not obeyed; last reported {Last(reports)}");
            }

            // The first STOPPED report is the task's own (a task already cleaned up is later told STOPPED
            // again, which the engine answers with a bare STOPPED: it has nothing of it left).
            var stopped = reports.First(r => r.LastStatus == "STOPPED");

            reachedRunning |= reports.Any(r => r.LastStatus == "RUNNING");
            if (stopped.StopCode.Length == 0 || stopped.StoppedReason.Length == 0 || stopped.DesiredStatus != "STOPPED")
            {
                return Problem($"STOPPED without a stop code or reason: '{stopped.StopCode}' '{stopped.StoppedReason}'");
            }

            if (stopped.StoppedReason.StartsWith("InternalError", StringComparison.Ordinal))
            {
                return Problem($"the supervisor failed: {stopped.StoppedReason}");
            }

            if (stopped.Containers.FirstOrDefault(c => c.LastStatus != "STOPPED") is { } container)
            {
                return Problem($"task STOPPED with container {container.ContainerName} {container.LastStatus}");
            }

            if (engine.Containers.FirstOrDefault(c => c.Running && c.Labels.GetValueOrDefault("com.amazonaws.ecs.task-arn") == task.TaskArn) is { } running)
            {
                return Problem($"task reported STOPPED, but {running.Name} still runs");
            }

            // Then, after the cleanup wait, the task leaves the host: its containers are removed (every
            // one of them when nothing fails; a removal that keeps failing is given up and logged).
            var deadline = DateTime.UtcNow + Deadline;
            while (tasks.Snapshot().Any() && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            if (tasks.Snapshot().Any())
            {
                return Problem("the task was never cleaned up");
            }

            if (plan.Rate == 0 && engine.Containers.FirstOrDefault(c => c.Labels.GetValueOrDefault("com.amazonaws.ecs.task-arn") == task.TaskArn) is { } left)
            {
                return Problem($"nothing fails, yet {left.Name} was not removed");
            }

            return new Outcome(seed, null, plan.Injected, reachedRunning, stopped.StopCode == "TaskFailedToStart", plan.DropEvents, plan.Tally);
        }
        finally
        {
            await tasks.DisposeAsync();
            Directory.Delete(dataDir, recursive: true);
        }

        Outcome Problem(string problem) => new(seed, $"{problem} (rate {plan.Rate}, persistent {plan.Persistent}, awsvpc {awsvpc}, events dropped {plan.DropEvents})",
            plan.Injected, reachedRunning, false, plan.DropEvents, plan.Tally);
    }

    /// <summary>1 to 3 containers: the first essential and long-running; others essential or not, some exiting on their own, with dependencies and volumesFrom on earlier ones.</summary>
    private static (DesiredTask Task, bool Awsvpc) RandomTask(Random random, int seed)
    {
        var awsvpc = random.Next(2) == 0;
        var definition = new TaskDefinition { Family = "faults", Revision = 1, NetworkMode = awsvpc ? "awsvpc" : "bridge" };
        var count = random.Next(1, 4);
        for (var i = 0; i < count; i++)
        {
            var exits = i > 0 && random.Next(3) == 0;
            var container = new ContainerDefinition
            {
                Name = $"c{i}",
                Image = "app:1",
                Essential = i == 0 || (!exits && random.Next(2) == 0),
                Command = { exits ? ["exit-after", random.Next(1, 40).ToString(System.Globalization.CultureInfo.InvariantCulture), "0"] : ["serve"] },
            };
            if (i > 0 && random.Next(3) == 0)
            {
                var on = random.Next(i);
                var exiting = definition.ContainerDefinitions[on].Command[0] == "exit-after";
                container.DependsOn.Add(new ContainerDependency { ContainerName = $"c{on}", Condition = exiting ? (random.Next(2) == 0 ? "SUCCESS" : "COMPLETE") : "START" });
            }

            if (i > 0 && random.Next(4) == 0)
            {
                container.VolumesFrom.Add(new VolumeFrom { SourceContainer = $"c{random.Next(i)}" });
            }

            definition.ContainerDefinitions.Add(container);
        }

        return (new DesiredTask { TaskArn = $"arn:aws:ecs:local:000000000000:task/default/{seed:x4}{Guid.NewGuid():N}", DesiredStatus = "RUNNING", TaskDefinition = definition }, awsvpc);
    }

    /// <summary>The reasons a task fails to start with when an operation always fails.</summary>
    private static string[] Expected(string operation, bool awsvpc) => operation switch
    {
        "pull" => ["CannotPullContainerError"],
        "create" => ["CannotCreateContainerError"],
        "start" => awsvpc ? ["ResourceInitializationError"] : ["CannotStartContainerError"],
        "pause" => awsvpc ? ["ResourceInitializationError"] : [],
        _ => [],
    };

    private static async Task<TaskStateChange?> WaitAsync(ConcurrentQueue<TaskStateChange> reports, SemaphoreSlim reported, Func<TaskStateChange, bool> condition)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (DateTime.UtcNow < deadline)
        {
            if (reports.LastOrDefault() is { } last && condition(last))
            {
                return last;
            }

            await reported.WaitAsync(TimeSpan.FromMilliseconds(100));
        }

        return null;
    }

    private static string Last(ConcurrentQueue<TaskStateChange> reports) =>
        reports.LastOrDefault() is { } last ? $"{last.LastStatus} ({string.Join(", ", last.Containers.Select(c => $"{c.ContainerName} {c.LastStatus}"))})" : "nothing";
}
