using EcsLite.Api.V1;
using EcsLite.Testing;
using Xunit.Abstractions;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Two real coordinators on one real etcd store (active/standby), a real agent given both, real Docker:
/// the second waits to lead, and takes over when the leader is killed, with every task still running.
/// </summary>
public sealed class HighAvailabilityTests(ITestOutputHelper output)
{
    [Fact]
    public async Task When_the_leader_is_killed_the_standby_leads_within_seconds_and_the_agent_and_its_tasks_carry_on()
    {
        await LocalImages.EnsureAsync();
        await using var etcd = await EtcdCluster.StartAsync();
        var store = etcd.Location("/ha");
        await using var first = await CoordinatorProcess.StartAsync(null, "--store", store);

        await using var second = await CoordinatorProcess.StartStandbyAsync(first, "--store", store);

        var agent = AgentProcess.Start([first.Address, second.Address], first.JoinToken, null, new Dictionary<string, string> { ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s" }, null);
        try
        {
            await agent.WaitJoinedAsync();
            await first.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
            {
                Family = "sleeper",
                ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 32, Command = { "sleep", "300" } } },
            });
            var arns = (await first.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "sleeper", Count = 2 })).Tasks.Select(t => t.TaskArn).ToList();
            await Eventually.HoldsAsync(async () => (await first.Ecs.DescribeAllTasksAsync(arns)).All(t => t.LastStatus == "RUNNING"), TimeSpan.FromSeconds(60), "both tasks RUNNING");
            var containers = (await first.Ecs.DescribeAllTasksAsync(arns)).Select(t => t.Containers[0].RuntimeId).ToList();

            // The leader dies: its lease (4 s) ends, and the standby leads.
            var killed = System.Diagnostics.Stopwatch.StartNew();
            await first.KillAsync();
            await second.WaitForOutputAsync("Leading the coordinators", TimeSpan.FromSeconds(15));
            var leading = killed.Elapsed;
            await second.WaitServingAsync(TimeSpan.FromSeconds(15));
            output.WriteLine($"the standby led {leading.TotalSeconds:0.00} s and served {killed.Elapsed.TotalSeconds:0.00} s after the leader was killed");
            // The lease (4 s) and etcd's check for ended leases (every 0.5 s) make about 4.5 s; the target
            // is 5 s (docs/benchmarks.md has the figures); this bound leaves room for a loaded machine.
            Assert.True(leading < TimeSpan.FromSeconds(7), $"the standby led {leading.TotalSeconds:0.0} s after the leader was killed");

            // The agent finds it; its tasks were never restarted; and the new leader places new ones.
            await Eventually.HoldsAsync(async () => (await second.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest
                { ContainerInstances = { agent.ContainerInstanceArn } })).ContainerInstances[0].AgentConnected, TimeSpan.FromSeconds(40), "the agent connected to the new leader");
            var after = await second.Ecs.DescribeAllTasksAsync(arns);
            Assert.All(after, t => Assert.Equal("RUNNING", t.LastStatus));
            Assert.Equal(containers, after.Select(t => t.Containers[0].RuntimeId));
            var more = (await second.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "sleeper" })).Tasks.Single().TaskArn;
            await Eventually.HoldsAsync(async () => (await second.Ecs.DescribeAllTasksAsync([more]))[0].LastStatus == "RUNNING", TimeSpan.FromSeconds(60), "a task placed by the new leader RUNNING");
        }
        finally
        {
            var instance = agent.ContainerInstanceArn; // read from the agent's data, gone once disposed
            await agent.DisposeAsync();
            if (instance is not null)
            {
                await ProcessRunner.RemoveContainersAsync([instance]);
            }
        }
    }
}
