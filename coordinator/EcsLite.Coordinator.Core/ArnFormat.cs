using System.Diagnostics.CodeAnalysis;

namespace EcsLite.Coordinator.Core;

/// <summary>
/// ECS resource ARNs: arn:aws:ecs:&lt;region&gt;:&lt;account&gt;:&lt;type&gt;/&lt;id&gt;.
/// Region and account are this coordinator's settings (defaults "local" and "000000000000").
/// </summary>
public sealed record ArnFormat(string Region = "local", string AccountId = "000000000000")
{
    public string Prefix => $"arn:aws:ecs:{Region}:{AccountId}:";

    public string Cluster(string name) => $"{Prefix}cluster/{name}";

    public string TaskDefinition(string family, int revision) => $"{Prefix}task-definition/{family}:{revision}";

    public string ContainerInstance(string cluster, string id) => $"{Prefix}container-instance/{cluster}/{id}";

    public string Task(string cluster, string id) => $"{Prefix}task/{cluster}/{id}";

    public string Service(string cluster, string name) => $"{Prefix}service/{cluster}/{name}";

    public string Container(string cluster, string taskId, string name) => $"{Prefix}container/{cluster}/{taskId}/{name}";

    /// <summary>Splits an ECS ARN into resource type and id; accepts any region and account, as ECS does for parsing.</summary>
    public static bool TryParse(string value, [NotNullWhen(true)] out string? resourceType, [NotNullWhen(true)] out string? resourceId)
    {
        resourceType = resourceId = null;
        var parts = value.Split(':', 6);
        if (parts.Length != 6 || parts[0] != "arn" || parts[2] != "ecs" || parts[3].Length == 0 || parts[4].Length == 0)
        {
            return false;
        }

        var slash = parts[5].IndexOf('/');
        if (slash <= 0 || slash == parts[5].Length - 1)
        {
            return false;
        }

        resourceType = parts[5][..slash];
        resourceId = parts[5][(slash + 1)..];
        return true;
    }

    /// <summary>A cluster given as a name or an ARN; null or empty means "default", as in ECS.</summary>
    public static string ClusterName(string? clusterOrArn, string field = "cluster")
    {
        if (string.IsNullOrEmpty(clusterOrArn))
        {
            return "default";
        }

        if (!clusterOrArn.StartsWith("arn:", StringComparison.Ordinal))
        {
            return clusterOrArn;
        }

        if (TryParse(clusterOrArn, out var type, out var id) && type == "cluster")
        {
            return id;
        }

        throw EcsException.InvalidParameter(field, $"'{clusterOrArn}' is not a valid cluster ARN.");
    }
}
