using EcsLite.Api.V1;
using EcsLite.Coordinator.Agents;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>Agents' reports that arrive together are applied together: fewer commands and store writes than agents.</summary>
public sealed class AgentReportsTests
{
    [Fact]
    public async Task Reports_of_many_agents_arriving_at_once_are_all_applied_in_a_few_store_writes()
    {
        await using var store = SqliteKeyValueStore.Open(CoordinatorProcess.TempDirectory("ecslite-reports"));
        var machine = FollowerStateTests.Machine(store, TimeProvider.System);
        await machine.LoadAsync(default);
        await machine.ApplyAsync((s, c) => ClusterCommands.Create(s, new CreateClusterRequest { ClusterName = "edge" }, c), default);
        const int agents = 40;
        for (var i = 0; i < agents; i++)
        {
            var hello = new AgentHello { Cluster = "edge", Hostname = $"pi-{i}", VersionInfo = new VersionInfo { AgentVersion = "0.1.0" } };
            hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 1024 });
            hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = 1024 });
            var id = $"{i:D4}";
            await machine.ApplyAsync((s, c) => ContainerInstanceCommands.Join(s, hello, c, id), default);
        }

        await machine.ApplyAsync((s, c) => TaskDefinitionCommands.Register(s, new RegisterTaskDefinitionRequest
        {
            Family = "job", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 64 } },
        }, c), default);
        var ids = 0;
        var tasks = new List<EcsLite.Api.V1.Task>();
        for (var call = 0; call < agents / 10; call++)
        {
            tasks.AddRange((await machine.ApplyAsync((s, c) => TaskCommands.Run(s, new RunTaskRequest { Cluster = "edge", TaskDefinition = "job", Count = 10 }, c, new Random(call), () => $"t{++ids:D4}"), default)).Tasks);
        }

        Assert.Equal(agents, tasks.Select(t => t.ContainerInstanceArn).Distinct().Count());

        var reports = new AgentReports(machine);
        var before = machine.Revision;
        await Task.WhenAll(tasks.Select(t => reports.ApplyAsync(t.ContainerInstanceArn,
            [new TaskStateChange { TaskArn = t.TaskArn, LastStatus = "PENDING", DesiredStatus = "RUNNING" }, new TaskStateChange { TaskArn = t.TaskArn, LastStatus = "RUNNING", DesiredStatus = "RUNNING" }])));

        Assert.All(tasks, t => Assert.Equal("RUNNING", machine.Current.Tasks[t.TaskArn].Task.LastStatus));
        Assert.InRange(machine.Revision - before, 1, agents / 4); // one write per agent would be 40

        // With nothing else waiting, one report is a command of its own, applied at once.
        await reports.ApplyAsync(tasks[0].ContainerInstanceArn, [new TaskStateChange { TaskArn = tasks[0].TaskArn, LastStatus = "STOPPED", DesiredStatus = "STOPPED" }]);
        Assert.Equal("STOPPED", machine.Current.Tasks[tasks[0].TaskArn].Task.LastStatus);
    }
}
