using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Schedules;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;


namespace EcsLite.Benchmarks;

/// <summary>
/// The pure schedule passes of one slot, in process: N schedules of rate(1 minute) (one task each) over M
/// instances in 3 zones, built with the real commands; the passes the coordinator runs at the slot, one
/// after the other, each timed, with the state of one applied before the next. What the slot's last fire
/// waits for, less the store and the agents. Usage: ... schedule-pass [--schedules 10000] [--agents 1000] [--rounds 5] [--alloc-types]
/// </summary>
internal static class SchedulePassBenchmark
{
    private static readonly DateTimeOffset Start = new(2026, 11, 25, 12, 0, 30, TimeSpan.Zero);

    public static int Run(string[] args)
    {
        var schedules = Report.Option(args, "--schedules", 10_000);
        var agents = Report.Option(args, "--agents", 1000);
        var rounds = Report.Option(args, "--rounds", 5);
        using var sampler = args.Contains("--alloc-types") ? new AllocationSampler() : null;
        var ids = 0;
        string NewId() => $"{++ids:D32}";
        var state = Fleet(schedules, agents);
        var initial = state;
        var slot = ScheduleRunner.NextDue(initial)!.Value;
        for (var round = 0; round < rounds; round++)
        {
            state = initial;
            var passes = new List<double>();
            var applies = new List<double>();
            var total = Stopwatch.StartNew();
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var collections = GC.CollectionCount(0);
            SchedulePass pass;
            do
            {
                var started = Stopwatch.GetTimestamp();
                var run = ScheduleRunner.Run(state, new CommandContext(slot.AddMilliseconds(5), new ArnFormat()), new Random(round), NewId);
                passes.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                started = Stopwatch.GetTimestamp();
                state = run.After ?? state.Apply(run.Changes); // as the state machine does
                applies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                pass = run.Result;
            }
            while (pass.More);

            var tasks = state.Tasks.Count - initial.Tasks.Count;
            Console.WriteLine($"round {round + 1}: {tasks:N0} tasks in {passes.Count} passes, {total.Elapsed.TotalMilliseconds:N0} ms: " +
                $"passes {passes.Sum():N0} ms ({string.Join(", ", passes.Select(p => p.ToString("N0")))}), applying {applies.Sum():N0} ms; " +
                $"{(GC.GetAllocatedBytesForCurrentThread() - allocated) / 1048576.0:N0} MiB allocated, {GC.CollectionCount(0) - collections} collections");
            if (sampler is not null)
            {
                Console.WriteLine(sampler.Top(25));
            }

            if (tasks != schedules)
            {
                Console.Error.WriteLine($"expected {schedules} tasks");
                return 1;
            }
        }

        return 0;
    }

    /// <summary>The state of a fleet of <paramref name="agents"/> instances in 3 zones with <paramref name="schedules"/> rate(1 minute) schedules, each to run one task, made by the real commands.</summary>
    public static CoordinatorState Fleet(int schedules, int agents)
    {
        var context = new CommandContext(Start, new ArnFormat());
        var state = CoordinatorState.Empty.Apply(ClusterCommands.Create(CoordinatorState.Empty, new CreateClusterRequest(), context).Changes);
        for (var i = 0; i < agents; i++)
        {
            var hello = new AgentHello { Cluster = "default", Hostname = $"host-{i}", VersionInfo = new VersionInfo { AgentVersion = "bench" } };
            hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 4096 });
            hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = 8192 });
            hello.Attributes.Add(new Api.V1.Attribute { Name = "ecs.availability-zone", Value = $"zone-{i % 3}" });
            state = state.Apply(ContainerInstanceCommands.Join(state, hello, context, $"{i:x8}").Changes);
        }

        state = state.Apply(TaskDefinitionCommands.Register(state, new RegisterTaskDefinitionRequest
        {
            Family = "job", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16, Cpu = 8 } },
        }, context).Changes);
        for (var s = 0; s < schedules; s++)
        {
            state = state.Apply(ScheduleCommands.Create(state, new CreateScheduleRequest
            {
                Name = $"job-{s:D5}", ScheduleExpression = "rate(1 minute)", FlexibleTimeWindow = new FlexibleTimeWindow { Mode = "OFF" },
                Target = new Target { Arn = "arn:aws:ecs:local:000000000000:cluster/default", EcsParameters = new EcsParameters { TaskDefinitionArn = "job" } },
            }, context).Changes);
        }

        return state;
    }
}
