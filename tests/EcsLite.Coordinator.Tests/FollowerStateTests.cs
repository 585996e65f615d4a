using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Services;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// A follower's state is the leader's: one state machine runs commands on a real store (every kind of
/// record put and deleted), another loads the store and applies its watch, and the two describe alike.
/// </summary>
public sealed class FollowerStateTests
{
    [Fact]
    public async Task A_follower_applying_the_store_watch_holds_the_state_the_leader_holds()
    {
        await using var store = SqliteKeyValueStore.Open(CoordinatorProcess.TempDirectory("ecslite-follow"));
        var time = new WholeMilliseconds(); // the store keeps connection times to the millisecond
        var leader = Machine(store, time);
        await leader.LoadAsync(default);
        await leader.ApplyAsync((s, c) => ClusterCommands.Create(s, new CreateClusterRequest { ClusterName = "edge" }, c), default);

        // A follower that starts midway: it loads what is there, then follows.
        var follower = Machine(store, time);
        var from = await follower.LoadFollowingAsync(default);
        using var stop = new CancellationTokenSource();
        var following = Task.Run(async () =>
        {
            await foreach (var response in store.WatchAsync(StateKeys.Root, from + 1, stop.Token))
            {
                await follower.ApplyWatchedAsync(response);
            }
        });

        // What the leader tells its agents after each commit, a follower tells its own after each watched revision.
        var leaderTold = new List<string>();
        var followerTold = new List<string>();
        leader.TasksForAgents = arns => { lock (leaderTold) { leaderTold.AddRange(arns); } };
        follower.TasksForAgents = followerTold.AddRange; // on its command thread only

        var ids = 0;
        string NewId() => $"id{++ids:D4}";
        var hello = new AgentHello { Cluster = "edge", Hostname = "pi-1", VersionInfo = new VersionInfo { AgentVersion = "0.1.0" } };
        hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 4096 });
        hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = 4096 });
        var instance = (await leader.ApplyAsync((s, c) => ContainerInstanceCommands.Join(s, hello, c, NewId(), "https://follower:7430"), default)).ContainerInstance.ContainerInstanceArn;
        await follower.WaitForRevisionAsync(leader.Revision, TimeSpan.FromSeconds(10), default);
        Assert.Equal(leader.Current.Connections[instance], follower.Current.Connections[instance]); // held by the follower, as stored
        foreach (var family in new[] { "web", "job", "gone" })
        {
            await leader.ApplyAsync((s, c) => TaskDefinitionCommands.Register(s, new RegisterTaskDefinitionRequest
            {
                Family = family,
                ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 64 } },
            }, c), default);
        }

        // Tasks run, reported and stopped; a task with overrides (stored with its own definition).
        var tasks = (await leader.ApplyAsync((s, c) => TaskCommands.Run(s, new RunTaskRequest { Cluster = "edge", TaskDefinition = "job", Count = 3 }, c, new Random(1), NewId), default)).Tasks;
        await leader.ApplyAsync((s, c) => TaskCommands.Run(s, new RunTaskRequest
        {
            Cluster = "edge", TaskDefinition = "job",
            Overrides = new TaskOverride { ContainerOverrides = { new ContainerOverride { Name = "app", Command = { "true" } } } },
        }, c, new Random(2), NewId), default);
        await leader.ApplyAsync((s, c) => TaskCommands.ReportAll(s, instance, tasks.Select(t => new TaskStateChange { TaskArn = t.TaskArn, LastStatus = "RUNNING", DesiredStatus = "RUNNING" }), c), default);
        await leader.ApplyAsync((s, c) => TaskCommands.Stop(s, new StopTaskRequest { Cluster = "edge", Task = tasks[0].TaskArn, Reason = "enough" }, c), default);
        await leader.ApplyAsync((s, c) => TaskCommands.ReportAll(s, instance, [new TaskStateChange { TaskArn = tasks[0].TaskArn, LastStatus = "STOPPED", DesiredStatus = "STOPPED" }], c), default);

        // A service placed by the scheduler; a definition deregistered and deleted; the agent disconnected; stopped tasks purged.
        await leader.ApplyAsync((s, c) => ServiceCommands.Create(s, new CreateServiceRequest { Cluster = "edge", ServiceName = "site", TaskDefinition = "web", DesiredCount = 2 }, c, new Random(3)), default);
        await leader.ApplyAsync((s, c) => ServiceScheduler.Run(s, c, new ServiceSchedulerSettings(TimeSpan.FromSeconds(10), time.GetUtcNow()), new Random(4), NewId), default);
        await leader.ApplyAsync((s, c) => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = "gone:1" }, c), default);
        await leader.ApplyAsync((s, c) => TaskDefinitionCommands.Delete(s, new DeleteTaskDefinitionsRequest { TaskDefinitions = { "gone:1" } }, c), default);
        await leader.ApplyAsync((s, c) => ContainerInstanceCommands.Disconnected(s, instance, c), default);
        await leader.ApplyAsync((s, c) => TaskCommands.Purge(s, c, TimeSpan.Zero), default);

        await follower.WaitForRevisionAsync(leader.Revision, TimeSpan.FromSeconds(10), default);
        await stop.CancelAsync();
        await following.ContinueWith(_ => { }, TaskScheduler.Default);
        Assert.Equal(leader.Revision, follower.Revision);
        Assert.Equal(3, leader.Current.Families.Values.Sum(f => f.Revisions.Count) + 1); // "gone" is gone
        Assert.DoesNotContain(tasks[0].TaskArn, leader.Current.Tasks.Keys); // purged
        Assert.Equal(StateText.Describe(leader.Current), StateText.Describe(follower.Current));
        Assert.Equal(new AgentConnection(false, follower.Current.Connections[instance].Since, "https://follower:7430"), follower.Current.Connections[instance]);
        Assert.Equal(7, leaderTold.Count); // 3 + 1 run, 1 stopped, 2 placed for the service
        Assert.Equal(leaderTold, followerTold);
    }

    [Fact]
    public async Task A_leader_holding_still_runs_no_command_until_it_acts_again()
    {
        await using var store = SqliteKeyValueStore.Open(CoordinatorProcess.TempDirectory("ecslite-hold"));
        var role = new CoordinatorRole();
        var leader = Machine(store, TimeProvider.System, role);
        await leader.LoadAsync(default);

        role.Hold(); // its lease in doubt
        var creating = leader.ApplyAsync((s, c) => ClusterCommands.Create(s, new CreateClusterRequest { ClusterName = "held" }, c), default);
        await Task.Delay(500);
        Assert.False(creating.IsCompleted);
        Assert.DoesNotContain("held", leader.Current.Clusters.Keys);
        Assert.Empty((await store.RangeAsync("/clusters/held", default)).Kvs);

        role.Resume(); // etcd renewed it
        await creating.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("held", leader.Current.Clusters.Keys);
    }

    internal static ClusterStateMachine Machine(IKeyValueStore store, TimeProvider time, CoordinatorRole? role = null) =>
        new(store, time, Options.Create(new CoordinatorOptions()), role ?? new CoordinatorRole(), new Lifetime(), NullLogger<ClusterStateMachine>.Instance);

    private sealed class WholeMilliseconds : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(System.GetUtcNow().ToUnixTimeMilliseconds());
    }

    private sealed class Lifetime : IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication() => throw new InvalidOperationException("a store write failed");
    }
}
