using EcsLite.Api.V1;

namespace EcsLite.Testing;

/// <summary>ECS calls that tests and load programs make over many resources.</summary>
public static class EcsCalls
{
    /// <summary>DescribeTasks for any number of tasks, 100 per call (ECS's limit).</summary>
    public static async Task<List<Api.V1.Task>> DescribeAllTasksAsync(this Ecs.EcsClient ecs, IEnumerable<string> arns)
    {
        var tasks = new List<Api.V1.Task>();
        foreach (var chunk in arns.Chunk(100))
        {
            tasks.AddRange((await ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { chunk } })).Tasks);
        }

        return tasks;
    }
}
