using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Validation;

namespace EcsLite.Coordinator.Core.Clusters;

/// <summary>ECS's cluster actions as pure functions of the state.</summary>
public static class ClusterCommands
{
    public const string DefaultCluster = "default";

    /// <summary>The capacity providers every ECS account has; EcsLite has no others yet.</summary>
    private static readonly string[] BuiltInCapacityProviders = ["FARGATE", "FARGATE_SPOT"];

    private static readonly string[] ContainerInsightsValues = ["enhanced", "enabled", "disabled"];

    /// <summary>CreateCluster is idempotent, as in ECS: an ACTIVE cluster of that name is returned as it is.</summary>
    public static Mutation<CreateClusterResponse> Create(CoordinatorState state, CreateClusterRequest request, CommandContext context)
    {
        ShapeRules.Validate(request);
        var name = request.HasClusterName && request.ClusterName.Length > 0 ? request.ClusterName : DefaultCluster;
        if (!TaskDefinitionValidator.NamePattern().IsMatch(name))
        {
            throw EcsException.InvalidParameter("clusterName", "up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens are allowed.");
        }

        TagRules.Validate(request.Tags, "tags");
        for (var i = 0; i < request.Settings.Count; i++)
        {
            if (Array.IndexOf(ContainerInsightsValues, request.Settings[i].Value) < 0)
            {
                throw EcsException.InvalidParameter($"settings[{i}].value", $"'{request.Settings[i].Value}' is not valid; expected one of: {string.Join(", ", ContainerInsightsValues)}.");
            }
        }

        for (var i = 0; i < request.CapacityProviders.Count; i++)
        {
            if (Array.IndexOf(BuiltInCapacityProviders, request.CapacityProviders[i]) < 0)
            {
                throw EcsException.InvalidParameter($"capacityProviders[{i}]", $"capacity provider '{request.CapacityProviders[i]}' does not exist.");
            }
        }

        if (state.Clusters.TryGetValue(name, out var existing) && existing.Status == ClusterStatus.Active)
        {
            return new([], new CreateClusterResponse { Cluster = existing });
        }

        var cluster = new Cluster();
        ProtoCopy.SameNamedFields(request, cluster);
        cluster.ClusterName = name;
        cluster.ClusterArn = context.Arns.Cluster(name);
        cluster.Status = ClusterStatus.Active;
        cluster.RegisteredContainerInstancesCount = 0;
        cluster.RunningTasksCount = 0;
        cluster.PendingTasksCount = 0;
        cluster.ActiveServicesCount = 0;
        if (request.ServiceConnectDefaults is { } defaults)
        {
            cluster.ServiceConnectDefaults = new ClusterServiceConnectDefaults { Namespace = defaults.Namespace };
        }

        if (cluster.Settings.Count == 0)
        {
            cluster.Settings.Add(new ClusterSetting { Name = "containerInsights", Value = "disabled" });
        }

        return new([new ClusterPut(cluster)], new CreateClusterResponse { Cluster = cluster });
    }

    public static DescribeClustersResponse Describe(CoordinatorState state, DescribeClustersRequest request, ArnFormat arns)
    {
        ShapeRules.Validate(request);
        if (request.Clusters.Count > 100)
        {
            throw EcsException.InvalidParameter("clusters", $"at most 100 clusters can be described at once (got {request.Clusters.Count}).");
        }

        var include = request.Include.ToHashSet(StringComparer.Ordinal);
        var response = new DescribeClustersResponse();
        var references = request.Clusters.Count > 0 ? request.Clusters.ToList() : [DefaultCluster];
        for (var i = 0; i < references.Count; i++)
        {
            var name = ArnFormat.ClusterName(references[i], $"clusters[{i}]");
            if (state.Clusters.TryGetValue(name, out var cluster))
            {
                response.Clusters.Add(View(state, cluster, include));
            }
            else
            {
                response.Failures.Add(new Failure { Arn = arns.Cluster(name), Reason = "MISSING" });
            }
        }

        return response;
    }

    public static ListClustersResponse List(CoordinatorState state, ListClustersRequest request)
    {
        var active = state.Clusters.Values.Where(c => c.Status == ClusterStatus.Active);
        var (page, next) = Paging.Take(active, c => c.ClusterName, request.HasMaxResults, request.MaxResults, request.NextToken);
        var response = new ListClustersResponse();
        response.ClusterArns.Add(page.Select(c => c.ClusterArn));
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    /// <summary>
    /// ECS refuses to delete a cluster that still has container instances, services or tasks; a deleted
    /// cluster stays describable as INACTIVE and its name can be created again.
    /// </summary>
    public static Mutation<DeleteClusterResponse> Delete(CoordinatorState state, DeleteClusterRequest request)
    {
        ShapeRules.Validate(request);
        var cluster = Active(state, request.Cluster);
        if (RegisteredInstances(state, cluster.ClusterName) > 0)
        {
            throw new EcsException(EcsErrorType.ClusterContainsContainerInstancesException,
                "The cluster cannot be deleted while container instances are active or draining.", "cluster");
        }

        if (ActiveServices(state, cluster.ClusterName) > 0)
        {
            throw new EcsException(EcsErrorType.ClusterContainsServicesException,
                "The cluster cannot be deleted while services are active.", "cluster");
        }

        if (state.ActiveTasks(cluster.ClusterName).Any())
        {
            throw new EcsException(EcsErrorType.ClusterContainsTasksException,
                "The cluster cannot be deleted while tasks are active.", "cluster");
        }

        var deleted = cluster.Clone();
        deleted.Status = ClusterStatus.Inactive;
        return new([new ClusterPut(deleted)], new DeleteClusterResponse { Cluster = deleted });
    }

    /// <summary>The ACTIVE cluster a call names (by name or ARN, "default" when empty), else ClusterNotFoundException.</summary>
    public static Cluster Active(CoordinatorState state, string? clusterOrArn, string field = "cluster")
    {
        var name = ArnFormat.ClusterName(clusterOrArn, field);
        return state.Clusters.TryGetValue(name, out var cluster) && cluster.Status == ClusterStatus.Active
            ? cluster
            : throw EcsException.ClusterNotFound(field);
    }

    /// <summary>Services not yet INACTIVE (ECS counts a DRAINING one as active until its tasks are gone).</summary>
    public static int ActiveServices(CoordinatorState state, string cluster) =>
        state.Services.Values.Count(s => s.Cluster == cluster && s.Service.Status != ServiceStatus.Inactive);

    /// <summary>Container instances that count as registered: ACTIVE or DRAINING.</summary>
    public static int RegisteredInstances(CoordinatorState state, string cluster) =>
        state.ContainerInstances.Values.Count(i => i.Cluster == cluster && i.ContainerInstance.Status != ContainerInstanceStatus.Inactive);

    /// <summary>
    /// The cluster as ECS shows it: counts as of now; tags, settings, configuration, statistics and
    /// attachments only when asked for.
    /// </summary>
    private static Cluster View(CoordinatorState state, Cluster cluster, HashSet<string> include)
    {
        var view = cluster.Clone();
        view.RegisteredContainerInstancesCount = RegisteredInstances(state, cluster.ClusterName);
        (view.RunningTasksCount, view.PendingTasksCount) = state.TaskCounts(cluster.ClusterName);
        view.ActiveServicesCount = ActiveServices(state, cluster.ClusterName);
        if (!include.Contains("TAGS"))
        {
            view.Tags.Clear();
        }

        if (!include.Contains("SETTINGS"))
        {
            view.Settings.Clear();
        }

        if (!include.Contains("CONFIGURATIONS"))
        {
            view.Configuration = null;
        }

        if (!include.Contains("STATISTICS"))
        {
            view.Statistics.Clear();
        }

        if (!include.Contains("ATTACHMENTS"))
        {
            view.Attachments.Clear();
            view.ClearAttachmentsStatus();
        }

        return view;
    }
}
