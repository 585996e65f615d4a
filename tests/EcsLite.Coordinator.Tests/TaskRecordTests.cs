using EcsLite.Api.V1;
using EcsLite.Coordinator.Store;
using EcsLite.Store.V1;
using EcsLite.Testing;
using Grpc.Core;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// A task that runs its task definition unchanged is stored naming the revision rather than holding a
/// copy of it. Through restarts, and through the revision being deregistered and deleted, every task
/// keeps running exactly the definition (with its overrides) it was started with.
/// </summary>
public sealed class TaskRecordTests
{
    [Fact]
    public async Task Tasks_keep_their_definitions_through_restarts_and_the_deletion_of_their_revision()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync(null);
        var registered = await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "records",
            ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 64, Command = { "sleep", "600" } } },
        });
        var arn = registered.TaskDefinition.TaskDefinitionArn;

        var host = await coordinator.EnrollAsync("records");
        var (call, instance) = await JoinAsync(host, "");
        var plain = await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "records", Count = 2 });
        var overridden = await coordinator.Ecs.RunTaskAsync(new RunTaskRequest
        {
            TaskDefinition = "records",
            Overrides = new TaskOverride { ContainerOverrides = { new ContainerOverride { Name = "app", Command = { "echo", "overridden" } } } },
        });
        var plainArns = plain.Tasks.Select(t => t.TaskArn).ToList();
        var overriddenArn = overridden.Tasks.Single().TaskArn;
        var sent = await DesiredAsync(call, 3);
        call.Dispose();
        Assert.Equal(["sleep", "600"], sent[plainArns[0]].ContainerDefinitions[0].Command);
        Assert.Equal(["echo", "overridden"], sent[overriddenArn].ContainerDefinitions[0].Command);

        // Stored: the plain tasks name their revision; the overridden one holds its own definition.
        await coordinator.StopAsync();
        var records = await TaskRecordsAsync(coordinator.DataDir);
        Assert.All(plainArns, a => Assert.Null(records[a].TaskDefinition));
        Assert.Equal(["echo", "overridden"], records[overriddenArn].TaskDefinition.ContainerDefinitions[0].Command);

        // Restarted: the agent is sent the same three definitions again.
        await coordinator.StartAgainAsync();
        (call, _) = await JoinAsync(host, instance);
        var again = await DesiredAsync(call, 3);
        call.Dispose();
        Assert.All(sent, s => Assert.Equal(s.Value, again[s.Key]));

        // The revision is deregistered and deleted: its tasks are stored with their copy of it and run on.
        await coordinator.Ecs.DeregisterTaskDefinitionAsync(new DeregisterTaskDefinitionRequest { TaskDefinition = arn });
        var deleted = await coordinator.Ecs.DeleteTaskDefinitionsAsync(new DeleteTaskDefinitionsRequest { TaskDefinitions = { arn, arn } });
        Assert.Equal([arn], deleted.TaskDefinitions.Select(d => d.TaskDefinitionArn));
        await coordinator.StopAsync();
        records = await TaskRecordsAsync(coordinator.DataDir);
        Assert.All(records.Values, r => Assert.Equal(arn, r.TaskDefinition?.TaskDefinitionArn));

        await coordinator.StartAgainAsync();
        (call, _) = await JoinAsync(host, instance);
        var afterDelete = await DesiredAsync(call, 3);
        call.Dispose();
        Assert.All(sent, s => Assert.Equal(s.Value.ContainerDefinitions, afterDelete[s.Key].ContainerDefinitions));
        var described = await coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { sent.Keys } });
        Assert.Equal(3, described.Tasks.Count);
        Assert.All(described.Tasks, t => Assert.Equal(arn, t.TaskDefinitionArn));
        await Assert.ThrowsAsync<RpcException>(() => coordinator.Ecs.DescribeTaskDefinitionAsync(new DescribeTaskDefinitionRequest { TaskDefinition = arn }).ResponseAsync);
    }

    /// <summary>Joins as a host with room for the tasks; returns the open stream and the instance's ARN.</summary>
    private static async Task<(AsyncDuplexStreamingCall<AgentMessage, CoordinatorMessage> Call, string Instance)> JoinAsync(EnrolledHost host, string instance)
    {
        var hello = new AgentHello { ContainerInstanceArn = instance, Cluster = "default", Hostname = "records", VersionInfo = new EcsLite.Api.V1.VersionInfo { AgentVersion = "test" } };
        hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 1024 });
        hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = 1024 });
        var call = new AgentChannel.AgentChannelClient(host.Channel).Connect();
        await call.RequestStream.WriteAsync(new AgentMessage { Hello = hello });
        Assert.True(await call.ResponseStream.MoveNext());
        return (call, call.ResponseStream.Current.Welcome.ContainerInstanceArn);
    }

    /// <summary>The task definitions the coordinator sends for tasks to run, once it has sent <paramref name="count"/>.</summary>
    private static async Task<Dictionary<string, TaskDefinition>> DesiredAsync(AsyncDuplexStreamingCall<AgentMessage, CoordinatorMessage> call, int count)
    {
        var definitions = new Dictionary<string, TaskDefinition>(StringComparer.Ordinal);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (definitions.Count < count && await call.ResponseStream.MoveNext(timeout.Token))
        {
            foreach (var task in call.ResponseStream.Current.DesiredTasks?.Tasks ?? [])
            {
                definitions[task.TaskArn] = task.TaskDefinition;
            }
        }

        return definitions;
    }

    private static async Task<Dictionary<string, StoredTask>> TaskRecordsAsync(string dataDir)
    {
        await using var store = SqliteKeyValueStore.Open(dataDir);
        var range = await store.RangeAsync("/tasks/", default);
        return range.Kvs.Select(kv => StoredTask.Parser.ParseFrom(kv.Value)).ToDictionary(t => t.Task.TaskArn, StringComparer.Ordinal);
    }
}
