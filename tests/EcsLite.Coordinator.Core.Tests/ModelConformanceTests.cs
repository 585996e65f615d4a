using System.Text.Json;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>The proto and the generated rule table agree with the ECS API model they were generated from.</summary>
public class ModelConformanceTests
{
    private static readonly JsonElement Shapes = JsonDocument.Parse(File.ReadAllText(RepoPaths.EcsModel)).RootElement.GetProperty("shapes");

    [Theory]
    [InlineData("ContainerDefinition", 42)]
    [InlineData("RegisterTaskDefinitionRequest", 0)]
    [InlineData("PortMapping", 0)]
    [InlineData("HealthCheck", 0)]
    [InlineData("LinuxParameters", 0)]
    [InlineData("Volume", 0)]
    [InlineData("TaskDefinition", 0)]
    [InlineData("Cluster", 0)]
    public void Every_member_of_the_ECS_shape_is_a_field_with_the_same_JSON_name(string shape, int expectedCount)
    {
        var members = Shapes.GetProperty(shape).GetProperty("members").EnumerateObject().Select(m => m.Name).ToList();
        var message = Descriptors.Single(d => d.Name == shape);
        Assert.Equal(members, message.Fields.InDeclarationOrder().Select(f => f.JsonName));
        if (expectedCount > 0)
        {
            Assert.Equal(expectedCount, members.Count);
        }
    }

    [Fact]
    public void The_rule_table_holds_the_models_enum_words()
    {
        var ruleEnum = ShapeRules.Rule("ContainerDependency.condition")?.Enum;
        Assert.Equal(Words("ContainerCondition"), ruleEnum);
        Assert.Equal(Words("NetworkMode"), ShapeRules.Rule("RegisterTaskDefinitionRequest.networkMode")?.Enum);
        Assert.Equal(Words("LogDriver"), ShapeRules.Rule("LogConfiguration.logDriver")?.Enum);
        Assert.Equal(Words("Compatibility"), ShapeRules.Rule("RegisterTaskDefinitionRequest.requiresCompatibilities")?.Enum);
    }

    private static string[] Words(string shape) =>
        [.. Shapes.GetProperty(shape).GetProperty("enum").EnumerateArray().Select(e => e.GetString()!)];

    private static IEnumerable<Google.Protobuf.Reflection.MessageDescriptor> Descriptors => EcsReflection.Descriptor.MessageTypes;
}
