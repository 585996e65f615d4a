using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Core.Observability;

/// <summary>
/// Tasks by cluster, last status and desired status, for the metrics: one pass over every task, counted
/// in a small array per cluster (no hashing per task beyond its cluster's name), as a scrape of 100,000
/// tasks asks. A status ECS does not name is counted as "other". Pure.
/// </summary>
public static class TaskCounts
{
    private static readonly string[] LastStatuses = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"];
    private static readonly string[] DesiredStatuses = ["RUNNING", "PENDING", "STOPPED"];
    private const int Desired = 4; // DesiredStatuses and "other"

    public static IEnumerable<(string Cluster, string LastStatus, string DesiredStatus, int Count)> Of(IEnumerable<StoredTask> tasks)
    {
        var byCluster = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var task in tasks)
        {
            if (!byCluster.TryGetValue(task.Cluster, out var counts))
            {
                byCluster[task.Cluster] = counts = new int[(LastStatuses.Length + 1) * Desired];
            }

            counts[(Index(LastStatuses, task.Task.LastStatus) * Desired) + Index(DesiredStatuses, task.Task.DesiredStatus)]++;
        }

        foreach (var (cluster, counts) in byCluster)
        {
            for (var i = 0; i < counts.Length; i++)
            {
                if (counts[i] > 0)
                {
                    yield return (cluster, Name(LastStatuses, i / Desired), Name(DesiredStatuses, i % Desired), counts[i]);
                }
            }
        }
    }

    private static int Index(string[] statuses, string status)
    {
        var index = Array.IndexOf(statuses, status);
        return index < 0 ? statuses.Length : index;
    }

    private static string Name(string[] statuses, int index) => index < statuses.Length ? statuses[index] : "other";
}
