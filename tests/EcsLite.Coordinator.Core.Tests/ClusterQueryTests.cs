using EcsLite.Coordinator.Core.Query;

namespace EcsLite.Coordinator.Core.Tests;

public class ClusterQueryTests
{
    private static readonly InstanceFacts Pi = new(
        "arn:aws:ecs:local:000000000000:container-instance/default/aaa", "mi-aaa", AgentConnected: true, AgentVersion: "1.2.0",
        new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero), RunningTasksCount: 3,
        new Dictionary<string, string?> { ["ecs.cpu-architecture"] = "arm64", ["ecs.instance-type"] = "Raspberry Pi 4 Model B", ["stack"] = "prod", ["flag"] = null },
        ["service:web", "database"]);

    [Theory]
    [InlineData("agentConnected == true", true)]
    [InlineData("agentConnected == false", false)]
    [InlineData("agentVersion >= 1.1.9", true)]
    [InlineData("agentVersion < 1.10.0", true)]
    [InlineData("attribute:ecs.cpu-architecture == arm64", true)]
    [InlineData("attribute:ecs.cpu-architecture != arm64", false)]
    [InlineData("attribute:ecs.instance-type == 'Raspberry Pi 4 Model B'", true)]
    [InlineData("attribute:ecs.instance-type =~ Raspberry.*", true)]
    [InlineData("attribute:ecs.instance-type !~ Raspberry.*", false)]
    [InlineData("attribute:ecs.instance-type =~ Pi", false)]
    [InlineData("attribute:stack exists", true)]
    [InlineData("attribute:flag exists", true)]
    [InlineData("attribute:zone exists", false)]
    [InlineData("attribute:zone !exists", true)]
    [InlineData("attribute:zone == a", false)]
    [InlineData("attribute:zone != a", true)]
    [InlineData("attribute:stack in [dev, prod]", true)]
    [InlineData("attribute:stack in ['dev', \"test\"]", false)]
    [InlineData("attribute:stack !in [dev, test]", true)]
    [InlineData("ec2InstanceId == mi-aaa", true)]
    [InlineData("ec2InstanceId in ['i-abcd1234', 'mi-aaa']", true)]
    [InlineData("registeredAt < 2026-12-01T00:00:00Z", true)]
    [InlineData("registeredAt > 2026-11-02", false)]
    [InlineData("runningTasksCount == 3", true)]
    [InlineData("runningTasksCount > 10", false)]
    [InlineData("runningTasksCount <= 3", true)]
    [InlineData("task:group == database", true)]
    [InlineData("task:group == service:web", true)]
    [InlineData("task:group != database", false)]
    [InlineData("not(task:group == cache)", true)]
    [InlineData("!(task:group == database)", false)]
    public void Every_subject_and_operator(string expression, bool expected) =>
        Assert.Equal(expected, ClusterQuery.Parse(expression, "filter").Matches(Pi));

    [Theory]
    [InlineData("runningTasksCount == 3 or runningTasksCount == 4 and agentConnected == false", true)] // and binds tighter
    [InlineData("(runningTasksCount == 3 or runningTasksCount == 4) and agentConnected == false", false)]
    [InlineData("not runningTasksCount == 3 or attribute:stack == prod", true)] // not binds tightest
    [InlineData("not (runningTasksCount == 3 or attribute:stack == prod)", false)]
    [InlineData("attribute:stack == prod && attribute:ecs.cpu-architecture == arm64", true)]
    [InlineData("attribute:stack == dev || attribute:ecs.cpu-architecture == x86_64", false)]
    [InlineData("attribute:stack == prod AND NOT attribute:zone exists", true)]
    public void Precedence_is_not_then_and_then_or(string expression, bool expected) =>
        Assert.Equal(expected, ClusterQuery.Parse(expression, "filter").Matches(Pi));

    [Theory]
    [InlineData("", 1, "empty")]
    [InlineData("attribute:stack", 16, "expected an operator")]
    [InlineData("color == red", 1, "unknown subject 'color'")]
    [InlineData("attribute: == x", 1, "needs a name")]
    [InlineData("attribute:stack ==", 19, "expected a value")]
    [InlineData("attribute:stack in prod", 20, "expected '['")]
    [InlineData("attribute:stack in [a b]", 23, "expected ',' or ']'")]
    [InlineData("(attribute:stack == a", 22, "expected ')'")]
    [InlineData("attribute:stack == a b", 22, "unexpected 'b'")]
    [InlineData("attribute:stack =~ '(('", 20, "not a valid pattern")]
    [InlineData("attribute:stack == 'open", 20, "not closed")]
    public void Malformed_expressions_are_refused_with_the_column(string expression, int column, string words)
    {
        var error = Assert.Throws<EcsException>(() => ClusterQuery.Parse(expression, "placementConstraints[0].expression"));
        Assert.Equal(EcsErrorType.InvalidParameterException, error.ErrorType);
        Assert.Equal("placementConstraints[0].expression", error.Field);
        Assert.Contains($"column {column}:", error.Message, StringComparison.Ordinal);
        Assert.Contains(words, error.Message, StringComparison.Ordinal);
    }
}
