using System.Text.Json.Nodes;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Grpc.Core;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// What a grpcurl user sees: requests sent as JSON through server reflection, with no generated code on
/// the client side, against the real coordinator process.
/// </summary>
public class JsonApiTests(CoordinatorFixture fixture) : IClassFixture<CoordinatorFixture>
{
    private const string Ecs = "ecslite.v1.Ecs/";

    public static TheoryData<string> CorpusNames() => new(TaskDefinitionCases.Corpus().Select(c => c.Name));

    public static TheoryData<string> InvalidCases() => new(TaskDefinitionCases.Invalid.Select(c => c.Name));

    [Fact]
    public void Reflection_exposes_the_ECS_service_and_health()
    {
        Assert.Contains("ecslite.v1.Ecs", fixture.Json.Services);
        Assert.Contains("grpc.health.v1.Health", fixture.Json.Services);
        Assert.Equal("RegisterTaskDefinitionRequest", fixture.Json.Method(Ecs + "RegisterTaskDefinition").InputType.Name);
    }

    [Fact]
    public async Task The_seed_task_definition_registers_unchanged_and_describes_whole()
    {
        var json = File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json"));
        var first = await fixture.Json.CallAsync(Ecs + "RegisterTaskDefinition", json);
        var second = await fixture.Json.CallAsync(Ecs + "RegisterTaskDefinition", json);
        var revision = second["taskDefinition"]!["revision"]!.GetValue<int>();
        Assert.Equal(first["taskDefinition"]!["revision"]!.GetValue<int>() + 1, revision);

        var described = await fixture.Json.CallAsync(Ecs + "DescribeTaskDefinition", $$"""{ "taskDefinition": "fargate-task-definition:{{revision}}" }""");
        var definition = described["taskDefinition"]!.AsObject();
        AssertContains(JsonNode.Parse(json)!, definition, "taskDefinition");
        Assert.Equal($"arn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:{revision}", definition["taskDefinitionArn"]!.GetValue<string>());
        Assert.Equal("ACTIVE", definition["status"]!.GetValue<string>());
        Assert.NotNull(definition["registeredAt"]);
        Assert.Equal(new JsonArray("EC2", "FARGATE").ToJsonString(), definition["compatibilities"]!.ToJsonString());

        var latest = await fixture.Json.CallAsync(Ecs + "DescribeTaskDefinition", """{ "taskDefinition": "fargate-task-definition" }""");
        Assert.Equal(revision, latest["taskDefinition"]!["revision"]!.GetValue<int>());
    }

    [Theory]
    [MemberData(nameof(CorpusNames))]
    public async Task Every_realistic_task_definition_registers_through_JSON_and_comes_back_whole(string name)
    {
        var json = TaskDefinitionCases.Corpus().Single(c => c.Name == name).Json;
        var registered = await fixture.Json.CallAsync(Ecs + "RegisterTaskDefinition", json);
        var arn = registered["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();

        var described = await fixture.Json.CallAsync(Ecs + "DescribeTaskDefinition", $$"""{ "taskDefinition": "{{arn}}", "include": ["TAGS"] }""");
        var sent = JsonNode.Parse(json)!.AsObject();
        var tags = sent["tags"];
        sent.Remove("tags");
        // ECS stores task cpu and memory in numeric form ("1 vCPU" becomes "1024", "2 GB" becomes "2048").
        foreach (var (member, unit) in new[] { ("cpu", "vcpu"), ("memory", "gb") })
        {
            if (sent[member]?.GetValue<string>() is { } text && text.EndsWith(unit, StringComparison.OrdinalIgnoreCase))
            {
                var number = decimal.Parse(text[..^unit.Length].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                sent[member] = ((int)(number * 1024)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        AssertContains(sent, described["taskDefinition"]!, "taskDefinition");
        if (tags is not null)
        {
            AssertContains(tags, described["tags"]!, "tags");
        }
    }

    [Theory]
    [MemberData(nameof(InvalidCases))]
    public async Task Every_invalid_task_definition_is_refused_in_ECS_words_and_changes_nothing(string name)
    {
        var invalid = TaskDefinitionCases.Invalid.Single(c => c.Name == name);
        var before = await fixture.Coordinator.Ecs.ListTaskDefinitionFamiliesAsync(new ListTaskDefinitionFamiliesRequest { Status = "ALL", FamilyPrefix = "base" });

        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Json.CallAsync(Ecs + "RegisterTaskDefinition", invalid.Json));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith($"{invalid.ErrorType}: {invalid.Field}: ", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(invalid.ErrorType, error.Trailers.GetValue("ecs-error-type"));
        Assert.Equal(invalid.Field, error.Trailers.GetValue("ecs-field"));
        var after = await fixture.Coordinator.Ecs.ListTaskDefinitionFamiliesAsync(new ListTaskDefinitionFamiliesRequest { Status = "ALL", FamilyPrefix = "base" });
        Assert.Equal(before.Families, after.Families);
    }

    [Fact]
    public async Task Unknown_fields_and_wrong_types_are_refused_before_anything_is_sent()
    {
        var unknown = await Assert.ThrowsAsync<FormatException>(() => fixture.Json.CallAsync(Ecs + "RegisterTaskDefinition",
            """{ "family": "x", "containerDefinition": [] }"""));
        Assert.Contains("no known field named containerDefinition", unknown.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<FormatException>(() => fixture.Json.CallAsync(Ecs + "RegisterTaskDefinition",
            """{ "family": "x", "containerDefinitions": [{ "name": "a", "image": "b", "memory": "lots" }] }"""));
    }

    [Fact]
    public async Task Clusters_through_JSON_including_the_default_cluster_and_missing_ones()
    {
        var created = await fixture.Json.CallAsync(Ecs + "CreateCluster", """{ "clusterName": "json-cluster", "tags": [{ "key": "site", "value": "shed" }] }""");
        Assert.Equal("ACTIVE", created["cluster"]!["status"]!.GetValue<string>());

        var described = await fixture.Json.CallAsync(Ecs + "DescribeClusters", """{ "clusters": ["default", "json-cluster", "nope"], "include": ["TAGS"] }""");
        Assert.Equal(["default", "json-cluster"], described["clusters"]!.AsArray().Select(c => c!["clusterName"]!.GetValue<string>()));
        Assert.Equal("shed", described["clusters"]![1]!["tags"]![0]!["value"]!.GetValue<string>());
        Assert.Equal("MISSING", described["failures"]![0]!["reason"]!.GetValue<string>());
        Assert.Equal("arn:aws:ecs:local:000000000000:cluster/nope", described["failures"]![0]!["arn"]!.GetValue<string>());

        var deleted = await fixture.Json.CallAsync(Ecs + "DeleteCluster", """{ "cluster": "json-cluster" }""");
        Assert.Equal("INACTIVE", deleted["cluster"]!["status"]!.GetValue<string>());
        var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Json.CallAsync(Ecs + "DeleteCluster", """{ "cluster": "json-cluster" }"""));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("ClusterNotFoundException", error.Trailers.GetValue("ecs-error-type"));
    }

    [Fact]
    public async Task Every_RPC_of_this_issue_answers_over_typed_gRPC()
    {
        var ecs = fixture.Coordinator.Ecs;
        await ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = "typed" });
        Assert.Contains("arn:aws:ecs:local:000000000000:cluster/typed", (await ecs.ListClustersAsync(new ListClustersRequest())).ClusterArns);

        var request = new RegisterTaskDefinitionRequest { Family = "typed-family", ContainerDefinitions = { new ContainerDefinition { Name = "a", Image = "busybox", Memory = 16 } } };
        var registered = await ecs.RegisterTaskDefinitionAsync(request);
        var arn = registered.TaskDefinition.TaskDefinitionArn;
        Assert.Contains(arn, (await ecs.ListTaskDefinitionsAsync(new ListTaskDefinitionsRequest { FamilyPrefix = "typed-family" })).TaskDefinitionArns);
        Assert.Contains("typed-family", (await ecs.ListTaskDefinitionFamiliesAsync(new ListTaskDefinitionFamiliesRequest { FamilyPrefix = "typed" })).Families);

        await ecs.TagResourceAsync(new TagResourceRequest { ResourceArn = arn, Tags = { new Tag { Key = "k", Value = "v" } } });
        Assert.Equal("v", (await ecs.ListTagsForResourceAsync(new ListTagsForResourceRequest { ResourceArn = arn })).Tags[0].Value);
        await ecs.UntagResourceAsync(new UntagResourceRequest { ResourceArn = arn, TagKeys = { "k" } });
        Assert.Empty((await ecs.ListTagsForResourceAsync(new ListTagsForResourceRequest { ResourceArn = arn })).Tags);

        var deregistered = await ecs.DeregisterTaskDefinitionAsync(new DeregisterTaskDefinitionRequest { TaskDefinition = arn });
        Assert.Equal("INACTIVE", deregistered.TaskDefinition.Status);
        var deleted = await ecs.DeleteTaskDefinitionsAsync(new DeleteTaskDefinitionsRequest { TaskDefinitions = { arn } });
        Assert.Equal("DELETE_IN_PROGRESS", Assert.Single(deleted.TaskDefinitions).Status);
        var gone = await Assert.ThrowsAsync<RpcException>(async () => await ecs.DescribeTaskDefinitionAsync(new DescribeTaskDefinitionRequest { TaskDefinition = arn }));
        Assert.Equal("ClientException", gone.Trailers.GetValue("ecs-error-type"));
        await ecs.DeleteClusterAsync(new DeleteClusterRequest { Cluster = "typed" });
    }

    [Fact]
    public async Task Services_through_JSON_and_their_bad_input_in_ECS_words()
    {
        await fixture.Json.CallAsync(Ecs + "RegisterTaskDefinition", """{ "family": "json-svc", "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 16 }] }""");
        var created = await fixture.Json.CallAsync(Ecs + "CreateService", """
            { "serviceName": "json-svc", "taskDefinition": "json-svc", "desiredCount": 0,
              "deploymentConfiguration": { "minimumHealthyPercent": 50, "maximumPercent": 150, "deploymentCircuitBreaker": { "enable": true, "rollback": true } },
              "placementStrategy": [{ "type": "spread", "field": "attribute:ecs.availability-zone" }], "propagateTags": "SERVICE",
              "tags": [{ "key": "team", "value": "shed" }] }
            """);
        var service = created["service"]!;
        Assert.Equal(("ACTIVE", "REPLICA", "arn:aws:ecs:local:000000000000:service/default/json-svc"),
            (service["status"]!.GetValue<string>(), service["schedulingStrategy"]!.GetValue<string>(), service["serviceArn"]!.GetValue<string>()));
        Assert.Equal("PRIMARY", service["deployments"]![0]!["status"]!.GetValue<string>());

        var listed = await fixture.Json.CallAsync(Ecs + "ListServices", "{}");
        Assert.Contains("arn:aws:ecs:local:000000000000:service/default/json-svc", listed["serviceArns"]!.AsArray().Select(a => a!.GetValue<string>()));
        var described = await fixture.Json.CallAsync(Ecs + "DescribeServices", """{ "services": ["json-svc", "nope"], "include": ["TAGS"] }""");
        Assert.Equal("shed", described["services"]![0]!["tags"]![0]!["value"]!.GetValue<string>());
        Assert.Equal("MISSING", described["failures"]![0]!["reason"]!.GetValue<string>());

        foreach (var (method, json, type, field) in new[]
        {
            ("CreateService", """{ "serviceName": "json-svc", "taskDefinition": "json-svc", "desiredCount": 1 }""", "InvalidParameterException", "serviceName"),
            ("CreateService", """{ "serviceName": "x", "taskDefinition": "json-svc", "desiredCount": -2 }""", "InvalidParameterException", "desiredCount"),
            ("CreateService", """{ "cluster": "nowhere", "serviceName": "x", "taskDefinition": "json-svc", "desiredCount": 1 }""", "ClusterNotFoundException", "cluster"),
            ("UpdateService", """{ "service": "nope", "desiredCount": 1 }""", "ServiceNotFoundException", "service"),
            ("UpdateService", """{ "service": "json-svc", "deploymentConfiguration": { "minimumHealthyPercent": 100, "maximumPercent": 90 } }""", "InvalidParameterException", "deploymentConfiguration.minimumHealthyPercent"),
        })
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => fixture.Json.CallAsync(Ecs + method, json));
            Assert.Equal((type, field), (error.Trailers.GetValue("ecs-error-type"), error.Trailers.GetValue("ecs-field")));
        }

        var unchanged = await fixture.Json.CallAsync(Ecs + "DescribeServices", """{ "services": ["json-svc"] }""");
        Assert.Equal(50, unchanged["services"]![0]!["deploymentConfiguration"]!["minimumHealthyPercent"]!.GetValue<int>());
        var deleted = await fixture.Json.CallAsync(Ecs + "DeleteService", """{ "service": "json-svc" }""");
        Assert.Equal("DRAINING", deleted["service"]!["status"]!.GetValue<string>());
    }

    /// <summary>Every value in <paramref name="expected"/> is in <paramref name="actual"/> at the same place, with the same value.</summary>
    private static void AssertContains(JsonNode expected, JsonNode actual, string path)
    {
        switch (expected)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    var other = actual.AsObject()[key];
                    if (value is JsonArray { Count: 0 } && other is null)
                    {
                        continue; // proto3 JSON omits empty lists
                    }

                    Assert.True(other is not null, $"{path}.{key} is missing from the reply");
                    AssertContains(value!, other!, $"{path}.{key}");
                }

                break;
            case JsonArray array:
                var actualArray = actual.AsArray();
                Assert.True(array.Count == actualArray.Count, $"{path} has {actualArray.Count} items, expected {array.Count}");
                for (var i = 0; i < array.Count; i++)
                {
                    AssertContains(array[i]!, actualArray[i]!, $"{path}[{i}]");
                }

                break;
            default:
                Assert.True(JsonNode.DeepEquals(expected, actual) || expected.ToJsonString() == $"\"{actual}\"" || $"\"{expected}\"" == actual.ToJsonString(),
                    $"{path}: expected {expected.ToJsonString()}, got {actual.ToJsonString()}");
                break;
        }
    }
}
