using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Tagging;
using EcsLite.Coordinator.Core.TaskDefinitions;
using static EcsLite.Coordinator.Core.Tests.Fixtures;

namespace EcsLite.Coordinator.Core.Tests;

public class ClusterAndTagCommandsTests
{
    private static CoordinatorState Create(CoordinatorState state, CreateClusterRequest request) =>
        Run(state, s => ClusterCommands.Create(s, request, Context())).State;

    [Fact]
    public void CreateCluster_defaults_its_name_and_is_idempotent()
    {
        var (state, created) = Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context()));
        Assert.Equal("default", created.Cluster.ClusterName);
        Assert.Equal("arn:aws:ecs:local:000000000000:cluster/default", created.Cluster.ClusterArn);
        Assert.Equal("ACTIVE", created.Cluster.Status);

        var again = ClusterCommands.Create(state, new CreateClusterRequest { ClusterName = "default", Tags = { new Tag { Key = "x", Value = "y" } } }, Context());
        Assert.Empty(again.Changes);
        Assert.Same(created.Cluster, again.Result.Cluster);
    }

    [Fact]
    public void DescribeClusters_reports_missing_clusters_as_failures_and_shows_tags_only_when_asked()
    {
        var state = Create(CoordinatorState.Empty, new CreateClusterRequest { ClusterName = "prod", Tags = { new Tag { Key = "env", Value = "prod" } } });

        var plain = ClusterCommands.Describe(state, new DescribeClustersRequest { Clusters = { "prod", "arn:aws:ecs:local:000000000000:cluster/nope" } }, new ArnFormat());
        var cluster = Assert.Single(plain.Clusters);
        Assert.Empty(cluster.Tags);
        Assert.Empty(cluster.Settings);
        var failure = Assert.Single(plain.Failures);
        Assert.Equal("MISSING", failure.Reason);
        Assert.Equal("arn:aws:ecs:local:000000000000:cluster/nope", failure.Arn);

        var full = ClusterCommands.Describe(state, new DescribeClustersRequest { Clusters = { "prod" }, Include = { "TAGS", "SETTINGS" } }, new ArnFormat());
        Assert.Equal("prod", Assert.Single(full.Clusters[0].Tags).Value);
        Assert.Equal("containerInsights", Assert.Single(full.Clusters[0].Settings).Name);

        var badInclude = Assert.Throws<EcsException>(() => ClusterCommands.Describe(state, new DescribeClustersRequest { Include = { "EVERYTHING" } }, new ArnFormat()));
        Assert.Equal("include[0]", badInclude.Field);
    }

    [Fact]
    public void Deleted_clusters_stay_describable_as_inactive_leave_the_list_and_can_be_created_again()
    {
        var state = Create(Create(CoordinatorState.Empty, new CreateClusterRequest { ClusterName = "a" }), new CreateClusterRequest { ClusterName = "b" });
        (state, var deleted) = Run(state, s => ClusterCommands.Delete(s, new DeleteClusterRequest { Cluster = "a" }));

        Assert.Equal("INACTIVE", deleted.Cluster.Status);
        Assert.Equal(["arn:aws:ecs:local:000000000000:cluster/b"], ClusterCommands.List(state, new ListClustersRequest()).ClusterArns);
        Assert.Equal("INACTIVE", ClusterCommands.Describe(state, new DescribeClustersRequest { Clusters = { "a" } }, new ArnFormat()).Clusters[0].Status);
        var again = Assert.Throws<EcsException>(() => ClusterCommands.Delete(state, new DeleteClusterRequest { Cluster = "a" }));
        Assert.Equal(EcsErrorType.ClusterNotFoundException, again.ErrorType);

        state = Create(state, new CreateClusterRequest { ClusterName = "a" });
        Assert.Equal("ACTIVE", state.Clusters["a"].Status);
    }

    [Fact]
    public void DeleteCluster_is_refused_while_the_cluster_has_instances_services_or_tasks()
    {
        var state = Create(CoordinatorState.Empty, new CreateClusterRequest { ClusterName = "busy" });
        var (withInstance, _) = Run(state, s => ContainerInstanceCommands.Join(s, ContainerInstanceCommandsTests.Hello("busy"), Context(), "abc"));
        var error = Assert.Throws<EcsException>(() => ClusterCommands.Delete(withInstance, new DeleteClusterRequest { Cluster = "busy" }));
        Assert.Equal(EcsErrorType.ClusterContainsContainerInstancesException, error.ErrorType);

        var service = new EcsLite.Store.V1.StoredService { Cluster = "busy", Service = new Service { ServiceName = "web", Status = "DRAINING" } };
        error = Assert.Throws<EcsException>(() => ClusterCommands.Delete(state.Apply(new ServicePut(service)), new DeleteClusterRequest { Cluster = "busy" }));
        Assert.Equal(EcsErrorType.ClusterContainsServicesException, error.ErrorType);

        var task = new EcsLite.Store.V1.StoredTask { Cluster = "busy", TaskDefinition = new TaskDefinition(), Task = new Api.V1.Task { TaskArn = "arn:aws:ecs:local:000000000000:task/busy/t1", LastStatus = "RUNNING" } };
        error = Assert.Throws<EcsException>(() => ClusterCommands.Delete(state.Apply(new TaskPut(task)), new DeleteClusterRequest { Cluster = "busy" }));
        Assert.Equal(EcsErrorType.ClusterContainsTasksException, error.ErrorType);
    }

    [Fact]
    public void Cluster_names_and_settings_are_checked()
    {
        var bad = Assert.Throws<EcsException>(() => ClusterCommands.Create(CoordinatorState.Empty, new CreateClusterRequest { ClusterName = "no/slashes" }, Context()));
        Assert.Equal(("InvalidParameterException", "clusterName"), (bad.ErrorType, bad.Field));
        var setting = Assert.Throws<EcsException>(() => ClusterCommands.Create(CoordinatorState.Empty,
            new CreateClusterRequest { Settings = { new ClusterSetting { Name = "containerInsights", Value = "sometimes" } } }, Context()));
        Assert.Equal("settings[0].value", setting.Field);
        var provider = Assert.Throws<EcsException>(() => ClusterCommands.Create(CoordinatorState.Empty,
            new CreateClusterRequest { CapacityProviders = { "my-asg" } }, Context()));
        Assert.Equal("capacityProviders[0]", provider.Field);
    }

    [Fact]
    public void ListClusters_pages()
    {
        var state = Enumerable.Range(0, 7).Aggregate(CoordinatorState.Empty, (s, i) => Create(s, new CreateClusterRequest { ClusterName = $"c{i}" }));
        var seen = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var request = new ListClustersRequest { MaxResults = 3 };
            if (token is not null)
            {
                request.NextToken = token;
            }

            var page = ClusterCommands.List(state, request);
            seen.AddRange(page.ClusterArns);
            token = page.HasNextToken ? page.NextToken : null;
            pages++;
        }
        while (token is not null);

        Assert.Equal(3, pages);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"arn:aws:ecs:local:000000000000:cluster/c{i}"), seen);
    }

    [Fact]
    public void Tags_are_added_overwritten_removed_and_listed_on_clusters_and_task_definitions()
    {
        var state = Create(CoordinatorState.Empty, new CreateClusterRequest { ClusterName = "prod", Tags = { new Tag { Key = "env", Value = "prod" } } });
        (state, _) = Run(state, s => TaskDefinitionCommands.Register(s, Simple("web"), Context()));
        const string cluster = "arn:aws:ecs:local:000000000000:cluster/prod";
        const string definition = "arn:aws:ecs:local:000000000000:task-definition/web:1";

        (state, _) = Run(state, s => TagCommands.Tag(s, new TagResourceRequest { ResourceArn = cluster, Tags = { new Tag { Key = "env", Value = "staging" }, new Tag { Key = "team", Value = "a" } } }));
        (state, _) = Run(state, s => TagCommands.Tag(s, new TagResourceRequest { ResourceArn = definition, Tags = { new Tag { Key = "owner", Value = "me" } } }));
        (state, _) = Run(state, s => TagCommands.Untag(s, new UntagResourceRequest { ResourceArn = cluster, TagKeys = { "team", "absent" } }));

        Assert.Equal([("env", "staging")], TagCommands.List(state, new() { ResourceArn = cluster }).Tags.Select(t => (t.Key, t.Value)));
        Assert.Equal([("owner", "me")], TagCommands.List(state, new() { ResourceArn = definition }).Tags.Select(t => (t.Key, t.Value)));
        Assert.Equal("me", TaskDefinitionCommands.Describe(state, new() { TaskDefinition = "web:1", Include = { "TAGS" } }).Tags[0].Value);
        Assert.Empty(TaskDefinitionCommands.Describe(state, new() { TaskDefinition = "web:1" }).Tags);
    }

    [Theory]
    [InlineData("arn:aws:ecs:local:000000000000:cluster/none", EcsErrorType.ClusterNotFoundException, "resourceArn")]
    [InlineData("arn:aws:ecs:local:000000000000:task-definition/none:1", EcsErrorType.ResourceNotFoundException, "resourceArn")]
    [InlineData("arn:aws:ecs:local:000000000000:task-definition/none", EcsErrorType.InvalidParameterException, "resourceArn")]
    [InlineData("arn:aws:ecs:local:000000000000:capacity-provider/x", EcsErrorType.InvalidParameterException, "resourceArn")]
    [InlineData("not-an-arn", EcsErrorType.InvalidParameterException, "resourceArn")]
    public void Tagging_an_unknown_resource_is_refused(string arn, string errorType, string field)
    {
        var error = Assert.Throws<EcsException>(() => TagCommands.Tag(CoordinatorState.Empty, new TagResourceRequest { ResourceArn = arn, Tags = { new Tag { Key = "a", Value = "b" } } }));
        Assert.Equal((errorType, field), (error.ErrorType, error.Field));
    }

    [Fact]
    public void A_resource_holds_at_most_50_tags()
    {
        var state = Create(CoordinatorState.Empty, new CreateClusterRequest { ClusterName = "c" });
        var request = new TagResourceRequest { ResourceArn = "arn:aws:ecs:local:000000000000:cluster/c" };
        request.Tags.Add(Enumerable.Range(0, 50).Select(i => new Tag { Key = $"k{i}", Value = "v" }));
        (state, _) = Run(state, s => TagCommands.Tag(s, request));
        var one = new TagResourceRequest { ResourceArn = request.ResourceArn, Tags = { new Tag { Key = "k50", Value = "v" } } };
        Assert.Throws<EcsException>(() => TagCommands.Tag(state, one));
    }
}
