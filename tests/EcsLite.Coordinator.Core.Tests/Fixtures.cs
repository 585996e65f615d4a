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

    /// <summary>Runs a command and applies its changes, as the host's state machine does.</summary>
    public static (CoordinatorState State, T Result) Run<T>(CoordinatorState state, Func<CoordinatorState, Mutation<T>> command)
    {
        var mutation = command(state);
        return (state.Apply(mutation.Changes), mutation.Result);
    }
}
