using System.Runtime.CompilerServices;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Query;

namespace EcsLite.Coordinator.Core.Placement;

/// <summary>What one task takes from an instance: CPU units, MiB of memory, host ports.</summary>
public sealed record TaskNeeds(int Cpu, int Memory, IReadOnlyList<int> TcpPorts, IReadOnlyList<int> UdpPorts)
{
    /// <summary>The host paths the task bind-mounts or uses as devices: only hosts that allow them take it.</summary>
    public IReadOnlyList<string> HostPaths { get; init; } = [];

    /// <summary>
    /// As ECS reserves for a task on an instance: the task-level cpu and memory when set; otherwise the
    /// sum over containers of cpu, and of memoryReservation, else memory. Host ports: static hostPorts
    /// (bridge), or the container ports themselves (awsvpc and host, where hostPort = containerPort).
    /// </summary>
    public static TaskNeeds Of(TaskDefinition definition) => Known.GetValue(definition, Compute);

    // Definitions are shared by all tasks that run them unchanged and never mutated once held, so the
    // needs are worked out once per definition rather than on every change of every task.
    private static readonly ConditionalWeakTable<TaskDefinition, TaskNeeds> Known = [];

    private static TaskNeeds Compute(TaskDefinition definition)
    {
        var cpu = int.TryParse(definition.Cpu, out var taskCpu) ? taskCpu : definition.ContainerDefinitions.Sum(c => c.Cpu);
        var memory = int.TryParse(definition.Memory, out var taskMemory)
            ? taskMemory
            : definition.ContainerDefinitions.Sum(c => c.HasMemoryReservation ? c.MemoryReservation : c.Memory);
        var direct = definition.NetworkMode is "awsvpc" or "host";
        var ports = definition.ContainerDefinitions.SelectMany(c => c.PortMappings)
            .Select(p => (Port: direct ? (p.HasHostPort && p.HostPort > 0 ? p.HostPort : p.ContainerPort) : p.HostPort, Udp: p.Protocol == "udp"))
            .Where(p => p.Port > 0)
            .ToList();
        return new(cpu, memory, [.. ports.Where(p => !p.Udp).Select(p => p.Port)], [.. ports.Where(p => p.Udp).Select(p => p.Port)])
        {
            HostPaths = [.. HostAccess.HostPaths(definition).Distinct(StringComparer.Ordinal)],
        };
    }
}

/// <summary>
/// An instance as placement sees it: what is left of it after the tasks already there, the facts the
/// query language asks about, and how many tasks of each group it runs.
/// </summary>
public sealed class Candidate
{
    public Candidate(
        string arn, bool eligible, string ineligibleReason, int cpuLeft, int memoryLeft,
        IEnumerable<int> tcpUsed, IEnumerable<int> udpUsed, InstanceFacts facts, IEnumerable<KeyValuePair<string, int>> groups)
    {
        (Arn, Eligible, IneligibleReason, CpuLeft, MemoryLeft) = (arn, eligible, ineligibleReason, cpuLeft, memoryLeft);
        TcpUsed = [.. tcpUsed];
        UdpUsed = [.. udpUsed];
        Groups = new(groups, StringComparer.Ordinal);
        Facts = facts with { TaskGroups = Groups.Keys };
    }

    public string Arn { get; }

    /// <summary>ACTIVE with its agent connected; otherwise why not (AGENT).</summary>
    public bool Eligible { get; }

    public string IneligibleReason { get; }

    public int CpuLeft { get; private set; }

    public int MemoryLeft { get; private set; }

    public HashSet<int> TcpUsed { get; }

    public HashSet<int> UdpUsed { get; }

    public Dictionary<string, int> Groups { get; }

    /// <summary>The instance's facts; their task groups are <see cref="Groups"/>' keys, kept current by <see cref="Take"/>.</summary>
    public InstanceFacts Facts { get; private set; }

    public Candidate Copy() => new(Arn, Eligible, IneligibleReason, CpuLeft, MemoryLeft, TcpUsed, UdpUsed, Facts, Groups);

    /// <summary>Takes a placed task's resources, so the next task of the same plan sees them gone.</summary>
    public void Take(TaskNeeds needs, string group)
    {
        CpuLeft -= needs.Cpu;
        MemoryLeft -= needs.Memory;
        TcpUsed.UnionWith(needs.TcpPorts);
        UdpUsed.UnionWith(needs.UdpPorts);
        Groups[group] = Groups.GetValueOrDefault(group) + 1;
        Facts = Facts with { RunningTasksCount = Facts.RunningTasksCount + 1 };
    }
}

/// <summary>A request to place <see cref="Count"/> tasks alike.</summary>
public sealed record PlacementRequest(
    TaskNeeds Needs, int Count, string Group,
    IReadOnlyList<PlacementConstraint> Constraints, IReadOnlyList<PlacementStrategy> Strategies,
    IReadOnlyList<Api.V1.Attribute> RequiredAttributes);

/// <summary>The outcome: for each task, the instance it goes to, or a failure saying why it goes nowhere.</summary>
public sealed record PlacementPlan(IReadOnlyList<string> Placed, IReadOnlyList<Failure> Failures);

/// <summary>
/// ECS task placement, pure: filter the instances by agent, required attributes, constraints and
/// resources; then narrow the rest with each strategy in turn (binpack, spread, random); the seeded
/// random picks among what is still tied. Each placed task takes its resources before the next is placed.
/// </summary>
public static class TaskPlacement
{
    public const string DefaultSpreadAttribute = "ecs.availability-zone";

    /// <summary>ECS's default: spread over availability zones, then over instances.</summary>
    public static readonly IReadOnlyList<PlacementStrategy> DefaultStrategies =
    [
        new() { Type = "spread", Field = $"attribute:{DefaultSpreadAttribute}" },
        new() { Type = "spread", Field = "instanceId" },
    ];

    /// <summary>Checks constraints and strategies as ECS does, naming the field at fault; parses memberOf expressions.</summary>
    public static IReadOnlyList<(PlacementConstraint Constraint, ClusterQuery? Query)> ParseConstraints(IEnumerable<PlacementConstraint> constraints, string field)
    {
        var parsed = new List<(PlacementConstraint, ClusterQuery?)>();
        var index = 0;
        foreach (var constraint in constraints)
        {
            var at = $"{field}[{index++}]";
            switch (constraint.Type)
            {
                case "distinctInstance" when !constraint.HasExpression || constraint.Expression.Length == 0:
                    parsed.Add((constraint, null));
                    break;
                case "distinctInstance":
                    throw EcsException.InvalidParameter($"{at}.expression", "distinctInstance takes no expression.");
                case "memberOf" when constraint.HasExpression && constraint.Expression.Length > 0:
                    parsed.Add((constraint, ClusterQuery.Parse(constraint.Expression, $"{at}.expression")));
                    break;
                case "memberOf":
                    throw EcsException.InvalidParameter($"{at}.expression", "memberOf needs a cluster query expression.");
                default:
                    throw EcsException.InvalidParameter($"{at}.type", $"'{constraint.Type}' is not a placement constraint type (distinctInstance, memberOf).");
            }
        }

        return parsed;
    }

    public static void ValidateStrategies(IEnumerable<PlacementStrategy> strategies, string field)
    {
        var index = 0;
        foreach (var strategy in strategies)
        {
            var at = $"{field}[{index++}]";
            var ok = strategy.Type switch
            {
                "random" => !strategy.HasField || strategy.Field.Length == 0,
                "binpack" => strategy.Field.ToUpperInvariant() is "CPU" or "MEMORY",
                "spread" => strategy.Field is "instanceId" or "host" || (strategy.Field.StartsWith("attribute:", StringComparison.Ordinal) && strategy.Field.Length > "attribute:".Length),
                _ => throw EcsException.InvalidParameter($"{at}.type", $"'{strategy.Type}' is not a placement strategy type (binpack, spread, random)."),
            };
            if (!ok)
            {
                throw EcsException.InvalidParameter($"{at}.field", strategy.Type switch
                {
                    "random" => "random takes no field.",
                    "binpack" => $"'{strategy.Field}' cannot be binpacked: use cpu or memory.",
                    _ => $"'{strategy.Field}' cannot be spread over: use instanceId, host or attribute:NAME.",
                });
            }
        }
    }

    /// <param name="candidates">The cluster's instances; not changed (an instance a task goes to is copied first).</param>
    public static PlacementPlan Plan(PlacementRequest request, IReadOnlyList<Candidate> candidates, Random random)
    {
        var constraints = ParseConstraints(request.Constraints, "placementConstraints");
        var strategies = request.Strategies.Count > 0 ? request.Strategies : DefaultStrategies;
        var working = candidates.ToArray();
        var copied = new bool[working.Length];

        // What only changes when a task lands on an instance (its agent, attributes, memberOf) is decided
        // once per instance, then again only for the instance that took a task: each decision is then a
        // pass of integer comparisons, however large the cluster.
        var fixedOk = new bool[working.Length];
        for (var i = 0; i < working.Length; i++)
        {
            fixedOk[i] = FixedLack(working[i], request, constraints) is null;
        }

        var distinct = constraints.Any(c => c.Query is null);
        var needs = request.Needs;
        var ports = needs.TcpPorts.Count + needs.UdpPorts.Count > 0;

        // The numbers each decision compares, side by side in arrays: a pass over 5,000 instances stays in cache.
        var cpu = new int[working.Length];
        var memory = new int[working.Length];
        var inGroup = new int[working.Length];
        for (var i = 0; i < working.Length; i++)
        {
            (cpu[i], memory[i], inGroup[i]) = (working[i].CpuLeft, working[i].MemoryLeft, working[i].Groups.GetValueOrDefault(request.Group));
        }

        var spreads = strategies.Select(st => st.Type == "spread" ? new SpreadCounts(working, st.Field, inGroup) : null).ToArray();

        bool Fits(int i) =>
            fixedOk[i] && cpu[i] >= needs.Cpu && memory[i] >= needs.Memory && (!distinct || inGroup[i] == 0) && (!ports || PortsFree(working[i], needs));

        // The instances a task fits on, in order: found once, then only the instance that took a task is
        // looked at again (placing a task never makes room on another one).
        var fitting = new List<int>(working.Length);
        for (var i = 0; i < working.Length; i++)
        {
            if (Fits(i))
            {
                fitting.Add(i);
            }
        }

        var feasible = new List<int>(working.Length);
        var narrowed = new List<int>(working.Length);
        var placed = new List<string>();
        var failures = new List<Failure>();
        for (var task = 0; task < request.Count; task++)
        {
            if (fitting.Count == 0)
            {
                failures.Add(Failure([.. working], request, constraints, task));
                continue;
            }

            feasible.Clear();
            feasible.AddRange(fitting);
            for (var s = 0; s < strategies.Count && feasible.Count > 1; s++)
            {
                Narrow(feasible, narrowed, strategies[s].Field.Equals("cpu", StringComparison.OrdinalIgnoreCase) ? cpu : memory, strategies[s], spreads[s], random);
                (feasible, narrowed) = (narrowed, feasible);
            }

            var chosen = feasible.Count == 1 ? feasible[0] : feasible[random.Next(feasible.Count)];
            if (!copied[chosen])
            {
                working[chosen] = working[chosen].Copy();
                copied[chosen] = true;
            }

            working[chosen].Take(needs, request.Group);
            (cpu[chosen], memory[chosen], inGroup[chosen]) = (working[chosen].CpuLeft, working[chosen].MemoryLeft, inGroup[chosen] + 1);
            fixedOk[chosen] = FixedLack(working[chosen], request, constraints) is null;
            if (!Fits(chosen))
            {
                fitting.RemoveAt(fitting.BinarySearch(chosen));
            }

            foreach (var spread in spreads)
            {
                spread?.Placed(chosen);
            }

            placed.Add(working[chosen].Arn);
        }

        return new(placed, failures);
    }

    /// <summary>Tasks of the group per spread value (instance, host or attribute), kept as the plan places tasks.</summary>
    private sealed class SpreadCounts
    {
        private readonly int[] _bucket;
        private readonly int[] _count;

        /// <param name="inGroup">The group's tasks on each instance.</param>
        public SpreadCounts(Candidate[] candidates, string field, int[] inGroup)
        {
            _bucket = new int[candidates.Length];
            var count = candidates.Length;
            if (field == "instanceId")
            {
                for (var i = 0; i < candidates.Length; i++)
                {
                    _bucket[i] = i; // every instance a value of its own
                }
            }
            else
            {
                var buckets = new Dictionary<string, int>(StringComparer.Ordinal);
                var attribute = field == "host" ? "hostname" : field["attribute:".Length..];
                for (var i = 0; i < candidates.Length; i++)
                {
                    var value = candidates[i].Facts.Attributes.GetValueOrDefault(attribute) ?? (field == "host" ? candidates[i].Arn : "");
                    if (!buckets.TryGetValue(value, out var bucket))
                    {
                        buckets[value] = bucket = buckets.Count;
                    }

                    _bucket[i] = bucket;
                }

                count = buckets.Count;
            }

            _count = new int[count];
            for (var i = 0; i < candidates.Length; i++)
            {
                _count[_bucket[i]] += inGroup[i];
            }
        }

        public int Of(int candidate) => _count[_bucket[candidate]];

        public void Placed(int candidate) => _count[_bucket[candidate]]++;
    }

    /// <summary>Keeps the instances the strategy likes best.</summary>
    /// <param name="left">For binpack: what is left of the resource it packs, per instance.</param>
    private static void Narrow(List<int> feasible, List<int> kept, int[] left, PlacementStrategy strategy, SpreadCounts? spread, Random random)
    {
        kept.Clear();
        if (strategy.Type == "random")
        {
            kept.Add(feasible[random.Next(feasible.Count)]);
            return;
        }

        // binpack: the least of the resource left, to fill instances up one by one; spread: the value
        // with the fewest tasks of the group across the whole cluster.
        var best = int.MaxValue;
        foreach (var i in feasible)
        {
            var score = spread?.Of(i) ?? left[i];
            if (score < best)
            {
                best = score;
                kept.Clear();
            }

            if (score == best)
            {
                kept.Add(i);
            }
        }
    }

    private static bool PortsFree(Candidate candidate, TaskNeeds needs)
    {
        foreach (var port in needs.TcpPorts)
        {
            if (candidate.TcpUsed.Contains(port))
            {
                return false;
            }
        }

        foreach (var port in needs.UdpPorts)
        {
            if (candidate.UdpUsed.Contains(port))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The reasons that do not depend on the resources left: agent, attributes, memberOf.</summary>
    private static (string Reason, string Detail)? FixedLack(Candidate candidate, PlacementRequest request, IReadOnlyList<(PlacementConstraint Constraint, ClusterQuery? Query)> constraints)
    {
        if (!candidate.Eligible)
        {
            return (candidate.IneligibleReason, candidate.IneligibleReason == "AGENT" ? "its agent is not connected" : "it is not ACTIVE");
        }

        // Indexed loops: this runs for every instance of every plan, and interface enumerators allocate.
        for (var i = 0; i < request.RequiredAttributes.Count; i++)
        {
            var attribute = request.RequiredAttributes[i];
            if (!candidate.Facts.Attributes.TryGetValue(attribute.Name, out var value) || (attribute.HasValue && value != attribute.Value))
            {
                return ("ATTRIBUTE", $"it lacks the attribute {attribute.Name}{(attribute.HasValue ? "=" + attribute.Value : "")}");
            }
        }

        if (request.Needs.HostPaths.Count > 0 && candidate.Facts.Attributes.TryGetValue(HostAccess.AllowedHostPathsAttribute, out var allowedPaths))
        {
            var allowed = HostAccess.ParseAllowed(allowedPaths ?? "");
            foreach (var path in request.Needs.HostPaths)
            {
                if (!HostAccess.Allows(allowed, path))
                {
                    return ("ATTRIBUTE", $"it does not allow the host path {path} ({HostAccess.AllowedHostPathsAttribute}: {allowedPaths})");
                }
            }
        }

        for (var i = 0; i < constraints.Count; i++)
        {
            if (constraints[i].Query is { } query && !query.Matches(candidate.Facts))
            {
                return ("MemberOf", $"it is not a member of '{constraints[i].Constraint.Expression}'");
            }
        }

        return null;
    }

    /// <summary>Why the instance cannot take the task, in ECS's reason words; null when it can.</summary>
    public static (string Reason, string Detail)? Lacks(Candidate candidate, PlacementRequest request, IReadOnlyList<(PlacementConstraint Constraint, ClusterQuery? Query)> constraints)
    {
        if (FixedLack(candidate, request, constraints) is { } lack)
        {
            return lack;
        }

        if (constraints.Any(c => c.Query is null) && candidate.Groups.GetValueOrDefault(request.Group) > 0)
        {
            return ("DistinctInstance", $"it already runs a task of group '{request.Group}'");
        }

        var needs = request.Needs;
        if (candidate.CpuLeft < needs.Cpu)
        {
            return ("RESOURCE:CPU", $"needs {needs.Cpu} CPU units, {Math.Max(0, candidate.CpuLeft)} left");
        }

        if (candidate.MemoryLeft < needs.Memory)
        {
            return ("RESOURCE:MEMORY", $"needs {needs.Memory} MiB of memory, {Math.Max(0, candidate.MemoryLeft)} left");
        }

        if (needs.TcpPorts.FirstOrDefault(candidate.TcpUsed.Contains) is var tcp and > 0)
        {
            return ("RESOURCE:PORTS", $"TCP port {tcp} is taken");
        }

        if (needs.UdpPorts.FirstOrDefault(candidate.UdpUsed.Contains) is var udp and > 0)
        {
            return ("RESOURCE:PORTS_UDP", $"UDP port {udp} is taken");
        }

        return null;
    }

    /// <summary>The task's failure: the reason of the instance closest to taking it, and what the closest ones lack.</summary>
    private static Failure Failure(List<Candidate> all, PlacementRequest request, IReadOnlyList<(PlacementConstraint, ClusterQuery?)> constraints, int task)
    {
        var lacks = all
            .Select(c => (Candidate: c, Lack: Lacks(c, request, constraints)!.Value))
            .OrderBy(l => Rank(l.Lack.Reason))
            .ThenByDescending(l => l.Candidate.MemoryLeft + l.Candidate.CpuLeft)
            .ThenBy(l => l.Candidate.Arn, StringComparer.Ordinal)
            .ToList();
        var closest = lacks[0];
        var detail = $"task {task + 1} of {request.Count}: no instance can take it; " +
            string.Join("; ", lacks.Take(3).Select(l => $"{l.Candidate.Arn}: {l.Lack.Reason}: {l.Lack.Detail}")) +
            (lacks.Count > 3 ? $"; and {lacks.Count - 3} more" : "");
        return new Failure { Arn = closest.Candidate.Arn, Reason = closest.Lack.Reason, Detail = detail };
    }

    /// <summary>How close a reason is to placing: lacking resources is closer than being the wrong instance.</summary>
    private static int Rank(string reason) => reason switch
    {
        "RESOURCE:PORTS" or "RESOURCE:PORTS_UDP" => 0,
        "RESOURCE:MEMORY" => 1,
        "RESOURCE:CPU" => 2,
        "DistinctInstance" => 3,
        "MemberOf" => 4,
        "ATTRIBUTE" => 5,
        _ => 6,
    };
}
