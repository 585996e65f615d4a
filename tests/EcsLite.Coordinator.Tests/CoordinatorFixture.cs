using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>One real coordinator process shared by a test class, with a reflection-based JSON client.</summary>
public sealed class CoordinatorFixture : IAsyncLifetime
{
    public CoordinatorProcess Coordinator { get; private set; } = null!;

    public DynamicJsonClient Json { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Coordinator = await CoordinatorProcess.StartAsync();
        Json = await DynamicJsonClient.ConnectAsync(Coordinator.Channel);
    }

    public async Task DisposeAsync() => await Coordinator.DisposeAsync();
}
