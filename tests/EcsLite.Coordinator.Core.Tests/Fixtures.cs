using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.State;
using EcsLite.Testing;
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
    public static string Describe(CoordinatorState state) => StateText.Describe(state);
}
