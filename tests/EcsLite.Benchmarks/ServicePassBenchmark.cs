using BenchmarkDotNet.Attributes;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Services;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Benchmarks;

/// <summary>
/// One service scheduler pass (BenchmarkDotNet, in process) over a cluster of 1,000 instances running
/// 1,000 services of 30 tasks each (30,000 tasks), built with the real commands and settled: the pass
/// the coordinator runs after every change. "Steady" finds nothing to do; "OneCrash" replaces one task;
/// the baseline reads every task once. The Remembered ones run with the memo the scheduler loop keeps.
/// </summary>
[MemoryDiagnoser]
public class ServicePassBenchmark
{
    private static readonly DateTimeOffset Start = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private CoordinatorState _steady = CoordinatorState.Empty;
    private CoordinatorState _oneCrash = CoordinatorState.Empty;
    private ServiceSchedulerSettings _settings = null!;
    private readonly ServicePassMemo _memo = new();
    private int _ids;

    [Params(1_000)]
    public int Services { get; set; }

    [Params(30)]
    public int TasksPerService { get; set; }

    private static CommandContext Context => new(Start.AddMinutes(1), new ArnFormat());

    [GlobalSetup]
    public void Setup()
    {
        var context = new CommandContext(Start, new ArnFormat());
        var state = CoordinatorState.Empty.Apply(ClusterCommands.Create(CoordinatorState.Empty, new CreateClusterRequest(), context).Changes);
        for (var i = 0; i < 1_000; i++)
        {
            var hello = new AgentHello { Cluster = "default", Hostname = $"host-{i}", VersionInfo = new VersionInfo { AgentVersion = "bench" } };
            hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 65536 });
            hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = 65536 });
            hello.Attributes.Add(new Api.V1.Attribute { Name = "ecs.availability-zone", Value = $"zone-{i % 3}" });
            state = state.Apply(ContainerInstanceCommands.Join(state, hello, context, $"{i:x8}").Changes);
        }

        var random = new Random(42);
        for (var s = 0; s < Services; s++)
        {
            var definition = new RegisterTaskDefinitionRequest { Family = $"svc-{s}" };
            definition.ContainerDefinitions.Add(new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16 });
            state = state.Apply(TaskDefinitionCommands.Register(state, definition, context).Changes);
            state = state.Apply(ServiceCommands.Create(state, new CreateServiceRequest { ServiceName = $"svc-{s}", TaskDefinition = $"svc-{s}", DesiredCount = TasksPerService }, context, random).Changes);
        }

        _settings = new ServiceSchedulerSettings(TimeSpan.FromSeconds(10), Start);
        state = state.Apply(ServiceScheduler.Run(state, context, _settings, random, NewId).Changes);
        var running = state.Tasks.Values.Select(t => (t.Task.ContainerInstanceArn, Change: new TaskStateChange
        {
            TaskArn = t.Task.TaskArn, LastStatus = "RUNNING", DesiredStatus = "RUNNING", StartedAt = Timestamp.FromDateTimeOffset(Start),
        })).ToList();
        foreach (var group in running.GroupBy(r => r.ContainerInstanceArn))
        {
            state = state.Apply(TaskCommands.ReportAll(state, group.Key, group.Select(g => g.Change), context).Changes);
        }

        state = state.Apply(ServiceScheduler.Run(state, context, _settings, random, NewId).Changes);
        _steady = state;
        if (_steady.Tasks.Count != Services * TasksPerService || ServiceScheduler.Run(_steady, Context, _settings, random, NewId).Changes.Count != 0)
        {
            throw new InvalidOperationException("the benchmark's cluster did not settle");
        }

        var crashed = _steady.Tasks.Values.First();
        _oneCrash = _steady.Apply(TaskCommands.Report(_steady, crashed.Task.ContainerInstanceArn,
            new TaskStateChange { TaskArn = crashed.Task.TaskArn, LastStatus = "STOPPED", DesiredStatus = "STOPPED", StopCode = "EssentialContainerExited" }, context).Changes);
    }

    private string NewId() => $"{++_ids:D32}";

    [GlobalSetup(Targets = [nameof(SteadyRemembered), nameof(OneCrashRemembered)])]
    public void SetupRemembered()
    {
        Setup();
        ServiceScheduler.Run(_steady, Context, _settings, new Random(1), NewId, _memo);
    }

    /// <summary>Baseline: one look at every task of the state, the least any full pass must do.</summary>
    [Benchmark(Baseline = true)]
    public int ReadEveryTask() => _steady.Tasks.Values.Count(t => t.Task.DesiredStatus == "RUNNING");

    [Benchmark]
    public int Steady() => ServiceScheduler.Run(_steady, Context, _settings, new Random(1), NewId).Changes.Count;

    [Benchmark]
    public int OneCrash() => ServiceScheduler.Run(_oneCrash, Context, _settings, new Random(1), NewId).Changes.Count;

    /// <summary>As the scheduler loop runs it: services whose inputs are the same objects as in the last quiet pass are skipped.</summary>
    [Benchmark]
    public int SteadyRemembered() => ServiceScheduler.Run(_steady, Context, _settings, new Random(1), NewId, _memo).Changes.Count;

    [Benchmark]
    public int OneCrashRemembered() => ServiceScheduler.Run(_oneCrash, Context, _settings, new Random(1), NewId, _memo).Changes.Count;

    public static int Run(string[] args) => Report.RunInProcess<ServicePassBenchmark>(args, warmups: 2);
}
