using System.Collections.Immutable;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;

namespace EcsLite.Coordinator.Core.Tests;

public sealed class PolicyEvaluatorTests
{
    private static readonly ArnFormat Arns = new();

    private static Decision Evaluate(string policy, AuthorizationRequest request) =>
        PolicyEvaluator.Evaluate([PolicyDocument.Parse(policy)], request);

    private static AuthorizationRequest Call(string action, params string[] resources) =>
        new(action, [.. resources], ImmutableDictionary<string, string>.Empty);

    [Theory]
    [InlineData("ecs:*", "ecs:RunTask", true)]
    [InlineData("ecs:Describe*", "ecs:DescribeTasks", true)]
    [InlineData("ecs:describe*", "ecs:DescribeTasks", true)] // actions are case-insensitive
    [InlineData("ecs:Describe*", "ecs:ListTasks", false)]
    [InlineData("ecs:?unTask", "ecs:RunTask", true)]
    [InlineData("ecs:?unTask", "ecs:StartTask", false)]
    [InlineData("*", "ecs:DeleteCluster", true)]
    [InlineData("iam:*", "ecs:RunTask", false)]
    public void Actions_match_with_IAM_wildcards(string pattern, string action, bool allowed)
    {
        var policy = $$"""{ "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": "{{pattern}}", "Resource": "*" } }""";
        Assert.Equal(allowed, Evaluate(policy, Call(action)).Allowed);
    }

    [Theory]
    [InlineData("arn:aws:ecs:*:*:task/A/*", "arn:aws:ecs:local:000000000000:task/A/abc", true)]
    [InlineData("arn:aws:ecs:*:*:task/A/*", "arn:aws:ecs:local:000000000000:task/B/abc", false)]
    [InlineData("arn:aws:ecs:*:*:task/a/*", "arn:aws:ecs:local:000000000000:task/A/abc", false)] // resources are case-sensitive
    [InlineData("arn:aws:ecs:other:*:task/A/*", "arn:aws:ecs:local:000000000000:task/A/abc", false)]
    [InlineData("arn:aws:ecs:*", "arn:aws:ecs:local:000000000000:task/A/abc", false)] // a wildcard stays in its part
    [InlineData("arn:aws:ecs:local:000000000000:*", "arn:aws:ecs:local:000000000000:task/A/abc", true)]
    public void Resources_match_part_by_part(string pattern, string arn, bool allowed)
    {
        var policy = $$"""{ "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": "ecs:StopTask", "Resource": "{{pattern}}" } }""";
        Assert.Equal(allowed, Evaluate(policy, Call("ecs:StopTask", arn)).Allowed);
    }

    [Fact]
    public void An_action_without_resource_level_permissions_needs_Resource_star()
    {
        var scoped = """{ "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": "ecs:*", "Resource": "arn:aws:ecs:*:*:*" } }""";
        var request = ApiActions.Describe("ListClusters", new ListClustersRequest(), Arns, _ => null);
        Assert.Equal(new Decision(DecisionKind.ImplicitDeny, "*"), Evaluate(scoped, request));
    }

    [Fact]
    public void An_explicit_deny_wins_and_is_told_apart_from_no_allow()
    {
        var policy = """
            { "Version": "2012-10-17", "Statement": [
              { "Effect": "Allow", "Action": "ecs:*", "Resource": "*" },
              { "Effect": "Deny", "Action": "ecs:StopTask", "Resource": "arn:aws:ecs:*:*:task/prod/*" } ] }
            """;
        Assert.Equal(DecisionKind.ExplicitDeny, Evaluate(policy, Call("ecs:StopTask", Arns.Task("prod", "t"))).Kind);
        Assert.True(Evaluate(policy, Call("ecs:StopTask", Arns.Task("dev", "t"))).Allowed);
        Assert.Equal(DecisionKind.ImplicitDeny, Evaluate(policy, Call("iam:CreateUser")).Kind);
    }

    [Fact]
    public void Every_resource_of_a_call_must_be_allowed_and_the_refusal_names_the_first_that_is_not()
    {
        var policy = """{ "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": "ecs:DescribeTasks", "Resource": "arn:aws:ecs:*:*:task/A/*" } }""";
        var request = ApiActions.Describe("DescribeTasks", new DescribeTasksRequest { Cluster = "A", Tasks = { "t1", Arns.Task("B", "t2") } }, Arns, _ => null);
        Assert.Equal(new Decision(DecisionKind.ImplicitDeny, Arns.Task("B", "t2")), Evaluate(policy, request));
    }

    [Fact]
    public void NotResource_allows_everything_else()
    {
        var policy = """{ "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": "ecs:DescribeClusters", "NotResource": "arn:aws:ecs:*:*:cluster/secret" } }""";
        Assert.True(Evaluate(policy, Call("ecs:DescribeClusters", Arns.Cluster("open"))).Allowed);
        Assert.False(Evaluate(policy, Call("ecs:DescribeClusters", Arns.Cluster("secret"))).Allowed);
    }

    [Fact]
    public void A_missing_condition_key_fails_a_positive_operator_and_passes_a_negated_or_IfExists_one()
    {
        var request = Call("ecs:ListClusters");
        string With(string op) => $$"""
            { "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": "ecs:*", "Resource": "*",
              "Condition": { "{{op}}": { "ecs:cluster": "arn:aws:ecs:*:*:cluster/A" } } } }
            """;
        Assert.False(Evaluate(With("ArnLike"), request).Allowed);
        Assert.True(Evaluate(With("ArnNotLike"), request).Allowed);
        Assert.True(Evaluate(With("ArnLikeIfExists"), request).Allowed);
    }

    [Fact]
    public void Condition_values_are_alternatives_and_keys_are_case_insensitive()
    {
        var policy = """
            { "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*",
              "Condition": { "ArnEquals": { "ECS:Cluster": ["arn:aws:ecs:local:000000000000:cluster/A", "arn:aws:ecs:local:000000000000:cluster/C"] } } } }
            """;
        AuthorizationRequest In(string cluster) => ApiActions.Describe("RunTask", new RunTaskRequest { Cluster = cluster, TaskDefinition = "web:1" }, Arns, _ => null);
        Assert.True(Evaluate(policy, In("A")).Allowed);
        Assert.True(Evaluate(policy, In("C")).Allowed);
        Assert.False(Evaluate(policy, In("B")).Allowed);
        Assert.False(Evaluate(policy, In("")).Allowed); // the default cluster
    }

    [Theory]
    [InlineData("""[]""", "policyDocument: A policy document is a JSON object.")]
    [InlineData("""{ "Version": "2012-10-17" }""", "policyDocument.Statement: A policy needs at least one statement.")]
    [InlineData("""{ "Version": "2020-01-01", "Statement": [] }""", "policyDocument.Version:")]
    [InlineData("""{ "Version": "2012-10-17", "Statement": [] }""", "policyDocument.Statement: Statement is a statement or a non-empty list")]
    [InlineData("""{ "Version": "2012-10-17", "Statment": [] }""", "policyDocument.Statment: Unknown policy element.")]
    [InlineData("""{ "Statement": [{ "Effect": "Permit", "Action": "ecs:*", "Resource": "*" }] }""", "policyDocument.Statement[0].Effect:")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Resource": "*" }] }""", "policyDocument.Statement[0].Action: A statement needs an Action")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Action": "ecs:*" }] }""", "policyDocument.Statement[0].Resource: A statement needs a Resource")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Action": "RunTask", "Resource": "*" }] }""", "policyDocument.Statement[0].Action: 'RunTask' is not an action")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Action": "ecs:*", "Resource": "cluster/A" }] }""", "policyDocument.Statement[0].Resource: 'cluster/A' is not")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Action": "ecs:*", "NotAction": "ecs:X", "Resource": "*" }] }""", "policyDocument.Statement[0].NotAction: A statement has one of")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Principal": "*", "Action": "ecs:*", "Resource": "*" }] }""", "policyDocument.Statement[0].Principal: An identity policy has no Principal")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Action": "ecs:*", "Resource": "*", "Condition": { "NumericLessThan": { "a": "1" } } }] }""", "policyDocument.Statement[0].Condition.NumericLessThan: Unknown condition operator")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Action": [], "Resource": "*" }] }""", "policyDocument.Statement[0].Action: Expected a string or a non-empty list")]
    [InlineData("""{ "Statement": [{ "Effect": "Allow", "Action": "ecs:*", "Resource": "*" }""", "policyDocument: Malformed policy document:")]
    public void A_malformed_policy_is_refused_naming_the_element(string json, string message)
    {
        var error = Assert.Throws<EcsException>(() => PolicyDocument.Parse(json));
        Assert.Equal(EcsErrorType.InvalidParameterException, error.ErrorType);
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Size_and_depth_are_bounded()
    {
        var big = $$"""{ "Version": "2012-10-17", "Statement": { "Sid": "{{new string('x', 6200)}}", "Effect": "Allow", "Action": "ecs:*", "Resource": "*" } }""";
        Assert.Contains("at most 6144 characters", Assert.Throws<EcsException>(() => PolicyDocument.Parse(big)).Message, StringComparison.Ordinal);
        var deep = new string('[', 3000) + new string(']', 3000);
        Assert.StartsWith("policyDocument: Malformed policy document", Assert.Throws<EcsException>(() => PolicyDocument.Parse(deep)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wildcard_matching_does_not_backtrack_exponentially()
    {
        // A backtracking matcher takes (6000 choose 1000) steps here; this one at most 1000 x 6000.
        var pattern = string.Concat(Enumerable.Repeat("*a", 1000)) + "b";
        Assert.False(Glob.Matches(pattern, new string('a', 6000), ignoreCase: false));
        Assert.True(Glob.Matches(pattern, new string('a', 6000) + "b", ignoreCase: false));
    }
}
