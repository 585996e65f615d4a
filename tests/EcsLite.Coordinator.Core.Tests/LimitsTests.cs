using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Query;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Core.Validation;
using static EcsLite.Coordinator.Core.Tests.Fixtures;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>
/// Every input is bounded: each case here was accepted (or crashed the coordinator) before its bound
/// existed, and is now refused with the field and the limit named, before any state changes.
/// </summary>
public class LimitsTests
{
    private static EcsException Refused(Action call) => Assert.Throws<EcsException>(call);

    [Theory]
    [InlineData(100_000, "(", "agentConnected == true", ")")]
    [InlineData(300_000, "!", "agentConnected == true", "")]
    public void A_cluster_query_of_any_length_is_refused_without_recursing(int depth, string open, string inner, string close)
    {
        // These ended the process with a stack overflow: the parser recursed once per level.
        var text = string.Concat(Enumerable.Repeat(open, depth)) + inner + string.Concat(Enumerable.Repeat(close, depth));
        var error = Refused(() => ClusterQuery.Parse(text, "filter"));
        Assert.Equal(("InvalidParameterException", "filter"), (error.ErrorType, error.Field));
        Assert.Contains($"at most {ClusterQuery.MaxLength}", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 500, "the error must not echo the whole input");
    }

    [Fact]
    public void Nesting_is_bounded_within_the_length_limit_too()
    {
        var deep = new string('(', 33) + "agentConnected == true" + new string(')', 33);
        var error = Refused(() => ClusterQuery.Parse(deep, "filter"));
        Assert.Contains("nest more than 32 deep", error.Message, StringComparison.Ordinal);
        Assert.Contains("column 33", error.Message, StringComparison.Ordinal);

        var nots = string.Concat(Enumerable.Repeat("not ", 33)) + "agentConnected == true";
        Assert.Contains("nest more than 32", Refused(() => ClusterQuery.Parse(nots, "filter")).Message, StringComparison.Ordinal);

        // 32 levels are fine.
        var fine = ClusterQuery.Parse(new string('(', 32) + "agentConnected == true" + new string(')', 32), "filter");
        Assert.IsType<ClusterQuery.Comparison>(fine);
    }

    [Fact]
    public void A_placement_expression_is_parsed_when_the_task_definition_is_registered()
    {
        // It was stored unparsed, and every later RunTask of the definition parsed it (and crashed).
        var request = Simple("bad-expression");
        request.PlacementConstraints.Add(new TaskDefinitionPlacementConstraint { Type = "memberOf", Expression = new string('(', 50) + "x" });
        var error = Refused(() => TaskDefinitionCommands.Register(CoordinatorState.Empty, request, Context()));
        Assert.Equal("placementConstraints[0].expression", error.Field);
    }

    [Fact]
    public void A_task_definition_is_at_most_64_KiB()
    {
        var request = Simple("big");
        for (var i = 0; i < 700; i++)
        {
            request.ContainerDefinitions[0].Environment.Add(new Api.V1.KeyValuePair { Name = $"VARIABLE_{i}", Value = new string('v', 80) });
        }

        var error = Refused(() => TaskDefinitionCommands.Register(CoordinatorState.Empty, request, Context()));
        Assert.Equal(("ClientException", "containerDefinitions"), (error.ErrorType, error.Field));
        Assert.Contains("64 KiB", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("startedBy", 129)]
    [InlineData("group", 256)]
    [InlineData("tags", 51)]
    [InlineData("placementConstraints", 11)]
    [InlineData("taskDefinition", 1601)]
    public void RunTask_fields_have_ECS_limits(string field, int size)
    {
        var request = new RunTaskRequest { TaskDefinition = "web" };
        switch (field)
        {
            case "startedBy":
                request.StartedBy = new string('s', size);
                break;
            case "group":
                request.Group = new string('g', size);
                break;
            case "tags":
                request.Tags.Add(Enumerable.Range(0, size).Select(i => new Tag { Key = $"k{i}", Value = "v" }));
                break;
            case "placementConstraints":
                request.PlacementConstraints.Add(Enumerable.Range(0, size).Select(_ => new PlacementConstraint { Type = "distinctInstance" }));
                break;
            case "taskDefinition":
                request.TaskDefinition = new string('t', size);
                break;
        }

        var error = Refused(() => RequestRules.Validate(request));
        Assert.Equal(("InvalidParameterException", field), (error.ErrorType, error.Field));
        Assert.True(error.Message.Length < 500);
    }

    [Fact]
    public void Every_other_string_list_and_map_is_bounded_too_agent_messages_included()
    {
        var hello = new AgentHello { Hostname = new string('h', Limits.MaxString + 1) };
        Assert.Equal("hostname", Refused(() => RequestRules.Validate(hello)).Field);

        var labels = new RegisterTaskDefinitionRequest { Family = "labels", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16 } } };
        for (var i = 0; i <= Limits.MaxItems; i++)
        {
            labels.ContainerDefinitions[0].DockerLabels[$"label-{i}"] = "x";
        }

        Assert.Equal("containerDefinitions[0].dockerLabels", Refused(() => RequestRules.Validate(labels)).Field);

        var report = new TaskStateChange { TaskArn = "arn", StoppedReason = new string('r', 4097) };
        Assert.Equal("stoppedReason", Refused(() => RequestRules.Validate(report)).Field);
    }

    [Fact]
    public void Overrides_are_at_most_8192_characters_of_JSON()
    {
        var state = Run(CoordinatorState.Empty, s => ClusterCommands.Create(s, new CreateClusterRequest(), Context())).State;
        state = Run(state, s => ContainerInstanceCommands.Join(s, ContainerInstanceCommandsTests.Hello(cpu: 1024, memory: 1024, hostname: "a"), Context(), "a")).State;
        state = Run(state, s => TaskDefinitionCommands.Register(s, Simple("web"), Context())).State;
        var overrides = new TaskOverride { ContainerOverrides = { new ContainerOverride { Name = "app", Command = { Enumerable.Repeat(new string('c', 100), 90) } } } };
        var error = Refused(() => TaskCommands.Run(state, new RunTaskRequest { TaskDefinition = "web", Overrides = overrides }, Context(), new Random(1), () => "id"));
        Assert.Equal("overrides", error.Field);
        Assert.Contains("8192", error.Message, StringComparison.Ordinal);
    }
}
