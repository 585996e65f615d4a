using System.Collections.Immutable;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Core.State;

/// <summary>
/// What an instance's tasks not yet STOPPED take from it: CPU, memory, host ports, and how many tasks
/// of each group. Kept up to date as tasks change, so placement reads it instead of adding up every
/// task of the cluster for every call.
/// </summary>
public sealed record InstanceUsage(
    int Tasks, int Cpu, int Memory,
    ImmutableDictionary<int, int> TcpPorts, ImmutableDictionary<int, int> UdpPorts,
    ImmutableDictionary<string, int> Groups)
{
    public static InstanceUsage None { get; } = new(0, 0, 0,
        ImmutableDictionary<int, int>.Empty, ImmutableDictionary<int, int>.Empty, ImmutableDictionary.Create<string, int>(StringComparer.Ordinal));

    /// <summary>The usage with a task added (<paramref name="sign"/> 1) or taken away (-1).</summary>
    public InstanceUsage With(StoredTask task, int sign)
    {
        var needs = TaskNeeds.Of(task.TaskDefinition);
        return new(
            Tasks + sign,
            Cpu + (sign * needs.Cpu),
            Memory + (sign * needs.Memory),
            Count(TcpPorts, needs.TcpPorts, sign),
            Count(UdpPorts, needs.UdpPorts, sign),
            Count(Groups, [task.Task.Group], sign));
    }

    /// <summary>The usage of many tasks at once (loading a store), counted in plain dictionaries first.</summary>
    public static InstanceUsage Of(IEnumerable<StoredTask> tasks)
    {
        int count = 0, cpu = 0, memory = 0;
        var tcp = new Dictionary<int, int>();
        var udp = new Dictionary<int, int>();
        var groups = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var task in tasks)
        {
            var needs = TaskNeeds.Of(task.TaskDefinition);
            count++;
            cpu += needs.Cpu;
            memory += needs.Memory;
            foreach (var port in needs.TcpPorts)
            {
                tcp[port] = tcp.GetValueOrDefault(port) + 1;
            }

            foreach (var port in needs.UdpPorts)
            {
                udp[port] = udp.GetValueOrDefault(port) + 1;
            }

            groups[task.Task.Group] = groups.GetValueOrDefault(task.Task.Group) + 1;
        }

        return new(count, cpu, memory, tcp.ToImmutableDictionary(), udp.ToImmutableDictionary(), groups.ToImmutableDictionary(StringComparer.Ordinal));
    }

    private static ImmutableDictionary<TKey, int> Count<TKey>(ImmutableDictionary<TKey, int> counts, IEnumerable<TKey> keys, int sign)
        where TKey : notnull
    {
        foreach (var key in keys)
        {
            var next = counts.GetValueOrDefault(key) + sign;
            counts = next > 0 ? counts.SetItem(key, next) : counts.Remove(key);
        }

        return counts;
    }
}
