using EcsLite.Coordinator.Core.Observability;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Core.Tests;

public class TaskCountsTests
{
    private static StoredTask Task(string cluster, string last, string desired) =>
        new() { Cluster = cluster, Task = new Api.V1.Task { LastStatus = last, DesiredStatus = desired } };

    [Fact]
    public void Tasks_are_counted_by_cluster_last_and_desired_status_and_only_what_there_is_is_listed()
    {
        var counts = TaskCounts.Of(
        [
            Task("default", "RUNNING", "RUNNING"), Task("default", "RUNNING", "RUNNING"), Task("default", "RUNNING", "STOPPED"),
            Task("edge", "PENDING", "RUNNING"), Task("default", "STOPPED", "STOPPED"), Task("edge", "SOMETHING", "NEW"),
        ]).ToList();

        Assert.Equal(
            [
                ("default", "RUNNING", "RUNNING", 2), ("default", "RUNNING", "STOPPED", 1), ("default", "STOPPED", "STOPPED", 1),
                ("edge", "PENDING", "RUNNING", 1), ("edge", "other", "other", 1),
            ],
            counts.OrderBy(c => c.Cluster, StringComparer.Ordinal).ThenBy(c => c.LastStatus, StringComparer.Ordinal).ThenBy(c => c.DesiredStatus, StringComparer.Ordinal));
        Assert.Empty(TaskCounts.Of([]));
    }
}
