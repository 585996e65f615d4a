using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;
using static EcsLite.Coordinator.Core.Tests.Fixtures;

namespace EcsLite.Coordinator.Core.Tests;

public class TaskCommandsTests
{
    private int _ids;

    private string NewId() => $"{++_ids:D32}";

    /// <summary>The default cluster, two connected instances of 1024 CPU / 1024 MiB, and the family "web" (256 MiB).</summary>
    private static CoordinatorState Cluster()
    {
        var state = Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context())).State;
        foreach (var id in new[] { "aaaa", "bbbb" })
        {
            state = Run(state, s => ContainerInstanceCommands.Join(s, ContainerInstanceCommandsTests.Hello(cpu: 1024, memory: 1024, hostname: id), Context(), id)).State;
        }

        return Run(state, s => TaskDefinitionCommands.Register(s, Simple("web", memory: 256), Context())).State;
    }

    private (CoordinatorState State, RunTaskResponse Response) RunTask(CoordinatorState state, RunTaskRequest request) =>
        Run(state, s => TaskCommands.Run(s, request, Context(), new Random(1), NewId));

    [Fact]
    public void RunTask_places_PROVISIONING_tasks_and_repeated_calls_never_overcommit()
    {
        var state = Cluster();
        var placed = new List<Api.V1.Task>();
        var failures = new List<Failure>();
        for (var call = 0; call < 5; call++)
        {
            var (next, response) = RunTask(state, new RunTaskRequest { TaskDefinition = "web", Count = 3, StartedBy = "me" });
            state = next;
            placed.AddRange(response.Tasks);
            failures.AddRange(response.Failures);
        }

        // 1024 MiB per instance, 256 per task: 8 fit, the other 7 fail for memory.
        Assert.Equal(8, placed.Count);
        Assert.Equal(7, failures.Count);
        Assert.All(failures, f => Assert.Equal("RESOURCE:MEMORY", f.Reason));
        Assert.All(placed, t => Assert.Equal(("PROVISIONING", "RUNNING", "family:web", "me"), (t.LastStatus, t.DesiredStatus, t.Group, t.StartedBy)));
        Assert.Equal([4, 4], placed.GroupBy(t => t.ContainerInstanceArn).Select(g => g.Count()));
        Assert.Equal(8, state.Tasks.Count);
        Assert.Equal(placed.GroupBy(t => t.ContainerInstanceArn).ToDictionary(g => g.Key, g => g.Count()),
            state.TasksByInstance.ToDictionary(i => i.Key, i => i.Value.Count)); // the per-instance index agrees
    }

    [Fact]
    public void Candidates_are_made_again_only_for_instances_whose_usage_changed_and_are_never_changed_by_a_placement()
    {
        var state = Cluster();
        var before = TaskCommands.Candidates(state, "default");
        Assert.Equal(before, TaskCommands.Candidates(state, "default")); // the same objects, not rebuilt

        var (next, response) = RunTask(state, new RunTaskRequest { TaskDefinition = "web", Count = 2, PlacementStrategy = { new PlacementStrategy { Type = "binpack", Field = "memory" } } });
        var used = response.Tasks[0].ContainerInstanceArn;
        Assert.Equal(1024, before.Single(c => c.Arn == used).MemoryLeft); // the plan took from copies
        var after = TaskCommands.Candidates(next, "default");
        Assert.Equal(512, after.Single(c => c.Arn == used).MemoryLeft);
        Assert.Same(before.Single(c => c.Arn != used), after.Single(c => c.Arn != used)); // the untouched instance is reused
    }

    [Fact]
    public void A_candidate_that_took_new_tasks_is_the_one_the_state_with_them_makes_and_is_remembered_for_it()
    {
        var state = Cluster();
        state = Run(state, s => TaskDefinitionCommands.Register(s, Parse("""
            { "family": "api", "networkMode": "host",
              "containerDefinitions": [{ "name": "app", "image": "busybox", "cpu": 128, "memory": 128, "portMappings": [{ "containerPort": 8080 }, { "containerPort": 53, "protocol": "udp" }] }] }
            """), Context())).State;
        var before = TaskCommands.Candidates(state, "default");
        var changes = new List<StateChange>();
        foreach (var request in new[]
        {
            new RunTaskRequest { TaskDefinition = "api", Count = 2, Group = "edge" },
            new RunTaskRequest { TaskDefinition = "web", Count = 3 },
        })
        {
            var run = TaskCommands.Run(state.Apply(changes), request, Context(), new Random(1), NewId);
            Assert.Empty(run.Result.Failures);
            changes.AddRange(run.Changes);
        }

        var after = state.Apply(changes);
        foreach (var placed in changes.OfType<TaskPut>().Select(p => p.Task).GroupBy(t => t.Task.ContainerInstanceArn))
        {
            var took = TaskCommands.Took(after, before.Single(c => c.Arn == placed.Key), placed);
            var made = TaskCommands.NewCandidate(after, after.ContainerInstances[placed.Key], after.UsageOf(placed.Key), after.IsConnected(placed.Key));
            Assert.Equal(Shape(made), Shape(took));
            Assert.Contains(8080, took.TcpUsed);
            Assert.Contains("edge", took.Facts.TaskGroups);
            Assert.Same(took, TaskCommands.Candidate(after, after.ContainerInstances[placed.Key])); // not made again for that state
            Assert.NotSame(took, before.Single(c => c.Arn == placed.Key)); // the earlier candidate is left as it was
        }
    }

    private static string Shape(Candidate c) =>
        $"{c.Eligible} cpu {c.CpuLeft} memory {c.MemoryLeft} tcp {string.Join(",", c.TcpUsed.Order())} udp {string.Join(",", c.UdpUsed.Order())} " +
        $"groups {string.Join(",", c.Groups.OrderBy(g => g.Key, StringComparer.Ordinal))} tasks {c.Facts.RunningTasksCount} task groups {string.Join(",", c.Facts.TaskGroups.Order(StringComparer.Ordinal))}";

    [Fact]
    public void Overrides_change_what_the_agent_runs_and_unknown_containers_are_refused()
    {
        var state = Cluster();
        var overrides = new TaskOverride { ContainerOverrides = { new ContainerOverride { Name = "app", Command = { "echo", "hi" }, Memory = 128, Environment = { new Api.V1.KeyValuePair { Name = "MODE", Value = "test" } } } } };
        var (next, response) = RunTask(state, new RunTaskRequest { TaskDefinition = "web", Overrides = overrides });
        var stored = next.Tasks[response.Tasks[0].TaskArn];
        Assert.Equal(["echo", "hi"], stored.TaskDefinition.ContainerDefinitions[0].Command);
        Assert.Equal(128, stored.TaskDefinition.ContainerDefinitions[0].Memory);
        Assert.Equal("test", stored.TaskDefinition.ContainerDefinitions[0].Environment.Single(e => e.Name == "MODE").Value);
        Assert.Equal(overrides, stored.Task.Overrides);
        Assert.Equal(256, state.Families["web"].LatestActive!.TaskDefinition.ContainerDefinitions[0].Memory); // the registered revision is untouched

        var error = Assert.Throws<EcsException>(() => TaskCommands.Run(state,
            new RunTaskRequest { TaskDefinition = "web", Overrides = new TaskOverride { ContainerOverrides = { new ContainerOverride { Name = "nope" } } } }, Context(), new Random(1), NewId));
        Assert.Equal("overrides.containerOverrides[0].name", error.Field);
    }

    [Theory]
    [InlineData("""{ "cluster": "nowhere", "taskDefinition": "web" }""", "ClusterNotFoundException", "cluster")]
    [InlineData("""{ "taskDefinition": "absent" }""", "ClientException", "taskDefinition")]
    [InlineData("""{ }""", "InvalidParameterException", "taskDefinition")]
    [InlineData("""{ "taskDefinition": "web", "count": 0 }""", "InvalidParameterException", "count")]
    [InlineData("""{ "taskDefinition": "web", "count": 11 }""", "InvalidParameterException", "count")]
    [InlineData("""{ "taskDefinition": "web", "launchType": "FARGATE" }""", "ClientException", "launchType")]
    [InlineData("""{ "taskDefinition": "web", "launchType": "MOON" }""", "InvalidParameterException", "launchType")]
    [InlineData("""{ "taskDefinition": "web", "placementConstraints": [{ "type": "memberOf", "expression": "attribute:x ==" }] }""", "InvalidParameterException", "placementConstraints[0].expression")]
    [InlineData("""{ "taskDefinition": "web", "placementStrategy": [{ "type": "binpack", "field": "disk" }] }""", "InvalidParameterException", "placementStrategy[0].field")]
    [InlineData("""{ "taskDefinition": "web", "overrides": { "memory": "lots" } }""", "InvalidParameterException", "overrides.memory")]
    public void Bad_RunTask_calls_are_refused_as_ECS_refuses_them_and_change_nothing(string json, string type, string field)
    {
        var state = Cluster();
        var request = Google.Protobuf.JsonParser.Default.Parse<RunTaskRequest>(json);
        var error = Assert.Throws<EcsException>(() => TaskCommands.Run(state, request, Context(), new Random(1), NewId));
        Assert.Equal((type, field), (error.ErrorType, error.Field));
        Assert.Empty(state.Tasks);
    }

    [Fact]
    public void An_inactive_revision_cannot_run_and_an_empty_cluster_says_so()
    {
        var state = Run(Cluster(), s => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = "web:1" }, Context())).State;
        Assert.Contains("inactive", Assert.Throws<EcsException>(() => TaskCommands.Run(state, new RunTaskRequest { TaskDefinition = "web:1" }, Context(), new Random(1), NewId)).Message, StringComparison.Ordinal);

        var empty = Run(Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context())).State,
            s => TaskDefinitionCommands.Register(s, Simple("web"), Context())).State;
        Assert.Contains("No Container Instances were found in your cluster.", Assert.Throws<EcsException>(() => TaskCommands.Run(empty, new RunTaskRequest { TaskDefinition = "web" }, Context(), new Random(1), NewId)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reports_of_many_instances_go_as_one_command_each_instance_speaking_only_for_its_own_tasks()
    {
        var (state, response) = RunTask(Cluster(), new RunTaskRequest { TaskDefinition = "web", Count = 4 });
        var byInstance = response.Tasks.GroupBy(t => t.ContainerInstanceArn).ToDictionary(g => g.Key, g => g.Select(t => t.TaskArn).ToList());
        Assert.Equal(2, byInstance.Count);
        var (a, b) = (byInstance.Keys.First(), byInstance.Keys.Last());
        TaskStateChange Report(string arn, string status) => new() { TaskArn = arn, LastStatus = status, DesiredStatus = "RUNNING" };

        var (next, changed) = Run(state, s => TaskCommands.ReportMany(s,
        [
            (a, [Report(byInstance[a][0], "PENDING"), Report(byInstance[a][0], "RUNNING"), Report(byInstance[a][1], "RUNNING")]),
            (b, [Report(byInstance[b][0], "RUNNING"), Report(byInstance[a][1], "STOPPED")]), // not b's task: ignored
        ], Context()));

        Assert.Equal(3, changed); // each task changed is written once, as its last report left it
        Assert.Equal(["RUNNING", "RUNNING"], byInstance[a].Select(arn => next.Tasks[arn].Task.LastStatus));
        Assert.Equal(["RUNNING", "PROVISIONING"], byInstance[b].Select(arn => next.Tasks[arn].Task.LastStatus));
    }

    [Fact]
    public void Reports_move_the_task_forward_only_and_StopTask_says_who_stopped_it()
    {
        var (state, response) = RunTask(Cluster(), new RunTaskRequest { TaskDefinition = "web" });
        var task = response.Tasks[0];
        TaskStateChange Report(string status, string container) => new()
        {
            TaskArn = task.TaskArn, LastStatus = status, DesiredStatus = "RUNNING", StartedAt = Timestamp.FromDateTimeOffset(Now),
            Containers = { new ContainerStateChange { ContainerName = "app", LastStatus = container, RuntimeId = "c0ffee", HealthStatus = "UNKNOWN",
                NetworkBindings = { new AgentNetworkBinding { BindIP = "0.0.0.0", ContainerPort = 80, HostPort = 32768, Protocol = "tcp" } } } },
        };

        state = Run(state, s => TaskCommands.Report(s, task.ContainerInstanceArn, Report("RUNNING", "RUNNING"), Context())).State;
        var running = state.Tasks[task.TaskArn].Task;
        Assert.Equal(("RUNNING", "RUNNING", "c0ffee"), (running.LastStatus, running.Containers[0].LastStatus, running.Containers[0].RuntimeId));
        Assert.Equal(32768, running.Containers[0].NetworkBindings[0].HostPort);

        // An older report (PENDING) and one from another instance change nothing.
        Assert.Empty(TaskCommands.Report(state, task.ContainerInstanceArn, Report("PENDING", "PENDING"), Context()).Changes);
        Assert.Empty(TaskCommands.Report(state, "arn:aws:ecs:local:000000000000:container-instance/default/other", Report("STOPPED", "STOPPED"), Context()).Changes);

        state = Run(state, s => TaskCommands.Stop(s, new StopTaskRequest { Task = task.TaskArn.Split('/')[^1], Reason = "enough" }, Context(5))).State;
        var stopping = state.Tasks[task.TaskArn].Task;
        Assert.Equal(("STOPPED", "UserInitiated", "enough", "RUNNING"), (stopping.DesiredStatus, stopping.StopCode, stopping.StoppedReason, stopping.LastStatus));
        Assert.Equal("STOPPED", TaskCommands.Desired(state.Tasks[task.TaskArn]).DesiredStatus);

        var stoppedReport = Report("STOPPED", "STOPPED");
        stoppedReport.StoppedAt = Timestamp.FromDateTimeOffset(Now.AddSeconds(6));
        state = Run(state, s => TaskCommands.Report(s, task.ContainerInstanceArn, stoppedReport, Context(6))).State;
        Assert.Empty(TaskCommands.DesiredFor(state, task.ContainerInstanceArn));
        Assert.Equal([task.TaskArn], TaskCommands.List(state, new ListTasksRequest { DesiredStatus = "STOPPED" }, new ArnFormat()).TaskArns);
        Assert.Empty(TaskCommands.List(state, new ListTasksRequest(), new ArnFormat()).TaskArns);

        // Purged only after the retention; then gone from describe.
        Assert.Empty(TaskCommands.Purge(state, Context(60), TimeSpan.FromHours(1)).Changes);
        state = Run(state, s => TaskCommands.Purge(s, Context(3607), TimeSpan.FromHours(1))).State;
        Assert.Equal("MISSING", TaskCommands.Describe(state, new DescribeTasksRequest { Tasks = { task.TaskArn } }, new ArnFormat()).Failures.Single().Reason);
        Assert.Empty(state.TasksByInstance);
    }

    [Fact]
    public void StartTask_uses_the_named_instances_and_ListTasks_filters()
    {
        var state = Cluster();
        var instances = ContainerInstanceCommands.InCluster(state, "default").Select(i => i.ContainerInstance.ContainerInstanceArn).ToList();
        var (next, started) = Run(state, s => TaskCommands.Start(s, new StartTaskRequest { TaskDefinition = "web", ContainerInstances = { "aaaa" }, StartedBy = "scheduler" }, Context(), NewId));
        Assert.Equal(instances[0], Assert.Single(started.Tasks).ContainerInstanceArn);
        Assert.Single(TaskCommands.List(next, new ListTasksRequest { ContainerInstance = "aaaa" }, new ArnFormat()).TaskArns);
        Assert.Empty(TaskCommands.List(next, new ListTasksRequest { ContainerInstance = "bbbb" }, new ArnFormat()).TaskArns);
        Assert.Single(TaskCommands.List(next, new ListTasksRequest { Family = "web", StartedBy = "scheduler" }, new ArnFormat()).TaskArns);
        Assert.Empty(TaskCommands.List(next, new ListTasksRequest { Family = "db" }, new ArnFormat()).TaskArns);

        var error = Assert.Throws<EcsException>(() => TaskCommands.Start(state, new StartTaskRequest { TaskDefinition = "web", ContainerInstances = { "arn:aws:ecs:local:000000000000:container-instance/other/aaaa" } }, Context(), NewId));
        Assert.Equal("containerInstances[0]", error.Field);
    }

    [Fact]
    public void Instances_and_clusters_show_their_tasks_counts_and_what_is_left()
    {
        var (state, response) = RunTask(Cluster(), new RunTaskRequest { TaskDefinition = "web", Count = 2, PlacementStrategy = { new PlacementStrategy { Type = "binpack", Field = "memory" } } });
        var instance = ContainerInstanceCommands.InCluster(state, "default").Single(i => i.ContainerInstance.ContainerInstanceArn == response.Tasks[0].ContainerInstanceArn);
        var view = ContainerInstanceCommands.View(state, instance, includeTags: false);
        Assert.Equal((0, 2), (view.RunningTasksCount, view.PendingTasksCount));
        Assert.Equal(1024 - 512, view.RemainingResources.Single(r => r.Name == "MEMORY").IntegerValue);
        Assert.Equal(1024, view.RegisteredResources.Single(r => r.Name == "MEMORY").IntegerValue);
        var cluster = ClusterCommands.Describe(state, new DescribeClustersRequest(), new ArnFormat()).Clusters.Single();
        Assert.Equal((0, 2), (cluster.RunningTasksCount, cluster.PendingTasksCount));

        // As ECS counts them: RUNNING is running; a task on its way out (DEPROVISIONING) is neither.
        TaskStateChange Report(EcsLite.Api.V1.Task task, string status, string desired) => new()
        {
            TaskArn = task.TaskArn, LastStatus = status, DesiredStatus = desired,
            Containers = { new ContainerStateChange { ContainerName = "app", LastStatus = status == "RUNNING" ? "RUNNING" : "STOPPED", HealthStatus = "UNKNOWN" } },
        };
        state = Run(state, s => TaskCommands.Report(s, instance.ContainerInstance.ContainerInstanceArn, Report(response.Tasks[0], "RUNNING", "RUNNING"), Context())).State;
        state = Run(state, s => TaskCommands.Report(s, instance.ContainerInstance.ContainerInstanceArn, Report(response.Tasks[1], "DEPROVISIONING", "STOPPED"), Context())).State;
        view = ContainerInstanceCommands.View(state, ContainerInstanceCommands.InCluster(state, "default").Single(i => i.ContainerInstance.ContainerInstanceArn == instance.ContainerInstance.ContainerInstanceArn), includeTags: false);
        Assert.Equal((1, 0), (view.RunningTasksCount, view.PendingTasksCount));
    }

    [Fact]
    public void Tasks_are_tagged_at_RunTask_and_with_TagResource()
    {
        var (state, response) = RunTask(Cluster(), new RunTaskRequest { TaskDefinition = "web", Tags = { new Tag { Key = "team", Value = "a" } } });
        var arn = response.Tasks[0].TaskArn;
        state = Run(state, s => Tagging.TagCommands.Tag(s, new TagResourceRequest { ResourceArn = arn, Tags = { new Tag { Key = "env", Value = "lab" } } })).State;
        var tags = Tagging.TagCommands.List(state, new ListTagsForResourceRequest { ResourceArn = arn }).Tags;
        Assert.Equal(["env=lab", "team=a"], tags.Select(t => $"{t.Key}={t.Value}").Order());
        Assert.Empty(TaskCommands.Describe(state, new DescribeTasksRequest { Tasks = { arn } }, new ArnFormat()).Tasks[0].Tags);
        Assert.Equal(2, TaskCommands.Describe(state, new DescribeTasksRequest { Tasks = { arn }, Include = { "TAGS" } }, new ArnFormat()).Tasks[0].Tags.Count);
        Assert.Equal(EcsErrorType.ResourceNotFoundException, Assert.Throws<EcsException>(() =>
            Tagging.TagCommands.List(state, new ListTagsForResourceRequest { ResourceArn = arn + "0" })).ErrorType);
    }

    [Fact]
    public void Deregistering_an_instance_by_force_stops_its_tasks_in_the_state()
    {
        var (state, response) = RunTask(Cluster(), new RunTaskRequest { TaskDefinition = "web", Count = 2, PlacementStrategy = { new PlacementStrategy { Type = "binpack", Field = "memory" } } });
        var instance = response.Tasks[0].ContainerInstanceArn;
        Assert.Throws<EcsException>(() => ContainerInstanceCommands.Deregister(state, new DeregisterContainerInstanceRequest { ContainerInstance = instance }, Context()));
        state = Run(state, s => ContainerInstanceCommands.Deregister(s, new DeregisterContainerInstanceRequest { ContainerInstance = instance, Force = true }, Context(9))).State;
        Assert.All(response.Tasks, t => Assert.Equal(("STOPPED", "STOPPED", "Container instance deregistration forced by user"),
            (state.Tasks[t.TaskArn].Task.LastStatus, state.Tasks[t.TaskArn].Task.DesiredStatus, state.Tasks[t.TaskArn].Task.StoppedReason)));
        Assert.Empty(TaskCommands.List(state, new ListTasksRequest(), new ArnFormat()).TaskArns);
    }

    [Fact]
    public void A_RunTask_retried_with_its_clientToken_places_nothing_more()
    {
        var (state, first) = RunTask(Cluster(), new RunTaskRequest { TaskDefinition = "web", Count = 2, ClientToken = "retry-me-1" });
        var (again, second) = RunTask(state, new RunTaskRequest { TaskDefinition = "web", Count = 2, ClientToken = "retry-me-1" });
        Assert.Equal(first.Tasks.Select(t => t.TaskArn).Order(), second.Tasks.Select(t => t.TaskArn).Order());
        Assert.Equal(2, again.Tasks.Count);
        Assert.Equal(4, RunTask(again, new RunTaskRequest { TaskDefinition = "web", Count = 2, ClientToken = "another" }).State.Tasks.Count);
        Assert.Equal("clientToken", Assert.Throws<EcsException>(() => TaskCommands.Run(state, new RunTaskRequest { TaskDefinition = "web", ClientToken = new string('x', 37) }, Context(), new Random(1), NewId)).Field);
    }

    [Fact]
    public void Tasks_run_the_registered_definition_itself_unless_overridden_and_a_load_finds_it_by_the_task_definition_ARN()
    {
        var state = Cluster();
        (state, var plain) = RunTask(state, new RunTaskRequest { TaskDefinition = "web", Count = 2, Overrides = new TaskOverride() });
        (state, var overridden) = RunTask(state, new RunTaskRequest
        {
            TaskDefinition = "web",
            Overrides = new TaskOverride { ContainerOverrides = { new ContainerOverride { Name = "app", Command = { "echo", "hi" } } } },
        });
        var registered = state.Families["web"].Revisions[1].TaskDefinition;
        var plainTasks = plain.Tasks.Select(t => state.Tasks[t.TaskArn]).ToList();
        var overriddenTask = state.Tasks[overridden.Tasks[0].TaskArn];
        Assert.All(plainTasks, t => Assert.Same(registered, t.TaskDefinition));
        Assert.All(plainTasks, t => Assert.True(state.RunsRegistered(t)));
        Assert.False(state.RunsRegistered(overriddenTask));
        Assert.Equal(["echo", "hi"], overriddenTask.TaskDefinition.ContainerDefinitions[0].Command);

        // Loaded from records as the store keeps them: plain tasks without their definition, and (as
        // stores written before that held) one with an equal copy; all run the registered object again.
        var others = new List<StateChange> { new ClusterPut(state.Clusters["default"]), new TaskDefinitionPut(state.Families["web"].Revisions[1]) };
        var records = plainTasks.Select(t => new StoredTask { Task = t.Task, Cluster = t.Cluster }).ToList();
        records[1].TaskDefinition = registered.Clone();
        records.Add(overriddenTask);
        var loaded = CoordinatorState.Load([.. others, .. records.Select(r => new TaskPut(r))]);
        Assert.All(plainTasks, t => Assert.Same(loaded.Families["web"].Revisions[1].TaskDefinition, loaded.Tasks[t.Task.TaskArn].TaskDefinition));
        Assert.Equal(overriddenTask.TaskDefinition, loaded.Tasks[overriddenTask.Task.TaskArn].TaskDefinition);
        Assert.Equal(state.Usage.Values.Sum(u => u.Memory), loaded.Usage.Values.Sum(u => u.Memory));

        // A record naming a revision the store no longer has is reported, not run with nothing.
        var error = Assert.Throws<InvalidDataException>(() => CoordinatorState.Load([new ClusterPut(state.Clusters["default"]), new TaskPut(records[0])]));
        Assert.Contains(plainTasks[0].Task.TaskDefinitionArn, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deleting_a_revision_writes_its_tasks_again_so_that_their_records_hold_their_copy_of_it()
    {
        var state = Cluster();
        (state, var run) = RunTask(state, new RunTaskRequest { TaskDefinition = "web", Count = 2 });
        var arn = state.Families["web"].Revisions[1].TaskDefinition.TaskDefinitionArn;
        state = Run(state, s => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = arn }, Context())).State;
        var mutation = TaskDefinitionCommands.Delete(state, new DeleteTaskDefinitionsRequest { TaskDefinitions = { arn, "web:1" } }, Context());
        Assert.Single(mutation.Result.TaskDefinitions);                                      // asked twice, deleted once
        Assert.Equal(run.Tasks.Select(t => t.TaskArn).Order(), mutation.Changes.OfType<TaskPut>().Select(p => p.Task.Task.TaskArn).Order());
        var after = state.Apply(mutation.Changes);
        Assert.All(after.Tasks.Values, t => Assert.False(after.RunsRegistered(t)));
        Assert.All(after.Tasks.Values, t => Assert.Equal("web", t.TaskDefinition.Family));
    }
}
