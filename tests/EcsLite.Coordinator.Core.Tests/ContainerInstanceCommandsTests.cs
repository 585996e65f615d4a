using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.State;
using static EcsLite.Coordinator.Core.Tests.Fixtures;

namespace EcsLite.Coordinator.Core.Tests;

public class ContainerInstanceCommandsTests
{
    public static AgentHello Hello(string cluster = "default", string? arn = null, int cpu = 2048, int memory = 3900, string hostname = "pi-1", string arch = "arm64")
    {
        var hello = new AgentHello { Cluster = cluster, Hostname = hostname, ContainerInstanceArn = arn ?? "", VersionInfo = new VersionInfo { AgentVersion = "0.1.0" } };
        hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = cpu });
        hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = memory });
        hello.RegisteredResources.Add(new Resource { Name = "PORTS", Type = "STRINGSET", StringSetValue = { "22", "2375" } });
        hello.Attributes.Add(new Api.V1.Attribute { Name = "ecs.cpu-architecture", Value = arch });
        hello.Attributes.Add(new Api.V1.Attribute { Name = "ecs.os-type", Value = "linux" });
        return hello;
    }

    private static CoordinatorState WithCluster() => Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context())).State;

    private static (CoordinatorState State, string Arn) Joined(CoordinatorState state, AgentHello hello, string id)
    {
        var (next, stored) = Run(state, s => ContainerInstanceCommands.Join(s, hello, Context(), id));
        return (next, stored.ContainerInstance.ContainerInstanceArn);
    }

    [Fact]
    public void A_new_agent_becomes_an_active_connected_instance_with_its_resources_and_attributes()
    {
        var (state, arn) = Joined(WithCluster(), Hello(), "0123456789abcdef0123456789abcdef");
        Assert.Equal("arn:aws:ecs:local:000000000000:container-instance/default/0123456789abcdef0123456789abcdef", arn);

        var view = ContainerInstanceCommands.Describe(state, new DescribeContainerInstancesRequest { ContainerInstances = { arn } }, new ArnFormat()).ContainerInstances.Single();
        Assert.Equal("ACTIVE", view.Status);
        Assert.True(view.AgentConnected);
        Assert.Equal("mi-0123456789abcdef0", view.Ec2InstanceId);
        Assert.Equal(2048, view.RegisteredResources.Single(r => r.Name == "CPU").IntegerValue);
        Assert.Equal(3900, view.RemainingResources.Single(r => r.Name == "MEMORY").IntegerValue);
        Assert.Equal("arm64", view.Attributes.Single(a => a.Name == "ecs.cpu-architecture").Value);
        Assert.Equal(Now, view.RegisteredAt.ToDateTimeOffset());
        Assert.Equal(1, ClusterCommands.Describe(state, new DescribeClustersRequest(), new ArnFormat()).Clusters[0].RegisteredContainerInstancesCount);
    }

    [Fact]
    public void A_returning_agent_is_the_same_instance_and_an_unchanged_hello_writes_nothing()
    {
        var (state, arn) = Joined(WithCluster(), Hello(), "abc");
        (state, _) = Run(state, s => ContainerInstanceCommands.Disconnected(s, arn, Context()));
        Assert.False(state.IsConnected(arn));

        var again = ContainerInstanceCommands.Join(state, Hello(arn: arn), Context(), "unused");
        Assert.Equal(arn, again.Result.ContainerInstance.ContainerInstanceArn);
        Assert.IsType<AgentConnectionChanged>(Assert.Single(again.Changes));

        var bigger = ContainerInstanceCommands.Join(state, Hello(arn: arn, memory: 7800), Context(), "unused");
        Assert.Contains(bigger.Changes, c => c is ContainerInstancePut);
        Assert.Equal(2, bigger.Result.ContainerInstance.Version);
    }

    [Fact]
    public void Only_the_coordinator_holding_an_agents_stream_can_end_its_connection()
    {
        const string First = "https://10.0.0.1:7430", Second = "https://10.0.0.2:7430";
        var (state, arn) = Joined(WithCluster(), Hello(), "abc");
        (state, _) = Run(state, s => ContainerInstanceCommands.Join(s, Hello(arn: arn), Context(), "unused", First));
        Assert.Equal(First, state.Connections[arn].Holder);

        // The agent moved to the second coordinator; the first's late word of the old stream's end changes nothing.
        (state, _) = Run(state, s => ContainerInstanceCommands.Join(s, Hello(arn: arn), Context(), "unused", Second));
        Assert.Empty(ContainerInstanceCommands.Disconnected(state, arn, Context(), First).Changes);
        Assert.True(state.IsConnected(arn));

        (state, var ended) = Run(state, s => ContainerInstanceCommands.Disconnected(s, arn, Context(), Second));
        Assert.True(ended);
        Assert.False(state.IsConnected(arn));

        // Heartbeats heard again through a coordinator: connected, held there; an instance not known is not made up.
        (state, _) = Run(state, s => ContainerInstanceCommands.Reconnected(s, arn, Context(), First));
        Assert.Equal(new AgentConnection(true, Now, First), state.Connections[arn]);
        var unknown = arn.Replace("/abc", "/gone", StringComparison.Ordinal);
        Assert.Empty(ContainerInstanceCommands.Reconnected(state, unknown, Context(), First).Changes);
    }

    [Theory]
    [InlineData("garbage", "InvalidParameterException")]
    [InlineData("arn:aws:ecs:local:000000000000:container-instance/default/unknown", "ClientException")]
    [InlineData("arn:aws:ecs:local:000000000000:container-instance/other/abc", "InvalidParameterException")]
    [InlineData("arn:aws:ecs:local:000000000000:cluster/default", "InvalidParameterException")]
    public void A_hello_naming_an_instance_that_is_not_its_own_is_refused(string arn, string errorType)
    {
        var (state, _) = Joined(WithCluster(), Hello(), "abc");
        var error = Assert.Throws<EcsException>(() => ContainerInstanceCommands.Join(state, Hello(arn: arn), Context(), "new"));
        Assert.Equal(errorType, error.ErrorType);
        Assert.Equal("hello.containerInstanceArn", error.Field);
    }

    [Theory]
    [InlineData(0, 3900, "hello.registeredResources[0]")]
    [InlineData(2048, 10, "hello.registeredResources[1]")]
    [InlineData(int.MaxValue, 3900, "hello.registeredResources[0]")]
    public void Absurd_resources_are_refused(int cpu, int memory, string field)
    {
        var error = Assert.Throws<EcsException>(() => ContainerInstanceCommands.Join(WithCluster(), Hello(cpu: cpu, memory: memory), Context(), "x"));
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void Joining_a_cluster_that_does_not_exist_is_refused()
    {
        var error = Assert.Throws<EcsException>(() => ContainerInstanceCommands.Join(WithCluster(), Hello(cluster: "nope"), Context(), "x"));
        Assert.Equal(EcsErrorType.ClusterNotFoundException, error.ErrorType);
    }

    [Fact]
    public void Draining_and_deregistering_as_in_ECS()
    {
        var (state, arn) = Joined(WithCluster(), Hello(), "abc");
        (state, var drained) = Run(state, s => ContainerInstanceCommands.UpdateState(s, new UpdateContainerInstancesStateRequest { ContainerInstances = { "abc", "missing" }, Status = "DRAINING" }, Context()));
        Assert.Equal("DRAINING", drained.ContainerInstances.Single().Status);
        Assert.Equal("MISSING", drained.Failures.Single().Reason);
        Assert.Equal([arn], ContainerInstanceCommands.List(state, new ListContainerInstancesRequest { Status = "DRAINING" }).ContainerInstanceArns);
        Assert.Empty(ContainerInstanceCommands.List(state, new ListContainerInstancesRequest { Status = "ACTIVE" }).ContainerInstanceArns);

        var invalid = Assert.Throws<EcsException>(() => ContainerInstanceCommands.UpdateState(state, new UpdateContainerInstancesStateRequest { ContainerInstances = { "abc" }, Status = "REGISTERING" }, Context()));
        Assert.Equal("status", invalid.Field);

        (state, var deregistered) = Run(state, s => ContainerInstanceCommands.Deregister(s, new DeregisterContainerInstanceRequest { ContainerInstance = arn }, Context()));
        Assert.Equal("INACTIVE", deregistered.ContainerInstance.Status);
        Assert.Empty(ContainerInstanceCommands.List(state, new ListContainerInstancesRequest()).ContainerInstanceArns);
        Assert.Equal("INACTIVE", ContainerInstanceCommands.Describe(state, new() { ContainerInstances = { "abc" } }, new ArnFormat()).ContainerInstances[0].Status);
        Assert.Equal(0, ClusterCommands.Describe(state, new DescribeClustersRequest(), new ArnFormat()).Clusters[0].RegisteredContainerInstancesCount);
        var rejoin = Assert.Throws<EcsException>(() => ContainerInstanceCommands.Join(state, Hello(arn: arn), Context(), "x"));
        Assert.Contains("deregistered", rejoin.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_instance_with_tasks_is_deregistered_only_when_forced()
    {
        var (state, arn) = Joined(WithCluster(), Hello(), "abc");
        state = state.Apply(new TaskPut(new EcsLite.Store.V1.StoredTask
        {
            Cluster = "default",
            TaskDefinition = new TaskDefinition(),
            Task = new Api.V1.Task { TaskArn = "arn:aws:ecs:local:000000000000:task/default/t1", LastStatus = "RUNNING", ContainerInstanceArn = arn },
        }));
        var error = Assert.Throws<EcsException>(() => ContainerInstanceCommands.Deregister(state, new() { ContainerInstance = "abc" }, Context()));
        Assert.Equal(EcsErrorType.InvalidParameterException, error.ErrorType);
        var forced = ContainerInstanceCommands.Deregister(state, new() { ContainerInstance = "abc", Force = true }, Context());
        Assert.Equal("INACTIVE", forced.Result.ContainerInstance.Status);
    }

    [Fact]
    public void Custom_attributes_are_put_listed_filtered_and_deleted_and_survive_a_new_hello()
    {
        var (state, pi) = Joined(WithCluster(), Hello(), "pi");
        (state, var vm) = Joined(state, Hello(arch: "x86_64", hostname: "vm"), "vm");
        (state, _) = Run(state, s => ContainerInstanceCommands.PutAttributes(s, new PutAttributesRequest
        {
            Attributes = { new Api.V1.Attribute { Name = "stack", Value = "prod", TargetId = "pi" }, new Api.V1.Attribute { Name = "gpu", TargetId = vm } },
        }, Context()));
        (state, _) = Run(state, s => ContainerInstanceCommands.Join(s, Hello(arn: pi, memory: 1000), Context(), "x"));

        var stacks = ContainerInstanceCommands.ListAttributes(state, new ListAttributesRequest { TargetType = "container-instance", AttributeName = "stack" });
        Assert.Equal([(pi, "prod")], stacks.Attributes.Select(a => (a.TargetId, a.Value)));
        Assert.Equal([vm], ContainerInstanceCommands.List(state, new() { Filter = "attribute:gpu exists" }).ContainerInstanceArns);
        Assert.Equal([pi], ContainerInstanceCommands.List(state, new() { Filter = "attribute:stack == prod and attribute:ecs.cpu-architecture == arm64" }).ContainerInstanceArns);

        (state, var deleted) = Run(state, s => ContainerInstanceCommands.DeleteAttributes(s, new DeleteAttributesRequest { Attributes = { new Api.V1.Attribute { Name = "stack", TargetId = pi } } }, Context()));
        Assert.Equal("stack", deleted.Attributes.Single().Name);
        Assert.Empty(ContainerInstanceCommands.ListAttributes(state, new ListAttributesRequest { TargetType = "container-instance", AttributeName = "stack" }).Attributes);

        var reserved = Assert.Throws<EcsException>(() => ContainerInstanceCommands.PutAttributes(state, new PutAttributesRequest { Attributes = { new Api.V1.Attribute { Name = "ecs.os-type", Value = "x", TargetId = "pi" } } }, Context()));
        Assert.Equal("attributes[0].name", reserved.Field);
        var badFilter = Assert.Throws<EcsException>(() => ContainerInstanceCommands.List(state, new() { Filter = "attribute:gpu exists and" }));
        Assert.Equal("filter", badFilter.Field);
    }
}
