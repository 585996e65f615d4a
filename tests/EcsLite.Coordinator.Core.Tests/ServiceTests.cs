using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.Services;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;
using static EcsLite.Coordinator.Core.Tests.Fixtures;
using TaskStatus = EcsLite.Coordinator.Core.State.TaskStatus;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>
/// The service scheduler against a simulated cluster: instances join, agents run what they are given
/// (PROVISIONING, then RUNNING; STOPPED once desired), crash, vanish and come back, and the clock moves.
/// </summary>
public class ServiceTests
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);
    private readonly Random _random = new(7);
    private readonly ServicePassMemo _memo = new();
    private int _ids;
    private CoordinatorState _state;
    private int _seconds;

    public ServiceTests()
    {
        _state = Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context())).State;
        foreach (var id in new[] { "i1", "i2", "i3" })
        {
            Join(id);
        }

        Register(Simple("web", memory: 128));
    }

    private CommandContext Now => Context(_seconds);

    private string Join(string id)
    {
        (_state, var stored) = Run(_state, s => ContainerInstanceCommands.Join(s, ContainerInstanceCommandsTests.Hello(cpu: 4096, memory: 4096, hostname: id), Now, id));
        return stored.ContainerInstance.ContainerInstanceArn;
    }

    private static string Arn(string id) => new ArnFormat().ContainerInstance("default", id);

    private void Register(RegisterTaskDefinitionRequest request) => _state = Run(_state, s => TaskDefinitionCommands.Register(s, request, Now)).State;

    private T Do<T>(Func<CoordinatorState, CommandContext, Mutation<T>> command)
    {
        (_state, var result) = Run(_state, s => command(s, Now));
        return result;
    }

    /// <summary>
    /// One scheduler pass; returns the tasks it put. Every pass is run twice, with the memo the
    /// scheduler loop keeps and without: skipping unchanged services must never change the outcome.
    /// </summary>
    private List<StoredTask> Pass()
    {
        var seed = _random.Next();
        var ids = _ids;
        var fresh = ServiceScheduler.Run(_state, Now, new ServiceSchedulerSettings(Grace, Fixtures.Now), new Random(seed), () => $"{++ids:D32}");
        var mutation = ServiceScheduler.Run(_state, Now, new ServiceSchedulerSettings(Grace, Fixtures.Now), new Random(seed), () => $"{++_ids:D32}", _memo);
        Assert.Equal(Summary(fresh.Changes), Summary(mutation.Changes));
        _state = _state.Apply(mutation.Changes);
        return [.. mutation.Changes.OfType<TaskPut>().Select(p => p.Task)];
    }

    private static List<string> Summary(IEnumerable<StateChange> changes) => [.. changes.Select(c => c switch
    {
        TaskPut put => $"{put.Task.Task.TaskArn} {put.Task.Task.DesiredStatus} {put.Task.Task.ContainerInstanceArn}",
        ServicePut put => $"{put.Service.Service.ServiceName} {put.Service.Service.Status} {put.Service.Service.RunningCount} {put.Service.Service.Deployments.Count}",
        _ => c.GetType().Name,
    })];

    /// <summary>What connected agents do next: start what is provisioning, stop what should stop.</summary>
    private void Agents()
    {
        foreach (var task in _state.Tasks.Values.Where(t => t.Task.LastStatus != TaskStatus.Stopped && _state.IsConnected(t.Task.ContainerInstanceArn)).ToList())
        {
            var status = task.Task.DesiredStatus == TaskStatus.Stopped ? TaskStatus.Stopped : TaskStatus.Running;
            if (task.Task.LastStatus != status)
            {
                Report(task, status);
            }
        }
    }

    private void Report(StoredTask task, string status, string stopCode = "")
    {
        var report = new TaskStateChange { TaskArn = task.Task.TaskArn, LastStatus = status, DesiredStatus = stopCode.Length > 0 ? TaskStatus.Stopped : task.Task.DesiredStatus, StopCode = stopCode };
        if (status == TaskStatus.Running)
        {
            report.StartedAt = Timestamp.FromDateTimeOffset(Now.Now);
        }

        if (status == TaskStatus.Stopped)
        {
            report.StoppedAt = Timestamp.FromDateTimeOffset(Now.Now);
        }

        _state = Run(_state, s => TaskCommands.Report(s, task.Task.ContainerInstanceArn, report, Now)).State;
    }

    /// <summary>Passes and agents take turns until nothing changes (bounded).</summary>
    private void Settle(Action<CoordinatorState, CoordinatorState>? check = null)
    {
        for (var round = 0; round < 50; round++)
        {
            var before = _state;
            Pass();
            check?.Invoke(before, _state);
            Agents();
            _seconds++;
            if (_state == before || (_state.Tasks == before.Tasks && _state.Services == before.Services))
            {
                return;
            }
        }
    }

    private StoredService Service(string name = "web") => _state.Services[CoordinatorState.ServiceKey("default", name)];

    private List<StoredTask> Live(string name = "web") =>
        [.. _state.Tasks.Values.Where(t => t.Task.Group == $"service:{name}" && t.Task.DesiredStatus == TaskStatus.Running)];

    private List<StoredTask> Alive(string name = "web") =>
        [.. _state.Tasks.Values.Where(t => t.Task.Group == $"service:{name}" && t.Task.LastStatus != TaskStatus.Stopped)];

    private CreateServiceResponse Create(string json) =>
        Do((s, c) => ServiceCommands.Create(s, Parser.Parse<CreateServiceRequest>(json), c, _random));

    private static readonly Google.Protobuf.JsonParser Parser = new(Google.Protobuf.JsonParser.Settings.Default.WithIgnoreUnknownFields(false));

    [Fact]
    public void A_service_starts_its_tasks_spread_and_reaches_a_steady_state_with_ECS_events()
    {
        var created = Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 3 }""").Service;
        Assert.Equal(("ACTIVE", "REPLICA", 3, 100, 200), (created.Status, created.SchedulingStrategy, created.DesiredCount,
            created.DeploymentConfiguration.MinimumHealthyPercent, created.DeploymentConfiguration.MaximumPercent));
        var deployment = Assert.Single(created.Deployments);
        Assert.Equal(("PRIMARY", "IN_PROGRESS"), (deployment.Status, deployment.RolloutState));
        Assert.Matches("^ecs-svc/[0-9]{19}$", deployment.Id);

        var placed = Pass();
        Assert.Equal(3, placed.Count);
        Assert.All(placed, t => Assert.Equal(("service:web", deployment.Id), (t.Task.Group, t.Task.StartedBy)));
        Assert.Equal(3, placed.Select(t => t.Task.ContainerInstanceArn).Distinct().Count()); // spread over instances
        Assert.Matches(@"^\(service web\) has started 3 tasks: \(task [0-9]+\) \(task [0-9]+\) \(task [0-9]+\)\.$", Service().Service.Events[0].Message);
        Assert.Equal((0, 3), (Service().Service.RunningCount, Service().Service.PendingCount));

        Settle();
        var service = Service().Service;
        Assert.Equal((3, 0), (service.RunningCount, service.PendingCount));
        Assert.Equal("COMPLETED", service.Deployments[0].RolloutState);
        Assert.Equal("(service web) has reached a steady state.", service.Events[0].Message);
        Assert.Equal($"(service web) (deployment {deployment.Id}) deployment completed.", service.Events[1].Message);

        // Level-triggered: another pass over the same state changes nothing.
        var again = ServiceScheduler.Run(_state, Now, new ServiceSchedulerSettings(Grace, Fixtures.Now), _random, () => "x");
        Assert.Empty(again.Changes);
    }

    [Fact]
    public void A_task_that_stops_is_replaced_and_tasks_that_keep_failing_are_throttled()
    {
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 2 }""");
        Settle();
        var crashed = Live()[0];
        Report(crashed, TaskStatus.Stopped, "EssentialContainerExited");
        var replacement = Assert.Single(Pass());
        Assert.Equal(2, Live().Count);
        Assert.DoesNotContain(Live(), t => t.Task.TaskArn == crashed.Task.TaskArn);
        Assert.Equal(TaskStatus.Provisioning, replacement.Task.LastStatus);

        // Three failures in a row (the crash was the first): the next task waits (10 s, doubling after each further failure).
        Report(_state.Tasks[replacement.Task.TaskArn], TaskStatus.Stopped, "TaskFailedToStart");
        Assert.Single(Pass());

        Report(_state.Tasks[Live().OrderByDescending(t => t.Task.CreatedAt).First().Task.TaskArn], TaskStatus.Stopped, "TaskFailedToStart");
        Assert.Empty(Pass());
        Assert.StartsWith("(service web) is unable to consistently start tasks successfully.", Service().Service.Events[0].Message);
        _seconds += 11;
        Assert.Single(Pass());
    }

    [Fact]
    public void Tasks_of_a_lost_instance_are_replaced_after_the_grace_and_the_stale_copies_stopped_when_it_returns()
    {
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 3 }""");
        Settle();
        var lost = Arn("i2");
        var onLost = Live().Single(t => t.Task.ContainerInstanceArn == lost);
        Do((s, c) => ContainerInstanceCommands.Disconnected(s, lost, c));

        _seconds += 5;
        Assert.Empty(Pass()); // still within the grace
        _seconds += 6;
        var changed = Pass();
        var stale = changed.Single(t => t.Task.TaskArn == onLost.Task.TaskArn);
        Assert.Equal((TaskStatus.Stopped, TaskStatus.Running, ServiceReconciler.LostReason), (stale.Task.DesiredStatus, stale.Task.LastStatus, stale.Task.StoppedReason));
        var replacement = changed.Single(t => t.Task.TaskArn != onLost.Task.TaskArn);
        Assert.NotEqual(lost, replacement.Task.ContainerInstanceArn);
        Settle();
        Assert.Equal(3, Live().Count);
        Assert.Equal(4, Alive().Count); // the stale copy still runs where nobody can reach it

        Do((s, c) => ContainerInstanceCommands.Reconnected(s, lost, c));
        Settle();
        Assert.Equal(3, Alive().Count);
        Assert.Equal(TaskStatus.Stopped, _state.Tasks[onLost.Task.TaskArn].Task.LastStatus);
    }

    [Fact]
    public void A_rolling_deployment_keeps_within_minimum_healthy_and_maximum_percent_and_completes()
    {
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 4, "deploymentConfiguration": { "minimumHealthyPercent": 50, "maximumPercent": 150 } }""");
        Settle();
        var first = Service().Service.Deployments[0].Id;
        Register(Simple("web", memory: 96));
        var updated = Do((s, c) => ServiceCommands.Update(s, new UpdateServiceRequest { Service = "web", TaskDefinition = "web:2" }, c, _random)).Service;
        Assert.Equal(["PRIMARY", "ACTIVE"], updated.Deployments.Select(d => d.Status));

        var steps = 0;
        Settle((_, after) =>
        {
            steps++;
            var alive = after.Tasks.Values.Count(t => t.Task.LastStatus != TaskStatus.Stopped);
            var serving = after.Tasks.Values.Count(t => t.Task.DesiredStatus == TaskStatus.Running && t.Task.LastStatus == TaskStatus.Running);
            Assert.InRange(alive, 0, 6);    // 150% of 4
            Assert.InRange(serving, 2, 6);  // 50% of 4
        });
        Assert.True(steps > 2);
        var service = Service().Service;
        Assert.Equal("COMPLETED", service.Deployments[0].RolloutState);
        Assert.Equal("PRIMARY", Assert.Single(service.Deployments).Status); // the drained one is gone, as on ECS
        Assert.NotEqual(first, service.Deployments[0].Id);
        Assert.All(Alive(), t => Assert.EndsWith("web:2", t.Task.TaskDefinitionArn, StringComparison.Ordinal));
        Assert.Equal(4, Alive().Count);
    }

    [Fact]
    public void The_circuit_breaker_fails_a_deployment_whose_tasks_keep_failing_and_rolls_back()
    {
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 2, "deploymentConfiguration": { "deploymentCircuitBreaker": { "enable": true, "rollback": true } } }""");
        Settle();
        Register(Simple("web", memory: 100));
        var bad = Do((s, c) => ServiceCommands.Update(s, new UpdateServiceRequest { Service = "web", TaskDefinition = "web:2" }, c, _random)).Service.Deployments[0].Id;
        var failed = Service().Service.Deployments.Single(d => d.Id == bad);
        for (var round = 0; round < 10 && failed.RolloutState == "IN_PROGRESS"; round++)
        {
            foreach (var task in Pass().Where(t => t.Task.StartedBy == bad))
            {
                Report(_state.Tasks[task.Task.TaskArn], TaskStatus.Stopped, "EssentialContainerExited");
            }

            // Once FAILED and drained, a deployment leaves the list, as on ECS: its last state is what it said.
            failed = Service().Service.Deployments.SingleOrDefault(d => d.Id == bad) ?? failed;
        }

        var service = Service().Service;
        Assert.Equal("FAILED", failed.RolloutState);
        Assert.InRange(failed.FailedTasks, 3, 4); // ECS's threshold is at least 3; two tasks fail per round here
        Assert.EndsWith("web:1", service.Deployments[0].TaskDefinition, StringComparison.Ordinal);
        Assert.Contains(service.Events, e => e.Message == $"(service web) (deployment {bad}) deployment failed: tasks failed to start.");
        Assert.Contains(service.Events, e => e.Message.StartsWith($"(service web) (deployment {bad}) rolling back to", StringComparison.Ordinal));
        Settle();
        Assert.Equal(2, Alive().Count);
        Assert.All(Alive(), t => Assert.EndsWith("web:1", t.Task.TaskDefinitionArn, StringComparison.Ordinal));
        Assert.Equal("COMPLETED", Service().Service.Deployments[0].RolloutState);
    }

    [Fact]
    public void A_daemon_runs_one_task_per_instance_follows_joins_and_leaves_draining_instances()
    {
        Create("""{ "serviceName": "agent", "taskDefinition": "web", "schedulingStrategy": "DAEMON" }""");
        Settle();
        Assert.Equal(3, Alive("agent").Select(t => t.Task.ContainerInstanceArn).Distinct().Count());
        Assert.Equal(3, Service("agent").Service.DesiredCount);

        var joined = Join("i4");
        Settle();
        Assert.Single(Alive("agent"), t => t.Task.ContainerInstanceArn == joined);

        Do((s, c) => ContainerInstanceCommands.UpdateState(s, new UpdateContainerInstancesStateRequest { ContainerInstances = { Arn("i1") }, Status = "DRAINING" }, c));
        Settle();
        Assert.DoesNotContain(Alive("agent"), t => t.Task.ContainerInstanceArn == Arn("i1"));
        Assert.Equal(3, Alive("agent").Count);
        Assert.Equal(3, Service("agent").Service.DesiredCount);

        Do((s, _) => ServiceCommands.Delete(s, new DeleteServiceRequest { Service = "agent" }));
        Settle();
        Assert.Empty(Alive("agent"));
        Assert.Equal("INACTIVE", Service("agent").Service.Status);
    }

    [Fact]
    public void Draining_an_instance_moves_its_replica_tasks_and_places_nothing_there()
    {
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 3 }""");
        Settle();
        Do((s, c) => ContainerInstanceCommands.UpdateState(s, new UpdateContainerInstancesStateRequest { ContainerInstances = { Arn("i3") }, Status = "DRAINING" }, c));
        Settle((before, after) =>
            Assert.DoesNotContain(after.Tasks.Values, t => !before.Tasks.ContainsKey(t.Task.TaskArn) && t.Task.ContainerInstanceArn == Arn("i3")));
        Assert.Equal(3, Alive().Count);
        Assert.DoesNotContain(Alive(), t => t.Task.ContainerInstanceArn == Arn("i3"));
    }

    [Fact]
    public void Scaling_and_deleting_a_service()
    {
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 2 }""");
        Settle();
        Do((s, c) => ServiceCommands.Update(s, new UpdateServiceRequest { Service = "web", DesiredCount = 5 }, c, _random));
        Settle();
        Assert.Equal(5, Alive().Count);
        Do((s, c) => ServiceCommands.Update(s, new UpdateServiceRequest { Service = "web", DesiredCount = 1 }, c, _random));
        Settle();
        Assert.Single(Alive());

        var refused = Assert.Throws<EcsException>(() => ServiceCommands.Delete(_state, new DeleteServiceRequest { Service = "web" }));
        Assert.Equal(EcsErrorType.InvalidParameterException, refused.ErrorType);
        Assert.Equal("DRAINING", Do((s, _) => ServiceCommands.Delete(s, new DeleteServiceRequest { Service = "web", Force = true })).Service.Status);
        Settle();
        Assert.Empty(Alive());
        Assert.Equal("INACTIVE", Service().Service.Status);
        Assert.Empty(ServiceCommands.List(_state, new ListServicesRequest()).ServiceArns);
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 1 }"""); // the name is free again
    }

    [Theory]
    [InlineData("""{ "cluster": "nowhere", "serviceName": "s", "taskDefinition": "web", "desiredCount": 1 }""", "ClusterNotFoundException", "cluster")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "absent", "desiredCount": 1 }""", "ClientException", "taskDefinition")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "web", "desiredCount": -1 }""", "InvalidParameterException", "desiredCount")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "web" }""", "InvalidParameterException", "desiredCount")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "web", "desiredCount": 1, "deploymentConfiguration": { "minimumHealthyPercent": 100, "maximumPercent": 50 } }""", "InvalidParameterException", "deploymentConfiguration.minimumHealthyPercent")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "web", "schedulingStrategy": "DAEMON", "desiredCount": 2 }""", "InvalidParameterException", "desiredCount")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "web", "schedulingStrategy": "DAEMON", "placementStrategy": [{ "type": "binpack", "field": "memory" }] }""", "InvalidParameterException", "placementStrategy")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "web", "desiredCount": 1, "schedulingStrategy": "SOMETIMES" }""", "InvalidParameterException", "schedulingStrategy")]
    [InlineData("""{ "serviceName": "bad name", "taskDefinition": "web", "desiredCount": 1 }""", "InvalidParameterException", "serviceName")]
    [InlineData("""{ "serviceName": "s", "taskDefinition": "web", "desiredCount": 1, "placementConstraints": [{ "type": "memberOf", "expression": "attribute:x ==" }] }""", "InvalidParameterException", "placementConstraints[0].expression")]
    public void Bad_input_is_refused_in_ECS_words_and_changes_nothing(string json, string error, string field)
    {
        var before = _state;
        var thrown = Assert.Throws<EcsException>(() => Create(json));
        Assert.Equal((error, field), (thrown.ErrorType, thrown.Field));
        Assert.Same(before, _state);
    }

    [Fact]
    public void Services_are_tagged_and_propagate_their_tags_to_their_tasks()
    {
        var arn = Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 1, "propagateTags": "SERVICE", "tags": [{ "key": "team", "value": "a" }] }""").Service.ServiceArn;
        Do((s, _) => Tagging.TagCommands.Tag(s, new TagResourceRequest { ResourceArn = arn, Tags = { new Tag { Key = "site", Value = "shed" } } }));
        Assert.Equal(["team", "site"], Tagging.TagCommands.List(_state, new ListTagsForResourceRequest { ResourceArn = arn }).Tags.Select(t => t.Key));
        var task = Assert.Single(Pass());
        Assert.Equal(["team", "site"], task.Task.Tags.Select(t => t.Key));
    }

    [Fact]
    public void A_duplicate_name_an_unknown_service_and_an_inactive_one_are_refused()
    {
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 0 }""");
        var duplicate = Assert.Throws<EcsException>(() => Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 1 }"""));
        Assert.Equal((EcsErrorType.InvalidParameterException, "Creation of service was not idempotent."), (duplicate.ErrorType, duplicate.Message[(duplicate.Message.IndexOf(' ') + 1)..]));
        var missing = Assert.Throws<EcsException>(() => ServiceCommands.Update(_state, new UpdateServiceRequest { Service = "nope", DesiredCount = 1 }, Now, _random));
        Assert.Equal(EcsErrorType.ServiceNotFoundException, missing.ErrorType);
        Do((s, _) => ServiceCommands.Delete(s, new DeleteServiceRequest { Service = "web" }));
        Settle();
        var inactive = Assert.Throws<EcsException>(() => ServiceCommands.Update(_state, new UpdateServiceRequest { Service = "web", DesiredCount = 1 }, Now, _random));
        Assert.Equal(EcsErrorType.ServiceNotActiveException, inactive.ErrorType);
        var described = ServiceCommands.Describe(_state, new DescribeServicesRequest { Services = { "web", "nope" } });
        Assert.Equal("INACTIVE", Assert.Single(described.Services).Status);
        Assert.Equal(("nope", "MISSING"), (described.Failures[0].Arn, described.Failures[0].Reason));
    }

    /// <summary>
    /// Random histories of crashes, lost and returning instances, drains, deployments and scaling: no
    /// task is ever placed on a DRAINING or disconnected instance, a pass never goes above maximumPercent
    /// nor (while the count is not being lowered) below minimumHealthyPercent, and once the world is
    /// calm again the service runs exactly its desired count of the newest revision.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(10)]
    [InlineData(11)]
    [InlineData(12)]
    public void Random_histories_converge_within_the_bounds(int seed)
    {
        var random = new Random(seed);
        Join("i4");
        Create("""{ "serviceName": "web", "taskDefinition": "web", "desiredCount": 3, "deploymentConfiguration": { "minimumHealthyPercent": 50, "maximumPercent": 200 } }""");
        Settle();
        var revision = 1;
        for (var step = 0; step < 25; step++)
        {
            var desired = Service().Service.DesiredCount;
            var lowering = false;
            switch (random.Next(6))
            {
                case 0 when Live().Count > 0:
                    Report(Live()[random.Next(Live().Count)], TaskStatus.Stopped, "EssentialContainerExited");
                    break;
                case 1:
                    var gone = Arn($"i{random.Next(1, 5)}");
                    if (_state.IsConnected(gone) && _state.Connections.Values.Count(c => c.Connected) > 2)
                    {
                        Do((s, c) => ContainerInstanceCommands.Disconnected(s, gone, c));
                        _seconds += random.Next(2) == 0 ? 3 : 11; // sometimes back within the grace
                    }

                    break;
                case 2:
                    foreach (var back in _state.Connections.Where(c => !c.Value.Connected).Select(c => c.Key).ToList())
                    {
                        Do((s, c) => ContainerInstanceCommands.Reconnected(s, back, c));
                    }

                    break;
                case 3:
                    var status = random.Next(2) == 0 ? "DRAINING" : "ACTIVE";
                    Do((s, c) => ContainerInstanceCommands.UpdateState(s, new UpdateContainerInstancesStateRequest { ContainerInstances = { Arn($"i{random.Next(1, 5)}") }, Status = status }, c));
                    break;
                case 4:
                    Register(Simple("web", memory: 64 + random.Next(64)));
                    revision++;
                    Do((s, c) => ServiceCommands.Update(s, new UpdateServiceRequest { Service = "web", TaskDefinition = $"web:{revision}" }, c, _random));
                    break;
                default:
                    var count = random.Next(0, 6);
                    lowering = count < desired;
                    Do((s, c) => ServiceCommands.Update(s, new UpdateServiceRequest { Service = "web", DesiredCount = count }, c, _random));
                    break;
            }

            Settle((before, after) => CheckPass(before, after, lowering));
        }

        // Calm: every instance back and ACTIVE.
        foreach (var id in new[] { "i1", "i2", "i3", "i4" })
        {
            Do((s, c) => ContainerInstanceCommands.Reconnected(s, Arn(id), c));
            Do((s, c) => ContainerInstanceCommands.UpdateState(s, new UpdateContainerInstancesStateRequest { ContainerInstances = { Arn(id) }, Status = "ACTIVE" }, c));
        }

        Settle((before, after) => CheckPass(before, after, lowering: false));
        var service = Service().Service;
        Assert.Equal(service.DesiredCount, Alive().Count);
        Assert.All(Alive(), t => Assert.Equal((TaskStatus.Running, service.Deployments[0].Id), (t.Task.LastStatus, t.Task.StartedBy)));
        Assert.Equal("COMPLETED", service.Deployments[0].RolloutState);
    }

    private void CheckPass(CoordinatorState before, CoordinatorState after, bool lowering)
    {
        // The indexes kept as tasks change agree with adding everything up again.
        foreach (var instance in after.ContainerInstances.Keys)
        {
            var active = after.ActiveTasks(containerInstanceArn: instance).ToList();
            var usage = after.UsageOf(instance);
            Assert.Equal((active.Count, active.Sum(t => TaskNeeds.Of(t.TaskDefinition).Memory)), (usage.Tasks, usage.Memory));
            Assert.Equal(active.GroupBy(t => t.Task.Group).ToDictionary(g => g.Key, g => g.Count()), usage.Groups.ToDictionary());
        }

        Assert.Equal(after.Tasks.Values.Where(t => t.Task.Group == "service:web").Select(t => t.Task.TaskArn).Order(),
            after.ServiceTasks("default", "web").Select(t => t.Task.TaskArn).Order());

        // Loading the same records in bulk (a restart) gives the same state and indexes.
        var loaded = CoordinatorState.Load(after.Tasks.Values.Select(t => (StateChange)new TaskPut(t)));
        Assert.Equal(after.Tasks.Keys, loaded.Tasks.Keys);
        Assert.Equal(after.TasksByInstance.ToDictionary(i => i.Key, i => i.Value.Order().ToList()), loaded.TasksByInstance.ToDictionary(i => i.Key, i => i.Value.Order().ToList()));
        Assert.Equal(after.Usage.ToDictionary(u => u.Key, u => (u.Value.Tasks, u.Value.Cpu, u.Value.Memory)), loaded.Usage.ToDictionary(u => u.Key, u => (u.Value.Tasks, u.Value.Cpu, u.Value.Memory)));
        Assert.Equal(after.ServiceTasks("default", "web").Select(t => t.Task.TaskArn).Order(), loaded.ServiceTasks("default", "web").Select(t => t.Task.TaskArn).Order());

        var service = after.Services[CoordinatorState.ServiceKey("default", "web")].Service;
        var desired = service.DesiredCount;
        var placed = after.Tasks.Values.Where(t => !before.Tasks.ContainsKey(t.Task.TaskArn)).ToList();
        foreach (var task in placed)
        {
            Assert.True(after.IsConnected(task.Task.ContainerInstanceArn), "placed on a disconnected instance");
            Assert.Equal(ContainerInstanceStatus.Active, after.ContainerInstances[task.Task.ContainerInstanceArn].ContainerInstance.Status);
        }

        bool Reachable(StoredTask t) => after.IsConnected(t.Task.ContainerInstanceArn) || before.IsConnected(t.Task.ContainerInstanceArn)
            || (after.Connections.TryGetValue(t.Task.ContainerInstanceArn, out var c) && Now.Now - c.Since < Grace);
        if (placed.Count > 0)
        {
            var alive = after.Tasks.Values.Count(t => t.Task.LastStatus != TaskStatus.Stopped && Reachable(t));
            Assert.True(alive <= desired * 2, $"{alive} tasks alive, above 200% of {desired}");
        }

        int Serving(CoordinatorState s) => s.Tasks.Values.Count(t => t.Task.DesiredStatus == TaskStatus.Running && t.Task.LastStatus == TaskStatus.Running && Reachable(t));
        if (!lowering)
        {
            var minimum = (desired * 50 + 99) / 100;
            Assert.True(Serving(after) >= Math.Min(minimum, Serving(before)), $"serving {Serving(before)} -> {Serving(after)}, minimum {minimum}");
        }
    }
}
