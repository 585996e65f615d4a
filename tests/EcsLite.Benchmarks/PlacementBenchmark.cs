using BenchmarkDotNet.Attributes;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.Query;

namespace EcsLite.Benchmarks;

/// <summary>
/// Placement decisions on one thread (BenchmarkDotNet, in process): one RunTask of 10 tasks over a
/// cluster of N instances, each already running a few tasks; a decision is one task placed.
/// </summary>
[MemoryDiagnoser]
public class PlacementBenchmark
{
    private const int TasksPerCall = 10;
    private List<Candidate> _instances = [];
    private PlacementRequest _binpack = null!;
    private PlacementRequest _spreadMemberOf = null!;

    [Params(1_000, 5_000)]
    public int Instances { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        _instances = [.. Enumerable.Range(0, Instances).Select(i =>
        {
            var attributes = new Dictionary<string, string?>
            {
                ["ecs.availability-zone"] = $"zone-{i % 3}",
                ["ecs.cpu-architecture"] = i % 4 == 0 ? "arm64" : "x86_64",
                ["hostname"] = $"host-{i}",
            };
            var groups = new Dictionary<string, int> { ["family:web"] = random.Next(0, 3), [$"family:other-{i % 7}"] = 1 };
            var facts = new InstanceFacts($"arn:aws:ecs:local:000000000000:container-instance/default/{i:x8}", $"mi-{i:x8}", true, "0.1.0",
                DateTimeOffset.UnixEpoch, groups.Values.Sum(), attributes, [.. groups.Keys]);
            return new Candidate(facts.ContainerInstanceArn, true, "INSTANCE", random.Next(1, 8) * 512, random.Next(1, 16) * 512, [22], [], facts, groups);
        })];
        var needs = new TaskNeeds(256, 512, [], []);
        _binpack = new(needs, TasksPerCall, "family:web", [], [new PlacementStrategy { Type = "binpack", Field = "memory" }], []);
        _spreadMemberOf = new(needs, TasksPerCall, "family:web",
            [new PlacementConstraint { Type = "memberOf", Expression = "attribute:ecs.cpu-architecture == x86_64" }],
            [new PlacementStrategy { Type = "spread", Field = "attribute:ecs.availability-zone" }, new PlacementStrategy { Type = "spread", Field = "instanceId" }], []);
    }

    [Benchmark(OperationsPerInvoke = TasksPerCall)]
    public int Binpack() => TaskPlacement.Plan(_binpack, _instances, new Random(1)).Placed.Count;

    [Benchmark(OperationsPerInvoke = TasksPerCall)]
    public int SpreadWithMemberOf() => TaskPlacement.Plan(_spreadMemberOf, _instances, new Random(1)).Placed.Count;

    public static int Run(string[] args) => Report.RunInProcess<PlacementBenchmark>(args, warmups: 3);
}
