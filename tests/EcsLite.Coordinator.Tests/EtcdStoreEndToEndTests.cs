using EcsLite.Api.V1;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;
using Xunit.Abstractions;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The coordinator with its state in a real etcd (Store=etcd://...), a real agent and Docker: tasks run,
/// the state is in etcd and not in the data directory, and a restarted coordinator serves it from etcd.
/// </summary>
public sealed class EtcdStoreEndToEndTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_coordinator_on_etcd_runs_tasks_keeps_them_in_etcd_and_serves_them_again_after_a_restart()
    {
        await using var etcd = await EtcdCluster.StartAsync();
        var location = etcd.Location("/e2e");
        await using var cluster = await TestCluster.StartAsync(coordinatorArgs: ["--store", location]);
        var coordinator = cluster.Coordinator;
        Assert.Contains($"Cluster store: {location} (etcd)", coordinator.Output, StringComparison.Ordinal);

        await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "sleeper",
            ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 32, Command = { "sleep", "300" } } },
        });
        var run = await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "sleeper", Count = 2 });
        Assert.Empty(run.Failures);
        var arns = run.Tasks.Select(t => t.TaskArn).ToList();
        await Eventually.HoldsAsync(async () => (await coordinator.Ecs.DescribeAllTasksAsync(arns)).All(t => t.LastStatus == "RUNNING"),
            TimeSpan.FromSeconds(60), "both tasks RUNNING");

        // The state is in etcd, under the root, and the data directory has no store of its own.
        Assert.False(File.Exists(Path.Combine(coordinator.DataDir, SqliteKeyValueStore.FileName)));
        await using (var store = EtcdKeyValueStore.Connect(location))
        {
            var tasks = (await store.RangeAsync("/tasks/default/", default)).Kvs;
            Assert.Equal(arns.Select(a => a.Split('/')[^1]).Order(), tasks.Select(kv => kv.Key.Split('/')[^1]).Order());
            Assert.Single((await store.RangeAsync("/container-instances/", default)).Kvs);
        }

        // Restarted, the coordinator loads the state from etcd: the same tasks, still RUNNING, on the same instance.
        var startedAt = (await coordinator.Ecs.DescribeAllTasksAsync(arns)).Select(t => t.StartedAt).ToList();
        var exit = await coordinator.StopAsync();
        Assert.True(exit == 0, $"the coordinator exited with {exit}:\n{coordinator.Output}");
        await coordinator.StartAgainAsync();
        var after = await coordinator.Ecs.DescribeAllTasksAsync(arns);
        Assert.All(after, t => Assert.Equal(("RUNNING", cluster.Agent.ContainerInstanceArn), (t.LastStatus, t.ContainerInstanceArn)));
        Assert.Equal(startedAt, after.Select(t => t.StartedAt));

        // And it goes on writing there: the agent rejoins, and a stop reaches it.
        await Eventually.HoldsAsync(async () => (await coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest
            { ContainerInstances = { cluster.Agent.ContainerInstanceArn } })).ContainerInstances[0].AgentConnected, TimeSpan.FromSeconds(40), "the agent rejoined");
        await coordinator.Ecs.StopTaskAsync(new StopTaskRequest { Task = arns[0], Reason = "done" });
        await Eventually.HoldsAsync(async () => (await coordinator.Ecs.DescribeAllTasksAsync([arns[0]]))[0].LastStatus == "STOPPED",
            TimeSpan.FromSeconds(60), "the stopped task STOPPED");
    }

    [Fact]
    public async Task With_etcds_raft_leader_of_three_killed_the_coordinator_goes_on_leading_writing_and_reading()
    {
        await using var etcd = await EtcdCluster.StartAsync(members: 3);
        await using var coordinator = await CoordinatorProcess.StartAsync(null, "--store", etcd.Location("/one-down"));
        await Register(coordinator, "before");

        // etcd's raft leader, the hard case: until the other two elect one (a second or two, more after a split
        // vote) etcd renews no lease and commits no write, and the coordinator may hold still meanwhile.
        var raftLeader = await etcd.RaftLeaderAsync();
        await etcd.KillAsync(raftLeader);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var written = 0;
        while (watch.Elapsed < TimeSpan.FromSeconds(8))
        {
            await Register(coordinator, $"during-{written++}");
            await Task.Delay(100); // past the lease's time to live (3 s) twice over, in about 70 writes
        }

        var families = (await coordinator.Ecs.ListTaskDefinitionFamiliesAsync(new ListTaskDefinitionFamiliesRequest { MaxResults = 100 })).Families;
        Assert.Equal(written + 1, families.Count);
        Assert.DoesNotContain("Leadership lost", coordinator.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("failed to commit", coordinator.Output, StringComparison.Ordinal);

        // Back, it catches up; the coordinator never noticed.
        await etcd.RestartAsync(raftLeader);
        await Register(coordinator, "after");
        Assert.Equal(1, coordinator.Output.Split("Leading the coordinators").Length - 1);
        foreach (var line in coordinator.Output.Split('\n').Where(l => l.Contains("Lead in doubt", StringComparison.Ordinal) || l.Contains("Lead confirmed", StringComparison.Ordinal)))
        {
            output.WriteLine(line); // whether etcd's election outlasted the lease's margin this time
        }
    }

    private static async Task Register(CoordinatorProcess coordinator, string family)
    {
        try
        {
            await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
            {
                Family = family,
                ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16 } },
            });
        }
        catch (Grpc.Core.RpcException e)
        {
            throw new Xunit.Sdk.XunitException($"registering {family}: {e.Status}\n{coordinator.Output}");
        }
    }
}
