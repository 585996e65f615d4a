using EcsLite.Coordinator.Core.State;

namespace EcsLite.Testing;

/// <summary>A cluster state as text, for comparing two states whole.</summary>
public static class StateText
{
    /// <summary>Everything a state holds, as text: two states that describe alike hold the same.</summary>
    public static string Describe(CoordinatorState state)
    {
        static string Map<TValue>(IEnumerable<KeyValuePair<string, TValue>> map, Func<TValue, string> value) =>
            string.Join("\n", map.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"  {e.Key}: {value(e.Value)}"));
        static string Counts<TKey>(IEnumerable<KeyValuePair<TKey, int>> counts) =>
            string.Join(",", counts.Where(c => c.Value != 0).Select(c => $"{c.Key}={c.Value}").Order(StringComparer.Ordinal));

        return string.Join("\n",
            "clusters", Map(state.Clusters, c => c.ToString()),
            "families", Map(state.Families, f => $"{f.LastRevision} {string.Join(",", f.Revisions.Keys)}"),
            "instances", Map(state.ContainerInstances, i => i.ToString()),
            "connections", Map(state.Connections, c => c.ToString()),
            "tasks", Map(state.Tasks, t => t.ToString()),
            "tasks by instance", Map(state.TasksByInstance, t => string.Join(",", t.Order(StringComparer.Ordinal))),
            "services", Map(state.Services, s => s.ToString()),
            "usage", Map(state.Usage, u => $"{u.Tasks} {u.Cpu} {u.Memory} tcp {Counts(u.TcpPorts)} udp {Counts(u.UdpPorts)} groups {Counts(u.Groups)}"),
            "tasks by service", Map(state.TasksByService, t => string.Join(",", t.Keys.Order(StringComparer.Ordinal))),
            "schedules", Map(state.Schedules, s => s.ToString()));
    }
}
