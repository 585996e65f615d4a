namespace EcsLite.Testing;

/// <summary>
/// A real coordinator with real agents joined to it, on this machine's Docker engine with the local
/// images ready. Disposing it stops them and removes every container their instances made.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private TestCluster(CoordinatorProcess coordinator, IReadOnlyList<AgentProcess> agents)
    {
        Coordinator = coordinator;
        Agents = agents;
    }

    public CoordinatorProcess Coordinator { get; }

    public IReadOnlyList<AgentProcess> Agents { get; }

    public AgentProcess Agent => Agents[0];

    /// <param name="agentSettings">Each agent's environment (ECS_* and ECSLITE_* settings).</param>
    /// <param name="coordinatorArgs">The coordinator's command-line settings (e.g. --store).</param>
    public static async Task<TestCluster> StartAsync(IDictionary<string, string>? agentSettings = null, int agents = 1, string[]? coordinatorArgs = null)
    {
        await LocalImages.EnsureAsync();
        var coordinator = await CoordinatorProcess.StartAsync(null, coordinatorArgs ?? []);
        var cluster = new TestCluster(coordinator,
            [.. Enumerable.Range(0, agents).Select(_ => AgentProcess.Start(coordinator.Address, coordinator.JoinToken, environment: agentSettings))]);
        try
        {
            await Task.WhenAll(cluster.Agents.Select(a => a.WaitJoinedAsync()));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        var instances = Agents.Select(a => a.ContainerInstanceArn).OfType<string>().ToList();
        foreach (var agent in Agents)
        {
            await agent.DisposeAsync();
        }

        await Coordinator.DisposeAsync();
        if (instances.Count > 0)
        {
            await ProcessRunner.RemoveContainersAsync(instances);
        }
    }
}
