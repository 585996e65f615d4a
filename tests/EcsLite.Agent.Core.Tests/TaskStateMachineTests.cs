using EcsLite.Agent.Core.Tasks;
using static EcsLite.Agent.Core.Tasks.ContainerStatus;

namespace EcsLite.Agent.Core.Tests;

public class TaskStateMachineTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static ContainerState C(string name, ContainerStatus known, bool essential = true, params Dependency[] dependsOn) =>
        new(name, essential, known, dependsOn);

    private static TaskState Task(params ContainerState[] containers) => new("arn:task", DesiredStatus.Running, containers);

    private static Dependency On(string name, DependencyCondition condition) => new(name, condition);

    [Fact]
    public void A_new_task_pulls_every_image_then_creates_every_container()
    {
        Assert.Equal([new TaskAction.Pull("a"), new TaskAction.Pull("b")], TaskStateMachine.Next(Task(C("a", None), C("b", None)), Now));
        Assert.Equal([new TaskAction.Create("a"), new TaskAction.Pull("b")], TaskStateMachine.Next(Task(C("a", Pulled), C("b", None)), Now));
        Assert.Equal([new TaskAction.Start("a"), new TaskAction.Start("b")], TaskStateMachine.Next(Task(C("a", Created), C("b", Created)), Now));
    }

    [Theory]
    [InlineData(DependencyCondition.Start, Created, null, HealthStatus.Unknown, false)]
    [InlineData(DependencyCondition.Start, Running, null, HealthStatus.Unknown, true)]
    [InlineData(DependencyCondition.Complete, Running, null, HealthStatus.Unknown, false)]
    [InlineData(DependencyCondition.Complete, Stopped, 3, HealthStatus.Unknown, true)]
    [InlineData(DependencyCondition.Success, Stopped, 0, HealthStatus.Unknown, true)]
    [InlineData(DependencyCondition.Success, Running, null, HealthStatus.Unknown, false)]
    [InlineData(DependencyCondition.Healthy, Running, null, HealthStatus.Unknown, false)]
    [InlineData(DependencyCondition.Healthy, Running, null, HealthStatus.Unhealthy, false)]
    [InlineData(DependencyCondition.Healthy, Running, null, HealthStatus.Healthy, true)]
    public void A_container_starts_only_once_its_dependency_conditions_hold(
        DependencyCondition condition, ContainerStatus dependency, int? exitCode, HealthStatus health, bool starts)
    {
        var task = Task(new ContainerState("db", Essential: false, dependency, [], exitCode, health), C("app", Created, true, On("db", condition)));
        Assert.Equal(starts, TaskStateMachine.Next(task, Now).Contains(new TaskAction.Start("app")));
    }

    [Fact]
    public void A_dependency_that_can_never_hold_fails_the_task_to_start()
    {
        var failedMigration = Task(new ContainerState("migrate", false, Stopped, [], ExitCode: 1), C("app", Created, true, On("migrate", DependencyCondition.Success)));
        var stop = Assert.IsType<TaskAction.StopTask>(Assert.Single(TaskStateMachine.Next(failedMigration, Now)));
        Assert.Equal(TaskStateMachine.TaskFailedToStart, stop.StopCode);
        Assert.Contains("exited with 1", stop.Reason, StringComparison.Ordinal);

        var deadCache = Task(new ContainerState("cache", false, Stopped, [], ExitCode: 0), C("app", Created, true, On("cache", DependencyCondition.Healthy)));
        Assert.IsType<TaskAction.StopTask>(Assert.Single(TaskStateMachine.Next(deadCache, Now)));
    }

    [Fact]
    public void Waiting_longer_than_startTimeout_fails_the_task_to_start()
    {
        var waiting = new ContainerState("app", true, Created, [On("db", DependencyCondition.Healthy)], CreatedAt: Now.AddSeconds(-30), StartTimeout: TimeSpan.FromSeconds(20));
        var task = Task(new ContainerState("db", true, Running, [], Health: HealthStatus.Unknown), waiting);
        var stop = Assert.IsType<TaskAction.StopTask>(Assert.Single(TaskStateMachine.Next(task, Now)));
        Assert.Contains("startTimeout", stop.Reason, StringComparison.Ordinal);
        Assert.Empty(TaskStateMachine.Next(task, Now.AddSeconds(-15)));
    }

    [Fact]
    public void An_essential_exit_stops_the_task_and_a_non_essential_one_does_not()
    {
        var essential = Task(new ContainerState("web", true, Stopped, [], ExitCode: 137), C("sidecar", Running, false));
        Assert.Equal([new TaskAction.StopTask("EssentialContainerExited", "Essential container in task exited")], TaskStateMachine.Next(essential, Now));

        var sidecar = Task(C("web", Running), new ContainerState("sidecar", false, Stopped, [], ExitCode: 1));
        Assert.Empty(TaskStateMachine.Next(sidecar, Now));
        Assert.Equal("RUNNING", TaskStateMachine.LastStatus(sidecar));
    }

    [Fact]
    public void The_restart_policy_restarts_in_place_unless_the_code_is_ignored_or_the_run_was_too_short()
    {
        var policy = new RestartPolicy(true, new HashSet<int> { 0 }, TimeSpan.FromSeconds(60));
        ContainerState Exited(int code, int ranSeconds) => new("worker", true, Stopped, [], code, StartedAt: Now.AddSeconds(-ranSeconds), RestartPolicy: policy);

        Assert.Equal([new TaskAction.Restart("worker")], TaskStateMachine.Next(Task(Exited(1, 120)), Now));
        Assert.IsType<TaskAction.StopTask>(Assert.Single(TaskStateMachine.Next(Task(Exited(0, 120)), Now)));
        Assert.IsType<TaskAction.StopTask>(Assert.Single(TaskStateMachine.Next(Task(Exited(1, 30)), Now)));
    }

    [Fact]
    public void Stopping_stops_dependents_first_and_marks_never_created_containers_stopped()
    {
        var task = new TaskState("arn:task", DesiredStatus.Stopped,
        [
            C("db", Running),
            C("app", Running, true, On("db", DependencyCondition.Start)),
            C("late", Pulled, false, On("app", DependencyCondition.Start)),
            C("unsure", Created, false),
        ]);
        Assert.Equal([new TaskAction.Stop("app"), new TaskAction.MarkStopped("late"), new TaskAction.Stop("unsure")], TaskStateMachine.Next(task, Now));
        Assert.Equal("STOPPING", TaskStateMachine.LastStatus(task));

        var afterApp = task with { Containers = [C("db", Running), C("app", Stopped, true, On("db", DependencyCondition.Start)), C("late", Stopped, false), C("unsure", Stopped, false)] };
        Assert.Equal([new TaskAction.Stop("db")], TaskStateMachine.Next(afterApp, Now));
    }

    [Fact]
    public void VolumesFrom_sources_are_created_first_and_link_targets_are_running_first()
    {
        // The ECS agent's datavolume test: a data container, and another mounting its volumes.
        var data = C("data-volume-source", Pulled, essential: false);
        var user = C("user", Pulled) with { VolumesFrom = ["data-volume-source"] };
        Assert.Equal([new TaskAction.Create("data-volume-source")], TaskStateMachine.Next(Task(data, user), Now));
        Assert.Contains(new TaskAction.Create("user"), TaskStateMachine.Next(Task(data with { Known = Created }, user), Now));
        Assert.Contains(new TaskAction.Create("user"), TaskStateMachine.Next(Task(data with { Known = Stopped, ExitCode = 0 }, user), Now));

        var db = C("db", Created);
        var web = C("web", Pulled) with { Links = ["db"] };
        Assert.Equal([new TaskAction.Start("db")], TaskStateMachine.Next(Task(db, web), Now));
        Assert.Contains(new TaskAction.Create("web"), TaskStateMachine.Next(Task(db with { Known = Running }, web), Now));
        var stop = Assert.IsType<TaskAction.StopTask>(Assert.Single(TaskStateMachine.Next(Task(C("db", Stopped, essential: false), web), Now)));
        Assert.Equal(TaskStateMachine.TaskFailedToStart, stop.StopCode);
        Assert.Contains("links to 'db'", stop.Reason, StringComparison.Ordinal);

        // Stopping: the linker goes before what it links to.
        var stopping = new TaskState("t", DesiredStatus.Stopped, [C("db", Running), C("web", Running) with { Links = ["db"] }]);
        Assert.Equal([new TaskAction.Stop("web")], TaskStateMachine.Next(stopping, Now));
    }

    [Fact]
    public void An_awsvpc_task_sets_up_its_network_first_and_releases_it_last()
    {
        var task = Task(C("app", None), C("envoy", Pulled)) with { Network = NetworkStatus.None };
        Assert.Equal([new TaskAction.SetUpNetwork(), new TaskAction.Pull("app")], TaskStateMachine.Next(task, Now));
        Assert.Equal("PROVISIONING", TaskStateMachine.LastStatus(task));
        Assert.Contains(new TaskAction.Create("envoy"), TaskStateMachine.Next(task with { Network = NetworkStatus.Ready }, Now));

        var stopped = new TaskState("t", DesiredStatus.Stopped, [C("app", Stopped), C("envoy", Stopped)], NetworkStatus.Ready);
        Assert.Equal([new TaskAction.ReleaseNetwork()], TaskStateMachine.Next(stopped, Now));
        Assert.Equal("DEPROVISIONING", TaskStateMachine.LastStatus(stopped));
        Assert.Equal("STOPPED", TaskStateMachine.LastStatus(stopped with { Network = NetworkStatus.Released }));
        Assert.Empty(TaskStateMachine.Next(stopped with { Network = NetworkStatus.Released }, Now));
    }

    [Fact]
    public void A_lost_network_stops_what_still_runs_in_it_and_is_set_up_again_for_a_restart()
    {
        var running = Task(C("app", Running), C("envoy", Running), C("init", Stopped, essential: false)) with { Network = NetworkStatus.Lost };
        Assert.Equal([new TaskAction.Stop("app"), new TaskAction.Stop("envoy")], TaskStateMachine.Next(running, Now));
        var stop = Assert.IsType<TaskAction.StopTask>(Assert.Single(TaskStateMachine.Next(Task(new ContainerState("app", true, Stopped, [], 143)) with { Network = NetworkStatus.Lost }, Now)));
        Assert.Equal(TaskStateMachine.EssentialContainerExited, stop.StopCode);

        // The engine restarted: everything died with it; the policy restarts the container once the namespace is back.
        var policy = new RestartPolicy(true, new HashSet<int>(), TimeSpan.FromSeconds(60));
        var died = new ContainerState("app", true, Stopped, [], 143, StartedAt: Now.AddMinutes(-5), RestartPolicy: policy);
        Assert.Equal([new TaskAction.SetUpNetwork()], TaskStateMachine.Next(Task(died) with { Network = NetworkStatus.Lost }, Now));
        Assert.Equal([new TaskAction.Restart("app")], TaskStateMachine.Next(Task(died) with { Network = NetworkStatus.Ready }, Now));
        Assert.True(TaskStateMachine.AwaitingDecision(Task(died)));
    }

    [Fact]
    public void Desired_status_only_moves_forward()
    {
        Assert.Equal(DesiredStatus.Stopped, TaskStateMachine.Forward(DesiredStatus.Stopped, DesiredStatus.Running));
        Assert.Equal(DesiredStatus.Stopped, TaskStateMachine.Forward(DesiredStatus.Running, DesiredStatus.Stopped));
        Assert.Equal(DesiredStatus.Running, TaskStateMachine.Forward(DesiredStatus.Running, DesiredStatus.Running));
    }

    [Fact]
    public void Last_status_follows_the_containers()
    {
        Assert.Equal("PENDING", TaskStateMachine.LastStatus(Task(C("a", Running), C("b", Created))));
        Assert.Equal("RUNNING", TaskStateMachine.LastStatus(Task(C("a", Running), C("b", Running))));
        Assert.Equal("STOPPED", TaskStateMachine.LastStatus(Task(C("a", Stopped), C("b", Stopped))));
        Assert.Equal("DEPROVISIONING", TaskStateMachine.LastStatus(new TaskState("t", DesiredStatus.Stopped, [C("a", Stopped), C("b", Created)])));
    }

    /// <summary>
    /// Property, over many random tasks and random container behaviour: a start is never issued before
    /// its dependencies hold, nothing starts once the task is to stop, and both running and stopping
    /// converge (every container running, or every container stopped).
    /// </summary>
    [Fact]
    public void Random_tasks_respect_dependencies_and_converge()
    {
        var random = new Random(42);
        var conditions = Enum.GetValues<DependencyCondition>();
        for (var round = 0; round < 500; round++)
        {
            var count = random.Next(1, 6);
            var containers = new List<ContainerState>();
            for (var i = 0; i < count; i++)
            {
                // Depend only on earlier containers: no cycles, as registration guarantees.
                var dependencies = Enumerable.Range(0, i).Where(_ => random.Next(3) == 0)
                    .Select(j => new Dependency($"c{j}", conditions[random.Next(conditions.Length)])).ToList();
                containers.Add(new ContainerState($"c{i}", Essential: i == count - 1, None, dependencies));
            }

            // Some containers mount an earlier one's volumes; some tasks are awsvpc.
            for (var i = 1; i < count; i++)
            {
                if (random.Next(4) == 0)
                {
                    containers[i] = containers[i] with { VolumesFrom = [$"c{random.Next(i)}"] };
                }
            }

            var task = new TaskState("t", DesiredStatus.Running, containers, random.Next(2) == 0 ? NetworkStatus.None : NetworkStatus.NotNeeded);
            var stopAt = random.Next(3, 40);
            for (var step = 0; step < 100; step++)
            {
                if (step == stopAt)
                {
                    task = task with { Desired = TaskStateMachine.Forward(task.Desired, DesiredStatus.Stopped) };
                }

                // Steps without actions still let time pass: awaited containers finish on their own.
                task = Simulate(task, TaskStateMachine.Next(task, Now), random);
            }

            var last = TaskStateMachine.LastStatus(task);
            Assert.True(last is "STOPPED" || (last is "RUNNING" && task.Desired == DesiredStatus.Running), $"round {round} ended {last}: " + string.Join("; ", task.Containers.Select(c => $"{c.Name} {c.Known} exit={c.ExitCode} health={c.Health} deps=[{string.Join(",", c.DependsOn)}]")));
        }
    }

    /// <summary>
    /// Applies actions as Docker would, checking each against the rules. Containers others wait on become
    /// healthy, and (sooner or later) exit 0 when awaited for COMPLETE or SUCCESS; a dependency that exits
    /// while another waits for it to be HEALTHY makes the task fail to start, which also converges.
    /// </summary>
    private static TaskState Simulate(TaskState task, IReadOnlyList<TaskAction> actions, Random random)
    {
        var containers = task.Containers.ToDictionary(c => c.Name);
        foreach (var action in actions)
        {
            switch (action)
            {
                case TaskAction.Pull pull:
                    containers[pull.Container] = containers[pull.Container] with { Known = Pulled };
                    break;
                case TaskAction.Create create:
                    Assert.True(task.Network is NetworkStatus.NotNeeded or NetworkStatus.Ready, $"{create.Container} created before the task's network");
                    Assert.All(containers[create.Container].VolumesFrom ?? [], source => Assert.True(containers[source].Known >= Created, $"{create.Container} created before {source}"));
                    containers[create.Container] = containers[create.Container] with { Known = Created, CreatedAt = Now };
                    break;
                case TaskAction.SetUpNetwork:
                    Assert.Equal(DesiredStatus.Running, task.Desired);
                    task = task with { Network = NetworkStatus.Ready };
                    break;
                case TaskAction.ReleaseNetwork:
                    Assert.All(containers.Values, c => Assert.Equal(Stopped, c.Known));
                    task = task with { Network = NetworkStatus.Released };
                    break;
                case TaskAction.Start start:
                    Assert.Equal(DesiredStatus.Running, task.Desired);
                    foreach (var dependency in containers[start.Container].DependsOn)
                    {
                        var target = containers[dependency.ContainerName];
                        Assert.True(dependency.Condition switch
                        {
                            DependencyCondition.Start => target.Known >= Running,
                            DependencyCondition.Complete => target.Known == Stopped,
                            DependencyCondition.Success => target.Known == Stopped && target.ExitCode == 0,
                            _ => target.Health == HealthStatus.Healthy,
                        }, $"{start.Container} started before {dependency.ContainerName} met {dependency.Condition}");
                    }

                    containers[start.Container] = containers[start.Container] with { Known = Running, StartedAt = Now };
                    break;
                case TaskAction.Stop stop:
                    containers[stop.Container] = containers[stop.Container] with { Known = Stopped, ExitCode = 143 };
                    break;
                case TaskAction.MarkStopped mark:
                    containers[mark.Container] = containers[mark.Container] with { Known = Stopped };
                    break;
                case TaskAction.StopTask:
                    task = task with { Desired = DesiredStatus.Stopped };
                    break;
                default:
                    Assert.Fail($"unexpected {action}");
                    break;
            }
        }

        // Running containers that others wait on for COMPLETE/SUCCESS finish with 0; HEALTHY ones become healthy.
        foreach (var name in containers.Keys.ToList())
        {
            var container = containers[name];
            if (container.Known != Running || task.Desired != DesiredStatus.Running)
            {
                continue;
            }

            var awaited = containers.Values.SelectMany(c => c.DependsOn).Where(d => d.ContainerName == name).Select(d => d.Condition).ToList();
            if (awaited.Contains(DependencyCondition.Healthy))
            {
                containers[name] = container = container with { Health = HealthStatus.Healthy };
            }

            if (!container.Essential && awaited.Any(c => c is DependencyCondition.Complete or DependencyCondition.Success) && random.Next(2) == 0)
            {
                containers[name] = container with { Known = Stopped, ExitCode = 0 };
            }
        }

        return task with { Containers = [.. task.Containers.Select(c => containers[c.Name])], Network = task.Network };
    }
}
