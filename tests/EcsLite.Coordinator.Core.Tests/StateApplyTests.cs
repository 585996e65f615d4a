using CsCheck;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;
using EcsLite.Store.V1;
using static EcsLite.Coordinator.Core.Tests.Fixtures;
using TaskStatus = EcsLite.Coordinator.Core.State.TaskStatus;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>
/// A command's changes applied at once (task changes through builders) against the same changes applied one
/// by one, and the indexes both keep against indexes made again from the tasks alone (a store load).
/// </summary>
public sealed class StateApplyTests
{
    private static readonly string[] Instances = ["i1", "i2", "i3"];
    private static readonly string[] Groups = ["service:web", "service:api", "family:web", "schedule:nightly"];

    [Fact]
    public void Task_changes_applied_at_once_make_the_state_that_applying_them_one_by_one_makes()
    {
        var web = new TaskDefinition { Family = "web", Revision = 1, Cpu = "256", Memory = "512", ContainerDefinitions = { new ContainerDefinition { Name = "app", PortMappings = { new PortMapping { ContainerPort = 80, HostPort = 8080 } } } } };
        var job = new TaskDefinition { Family = "job", Revision = 1, Cpu = "128", Memory = "64", ContainerDefinitions = { new ContainerDefinition { Name = "app" } } };
        var cluster = new ClusterPut(new Cluster { ClusterName = "default", ClusterArn = "arn:aws:ecs:local:000000000000:cluster/default", Status = "ACTIVE" });

        // An operation: kind (0-1 a new task, 2-3 a status report, 4 stopped, 5 removed, 6 a non-task change), then picks.
        var operation = Gen.Select(Gen.Int[0, 6], Gen.Int[0, 1000], Gen.Int[0, 1000]);
        operation.Array[1, 60].Sample(operations =>
        {
            var changes = new List<StateChange>();
            var arns = new List<string>();
            var latest = new Dictionary<string, StoredTask>(StringComparer.Ordinal);
            foreach (var (kind, a, b) in operations)
            {
                StoredTask Report(string status)
                {
                    var task = latest[arns[a % arns.Count]].Clone();
                    task.Task.LastStatus = status;
                    return task;
                }

                StateChange change = kind switch
                {
                    _ when kind < 2 || (kind < 6 && arns.Count == 0) => new TaskPut(NewTask(arns, a, b, b % 2 == 0 ? web : job)),
                    2 or 3 => new TaskPut(Report(a % 2 == 0 ? TaskStatus.Running : TaskStatus.Pending)),
                    4 => new TaskPut(Report(TaskStatus.Stopped)),
                    5 => new TaskRemoved(b % 5 == 0 ? "arn:never-stored" : arns[a % arns.Count], "default"),
                    _ => cluster,
                };
                if (change is TaskPut put)
                {
                    latest[put.Task.Task.TaskArn] = put.Task;
                }

                changes.Add(change);
            }

            var start = CoordinatorState.Empty.Apply(cluster);
            var atOnce = start.Apply(changes);
            var oneByOne = changes.Aggregate(start, (state, change) => state.Apply(change));
            Assert.Equal(Describe(oneByOne), Describe(atOnce));

            var loaded = CoordinatorState.Load([cluster, .. atOnce.Tasks.Values.Select(t => new TaskPut(t))]);
            Assert.Equal(Indexes(loaded), Indexes(atOnce));
        }, iter: 300);
    }

    private static StoredTask NewTask(List<string> arns, int a, int b, TaskDefinition definition)
    {
        var arn = $"arn:aws:ecs:local:000000000000:task/default/{arns.Count:D32}";
        arns.Add(arn);
        return new StoredTask
        {
            Cluster = "default",
            TaskDefinition = definition,
            Task = new Api.V1.Task
            {
                TaskArn = arn, ContainerInstanceArn = Instances[a % Instances.Length], Group = Groups[b % Groups.Length],
                TaskDefinitionArn = $"arn:aws:ecs:local:000000000000:task-definition/{definition.Family}:1", LastStatus = TaskStatus.Pending,
            },
        };
    }

    /// <summary>The indexes kept beside the tasks, as text (usage with what is counted in it, not the records).</summary>
    private static string Indexes(CoordinatorState state) => string.Join("\n",
        state.TasksByInstance.OrderBy(i => i.Key, StringComparer.Ordinal).Select(i => $"{i.Key}: {string.Join(",", i.Value.Order(StringComparer.Ordinal))}")
            .Concat(state.Usage.OrderBy(u => u.Key, StringComparer.Ordinal).Select(u =>
                $"{u.Key}: {u.Value.Tasks} {u.Value.Cpu} {u.Value.Memory} {string.Join(",", u.Value.TcpPorts.Where(p => p.Value > 0).OrderBy(p => p.Key))} " +
                string.Join(",", u.Value.Groups.Where(g => g.Value > 0).OrderBy(g => g.Key, StringComparer.Ordinal))))
            .Concat(state.TasksByService.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key}: {string.Join(",", s.Value.Keys.Order(StringComparer.Ordinal))}")));
}
