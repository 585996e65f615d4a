using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Agent.Tests;

/// <summary>Several hosts on one machine: the coordinator and two agents each in a network namespace of their own.</summary>
public class NetworkNamespaceTests
{
    [Fact]
    public async Task Two_agents_in_different_network_namespaces_register_as_two_instances()
    {
        using var network = new NetworkNamespaces();
        var (hostA, hubFromA) = network.AddHost("a");
        var (hostB, hubFromB) = network.AddHost("b");
        const int port = 7430;
        await using var coordinator = await CoordinatorProcess.StartListeningAsync(
            null, $"0.0.0.0:{port}", $"https://{network.HubAddressFromRoot}:{port}", NetworkNamespaces.Exec(network.Hub));

        await using var agentA = AgentProcess.Start($"https://{hubFromA}:{port}", coordinator.JoinToken, wrapper: NetworkNamespaces.Exec(hostA));
        await using var agentB = AgentProcess.Start($"https://{hubFromB}:{port}", coordinator.JoinToken, wrapper: NetworkNamespaces.Exec(hostB));
        await Task.WhenAll(agentA.WaitJoinedAsync(), agentB.WaitJoinedAsync());

        var arns = (await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns;
        Assert.Equal(2, arns.Count);
        Assert.Equal(new[] { agentA.ContainerInstanceArn, agentB.ContainerInstanceArn }.Order(), arns.Order());
        Assert.Contains($"from ipv4:{hubFromA[..^1]}2:", coordinator.Output, StringComparison.Ordinal);
        Assert.Contains($"from ipv4:{hubFromB[..^1]}2:", coordinator.Output, StringComparison.Ordinal);

        // Cutting one host's link: its agent is marked disconnected, the other stays connected.
        await agentA.Process.KillAsync();
        await Eventually.HoldsAsync(async () =>
        {
            var described = await coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { arns } });
            return described.ContainerInstances.Single(i => i.ContainerInstanceArn == agentA.ContainerInstanceArn).AgentConnected == false
                && described.ContainerInstances.Single(i => i.ContainerInstanceArn == agentB.ContainerInstanceArn).AgentConnected;
        }, TimeSpan.FromSeconds(8), "host a disconnected while host b stays connected");
    }
}
