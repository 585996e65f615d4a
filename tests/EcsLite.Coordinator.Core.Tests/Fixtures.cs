using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.State;
using Google.Protobuf;

namespace EcsLite.Coordinator.Core.Tests;

internal static class Fixtures
{
    public static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    public static CommandContext Context(int secondsLater = 0) => new(Now.AddSeconds(secondsLater), new ArnFormat());

    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));

    public static RegisterTaskDefinitionRequest Parse(string json) => Parser.Parse<RegisterTaskDefinitionRequest>(json);

    public static RegisterTaskDefinitionRequest Simple(string family, int memory = 64) => Parse($$"""
        { "family": "{{family}}", "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": {{memory}} }] }
        """);

    /// <summary>
    /// Runs a command and applies its changes, as the host's state machine does; a command that gives the
    /// state after its changes (which the state machine then takes instead) must give what applying them makes.
    /// </summary>
    public static (CoordinatorState State, T Result) Run<T>(CoordinatorState state, Func<CoordinatorState, Mutation<T>> command)
    {
        var mutation = command(state);
        var applied = state.Apply(mutation.Changes);
        if (mutation.After is { } after)
        {
            Assert.Equal(Describe(applied), Describe(after));
        }

        return (applied, mutation.Result);
    }

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
