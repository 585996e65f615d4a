using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.Query;

namespace EcsLite.Coordinator.Core.Tests;

public class PlacementTests
{
    private static readonly TaskNeeds Small = new(256, 256, [], []);

    private static Candidate Instance(string id, int cpu = 1024, int memory = 1024, bool connected = true, string? zone = null,
        Dictionary<string, string?>? attributes = null, Dictionary<string, int>? groups = null, int[]? tcp = null, int[]? udp = null)
    {
        var facts = new Dictionary<string, string?>(attributes ?? [], StringComparer.Ordinal) { ["hostname"] = id };
        if (zone is not null)
        {
            facts["ecs.availability-zone"] = zone;
        }

        groups ??= [];
        return new Candidate($"arn:aws:ecs:local:000000000000:container-instance/default/{id}", connected, connected ? "INSTANCE" : "AGENT", cpu, memory,
            tcp ?? [22], udp ?? [], new InstanceFacts(id, "mi-" + id, connected, "0.1.0", DateTimeOffset.UnixEpoch, groups.Values.Sum(), facts, [.. groups.Keys]), groups);
    }

    private static PlacementRequest Request(int count, TaskNeeds? needs = null, IEnumerable<PlacementConstraint>? constraints = null,
        IEnumerable<PlacementStrategy>? strategies = null, string group = "family:web", IEnumerable<Api.V1.Attribute>? required = null) =>
        new(needs ?? Small, count, group, [.. constraints ?? []], [.. strategies ?? []], [.. required ?? []]);

    private static string Id(string arn) => arn[(arn.LastIndexOf('/') + 1)..];

    [Fact]
    public void Binpack_fills_one_instance_before_the_next()
    {
        var plan = TaskPlacement.Plan(Request(6, strategies: [new() { Type = "binpack", Field = "memory" }]),
            [Instance("a"), Instance("b"), Instance("c", memory: 768)], new Random(1));
        Assert.Empty(plan.Failures);

        // c has the least memory, so it fills first (3 tasks), then one of the others takes the rest.
        Assert.Equal(["c", "c", "c"], plan.Placed.Take(3).Select(Id));
        Assert.Single(plan.Placed.Skip(3).Select(Id).Distinct());
    }

    [Fact]
    public void Spread_alternates_and_counts_the_groups_tasks_already_there()
    {
        var plan = TaskPlacement.Plan(Request(5, strategies: [new() { Type = "spread", Field = "instanceId" }]),
            [Instance("a", groups: new() { ["family:web"] = 1 }), Instance("b"), Instance("c")], new Random(2));
        var counts = plan.Placed.Select(Id).GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(1, counts.GetValueOrDefault("a")); // it had one already: 2, 2, 2 in the end
        Assert.Equal(2, counts["b"]);
        Assert.Equal(2, counts["c"]);
    }

    [Fact]
    public void The_default_spreads_over_zones_then_instances()
    {
        var plan = TaskPlacement.Plan(Request(4), [Instance("a1", zone: "a"), Instance("a2", zone: "a"), Instance("b1", zone: "b")], new Random(3));
        var byZone = plan.Placed.Select(Id).GroupBy(i => i[0]).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(2, byZone['a']);
        Assert.Equal(2, byZone['b']);
        Assert.Equal(2, plan.Placed.Count(p => Id(p) == "b1"));
    }

    [Fact]
    public void DistinctInstance_never_doubles_up_and_says_so_when_it_runs_out()
    {
        var plan = TaskPlacement.Plan(Request(3, constraints: [new() { Type = "distinctInstance" }]), [Instance("a"), Instance("b")], new Random(4));
        Assert.Equal(2, plan.Placed.Distinct().Count());
        var failure = Assert.Single(plan.Failures);
        Assert.Equal("DistinctInstance", failure.Reason);
        Assert.StartsWith("task 3 of 3", failure.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void MemberOf_picks_only_matching_instances()
    {
        var gpu = new Dictionary<string, string?> { ["gpu"] = "yes", ["rack"] = "r1" };
        var plan = TaskPlacement.Plan(Request(5, constraints: [new() { Type = "memberOf", Expression = "attribute:gpu == yes and attribute:rack in [r1, r2]" }]),
            [Instance("a"), Instance("b", cpu: 4096, memory: 4096, attributes: gpu), Instance("c", attributes: new() { ["gpu"] = "yes", ["rack"] = "r9" })], new Random(5));
        Assert.Empty(plan.Failures);
        Assert.All(plan.Placed, p => Assert.Equal("b", Id(p)));
    }

    [Theory]
    [InlineData("RESOURCE:CPU")]
    [InlineData("RESOURCE:MEMORY")]
    [InlineData("RESOURCE:PORTS")]
    [InlineData("RESOURCE:PORTS_UDP")]
    [InlineData("AGENT")]
    [InlineData("ATTRIBUTE")]
    [InlineData("MemberOf")]
    public void When_nothing_fits_the_failure_has_ECSs_reason_and_says_what_was_lacking(string reason)
    {
        var needs = reason switch
        {
            "RESOURCE:CPU" => new TaskNeeds(2048, 64, [], []),
            "RESOURCE:MEMORY" => new TaskNeeds(64, 2048, [], []),
            "RESOURCE:PORTS" => new TaskNeeds(64, 64, [22], []),
            "RESOURCE:PORTS_UDP" => new TaskNeeds(64, 64, [], [53]),
            _ => Small,
        };
        var plan = TaskPlacement.Plan(
            Request(1, needs,
                constraints: reason == "MemberOf" ? [new() { Type = "memberOf", Expression = "attribute:stack == prod" }] : null,
                required: reason == "ATTRIBUTE" ? [new() { Name = "ecs.capability.secrets.ssm.environment-variables" }] : null),
            [Instance("only", connected: reason != "AGENT", udp: [53])], new Random(6));
        Assert.Empty(plan.Placed);
        var failure = Assert.Single(plan.Failures);
        Assert.Equal(reason, failure.Reason);
        Assert.EndsWith("/only", failure.Arn, StringComparison.Ordinal);
        Assert.Contains($"only: {reason}: ", failure.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void The_failure_names_the_closest_instances_first()
    {
        var plan = TaskPlacement.Plan(Request(1, new TaskNeeds(64, 2000, [], [])),
            [Instance("tiny", memory: 128), Instance("off", memory: 4096, connected: false), Instance("nearly", memory: 1900)], new Random(7));
        var failure = Assert.Single(plan.Failures);
        Assert.Equal("RESOURCE:MEMORY", failure.Reason);
        Assert.EndsWith("/nearly", failure.Arn, StringComparison.Ordinal);
        Assert.Contains("needs 2000 MiB of memory, 1900 left", failure.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("binpack", "disk", "placementStrategy[0].field")]
    [InlineData("spread", "attribute:", "placementStrategy[0].field")]
    [InlineData("random", "cpu", "placementStrategy[0].field")]
    [InlineData("fill", "", "placementStrategy[0].type")]
    public void Bad_strategies_are_refused_naming_the_field(string type, string field, string at)
    {
        var error = Assert.Throws<EcsException>(() => TaskPlacement.ValidateStrategies([new PlacementStrategy { Type = type, Field = field }], "placementStrategy"));
        Assert.Equal(at, error.Field);
    }

    [Fact]
    public void A_malformed_memberOf_expression_is_refused_with_its_column()
    {
        var error = Assert.Throws<EcsException>(() => TaskPlacement.ParseConstraints(
            [new PlacementConstraint { Type = "memberOf", Expression = "attribute:a == b and" }], "placementConstraints"));
        Assert.Equal("placementConstraints[0].expression", error.Field);
        Assert.Contains("column", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Properties over many random clusters and requests.</summary>
    [Fact]
    public void Over_random_clusters_nothing_is_overcommitted_constraints_hold_and_spread_is_balanced()
    {
        var random = new Random(20261125);
        for (var round = 0; round < 500; round++)
        {
            var instances = Enumerable.Range(0, random.Next(1, 12)).Select(i => Instance(
                $"i{i}", cpu: random.Next(0, 5) * 512, memory: random.Next(0, 9) * 256, connected: random.NextDouble() > 0.15,
                attributes: new() { ["tier"] = random.Next(3) == 0 ? "gold" : "silver" },
                tcp: [22, .. Enumerable.Range(0, random.Next(3)).Select(_ => 8000 + random.Next(4))])).ToList();
            var needs = new TaskNeeds(random.Next(0, 3) * 256, random.Next(1, 4) * 128, random.Next(3) == 0 ? [8000 + random.Next(4)] : [], []);
            var constraints = new List<PlacementConstraint>();
            if (random.Next(3) == 0)
            {
                constraints.Add(new() { Type = "distinctInstance" });
            }

            if (random.Next(3) == 0)
            {
                constraints.Add(new() { Type = "memberOf", Expression = "attribute:tier == gold" });
            }

            var strategy = random.Next(3) switch
            {
                0 => new PlacementStrategy { Type = "binpack", Field = "memory" },
                1 => new PlacementStrategy { Type = "spread", Field = "instanceId" },
                _ => new PlacementStrategy { Type = "random" },
            };
            var count = random.Next(1, 11);
            var plan = TaskPlacement.Plan(Request(count, needs, constraints, [strategy]), instances, new Random(round));

            Assert.Equal(count, plan.Placed.Count + plan.Failures.Count);
            foreach (var group in plan.Placed.GroupBy(p => p))
            {
                var instance = instances.Single(i => i.Arn == group.Key);
                var n = group.Count();
                Assert.True(instance.Eligible, "placed on an instance whose agent is not connected");
                Assert.True(n * needs.Cpu <= instance.CpuLeft, $"CPU overcommitted on {group.Key}");
                Assert.True(n * needs.Memory <= instance.MemoryLeft, $"memory overcommitted on {group.Key}");
                Assert.True(needs.TcpPorts.Count == 0 || (n == 1 && !needs.TcpPorts.Any(instance.TcpUsed.Contains)), "a host port taken twice");
                if (constraints.Any(c => c.Type == "distinctInstance"))
                {
                    Assert.Equal(1, n);
                }

                if (constraints.Any(c => c.Type == "memberOf"))
                {
                    Assert.Equal("gold", instance.Facts.Attributes["tier"]);
                }
            }

            // Spread with room everywhere: counts differ by at most one.
            if (strategy.Type == "spread" && plan.Failures.Count == 0 && constraints.Count == 0 && needs.TcpPorts.Count == 0)
            {
                var roomy = instances.Where(i => i.Eligible && i.CpuLeft >= count * needs.Cpu && i.MemoryLeft >= count * needs.Memory).ToList();
                if (roomy.Count == instances.Count(i => i.Eligible && i.CpuLeft >= needs.Cpu && i.MemoryLeft >= needs.Memory))
                {
                    var counts = roomy.Select(i => plan.Placed.Count(p => p == i.Arn)).ToList();
                    Assert.True(counts.Max() - counts.Min() <= 1, $"spread unbalanced: {string.Join(",", counts)}");
                }
            }
        }
    }

    [Fact]
    public void Needs_follow_ECS_task_level_first_then_reservations()
    {
        var definition = new TaskDefinition { NetworkMode = "bridge" };
        definition.ContainerDefinitions.Add(new ContainerDefinition { Name = "a", Cpu = 128, Memory = 512, MemoryReservation = 128, PortMappings = { new PortMapping { ContainerPort = 80, HostPort = 8080 }, new PortMapping { ContainerPort = 53, HostPort = 53, Protocol = "udp" }, new PortMapping { ContainerPort = 9000 } } });
        definition.ContainerDefinitions.Add(new ContainerDefinition { Name = "b", Cpu = 64, Memory = 256 });
        Assert.Equal(new TaskNeeds(192, 384, [8080], [53]), TaskNeeds.Of(definition), new NeedsComparer());

        // awsvpc: each container port is the host port too.
        var awsvpc = new TaskDefinition { NetworkMode = "awsvpc", Cpu = "1024", Memory = "2048" };
        awsvpc.ContainerDefinitions.Add(new ContainerDefinition { Name = "a", Memory = 512, PortMappings = { new PortMapping { ContainerPort = 80 }, new PortMapping { ContainerPort = 53, Protocol = "udp" } } });
        Assert.Equal(new TaskNeeds(1024, 2048, [80], [53]), TaskNeeds.Of(awsvpc), new NeedsComparer());
    }

    private sealed class NeedsComparer : IEqualityComparer<TaskNeeds>
    {
        public bool Equals(TaskNeeds? x, TaskNeeds? y) =>
            x!.Cpu == y!.Cpu && x.Memory == y.Memory && x.TcpPorts.SequenceEqual(y.TcpPorts) && x.UdpPorts.SequenceEqual(y.UdpPorts);

        public int GetHashCode(TaskNeeds obj) => obj.Cpu;
    }
}

public class HostAccessPlacementTests
{
    private static Candidate Instance(string id, Dictionary<string, string?> attributes) =>
        new($"arn:aws:ecs:local:000000000000:container-instance/default/{id}", true, "INSTANCE", 4096, 4096, [], [],
            new InstanceFacts(id, "mi-" + id, true, "0.1.0", DateTimeOffset.UnixEpoch, 0, attributes, []), new Dictionary<string, int>());

    /// <summary>A task definition as registration makes it (requiresAttributes and all).</summary>
    private static TaskDefinition Registered(string json) =>
        Fixtures.Run(State.CoordinatorState.Empty, s => TaskDefinitions.TaskDefinitionCommands.Register(s, Fixtures.Parse(json), Fixtures.Context())).Result.TaskDefinition;

    private static TaskDefinition Mounting(string path) => Registered($$"""
        { "family": "web", "volumes": [{ "name": "v", "host": { "sourcePath": "{{path}}" } }],
          "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 64, "mountPoints": [{ "sourceVolume": "v", "containerPath": "/v" }] }] }
        """);

    [Theory]
    [InlineData("/srv/data", "open,srv")]
    [InlineData("/srv", "open,srv")]
    [InlineData("/srvx", "open")]
    [InlineData("/srv/../etc", "open")]
    [InlineData("/", "open")]
    public void Hosts_that_restrict_bind_mounts_take_only_tasks_whose_paths_they_allow(string path, string takers)
    {
        var definition = Mounting(path);
        var request = new PlacementRequest(TaskNeeds.Of(definition), 1, "family:web", [], [], []);
        Candidate[] instances =
        [
            Instance("open", new() { ["hostname"] = "open" }),
            Instance("srv", new() { [HostAccess.AllowedHostPathsAttribute] = "/srv,/mnt/media" }),
            Instance("none", new() { [HostAccess.AllowedHostPathsAttribute] = "" }),
        ];
        var accepted = instances.Where(i => TaskPlacement.Lacks(i, request, []) is null).Select(i => i.Facts.ContainerInstanceArn);
        Assert.Equal(takers, string.Join(',', accepted));
        var refusal = TaskPlacement.Lacks(instances[2], request, []);
        Assert.Equal(("ATTRIBUTE", $"it does not allow the host path {path} (ecslite.allowed-host-paths: )"), refusal);
    }

    [Fact]
    public void A_privileged_task_needs_the_capability_a_host_with_ECS_DISABLE_PRIVILEGED_does_not_offer()
    {
        var definition = Registered("""
            { "family": "p", "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 64, "privileged": true }] }
            """);
        Assert.Contains(definition.RequiresAttributes, a => a.Name == HostAccess.PrivilegedCapability);
        var request = new PlacementRequest(TaskNeeds.Of(definition), 1, "family:p", [], [], [.. definition.RequiresAttributes]);
        Assert.Null(TaskPlacement.Lacks(Instance("open", new() { [HostAccess.PrivilegedCapability] = null }), request, []));
        Assert.Equal("ATTRIBUTE", TaskPlacement.Lacks(Instance("locked", new() { ["hostname"] = "locked" }), request, [])?.Reason);
    }
}
