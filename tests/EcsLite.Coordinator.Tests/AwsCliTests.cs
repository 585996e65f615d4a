using System.Text.Json.Nodes;
using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The ECS JSON API with the real clients: Debian's AWS CLI v2 and boto3 against a real coordinator and
/// agent, signed with SigV4 by access keys; and every ECS action reachable both ways with equal answers.
/// </summary>
public sealed class AwsCliTests : IAsyncLifetime
{
    private const string Address = "127.0.0.6";
    private TestCluster _cluster = null!;
    private string _home = null!;

    private CoordinatorProcess Coordinator => _cluster.Coordinator;

    private AgentProcess Agent => _cluster.Agent;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync(new Dictionary<string, string>
        {
            ["ECSLITE_HOST_PORT_ADDRESS"] = Address,
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
        });
        _home = CoordinatorProcess.TempDirectory("ecslite-aws-home");
    }

    public async Task DisposeAsync()
    {
        await (_cluster?.DisposeAsync() ?? ValueTask.CompletedTask);
        if (_home is not null)
        {
            Directory.Delete(_home, recursive: true);
        }
    }

    /// <summary>The coordinator's TLS port (Debian's CLI and botocore predate AWS_ENDPOINT_URL: it is passed as --endpoint-url / endpoint_url).</summary>
    private string Endpoint => Coordinator.Address.Replace("http://", "https://", StringComparison.Ordinal);

    /// <summary>The environment the CLI and SDK run with: the administrator's credentials file as is, the cluster CA, the endpoint, region local.</summary>
    private Dictionary<string, string> Environment((string Id, string Secret)? key = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["HOME"] = _home,
            ["AWS_CONFIG_FILE"] = "/dev/null",
            ["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(Coordinator.DataDir, "admin-credentials"),
            ["AWS_CA_BUNDLE"] = Coordinator.CaFile,
            ["AWS_REGION"] = "local",
            ["AWS_DEFAULT_REGION"] = "local", // what Debian's botocore reads
            ["AWS_PAGER"] = "",
            ["AWS_RETRY_MODE"] = "standard",
            ["AWS_MAX_ATTEMPTS"] = "1",
        };
        if (key is { } k)
        {
            environment["AWS_ACCESS_KEY_ID"] = k.Id;
            environment["AWS_SECRET_ACCESS_KEY"] = k.Secret;
        }

        return environment;
    }

    private async Task<JsonNode?> AwsAsync(params string[] args)
    {
        var (code, output) = await ProcessRunner.RunAsync("/usr/bin/aws", [.. args, "--output", "json", "--endpoint-url", Endpoint], Environment(), timeoutSeconds: 240);
        Assert.True(code == 0, $"aws {string.Join(' ', args)}: exit {code}: {output}");
        return output.Trim().Length == 0 ? null : JsonNode.Parse(output);
    }

    private async Task<string> AwsFailsAsync((string Id, string Secret)? key, params string[] args)
    {
        var (code, output) = await ProcessRunner.RunAsync("/usr/bin/aws", [.. args, "--endpoint-url", Endpoint], Environment(key), timeoutSeconds: 60);
        Assert.True(code != 0, $"aws {string.Join(' ', args)} should have failed: {output}");
        return output;
    }

    [Fact]
    public async Task The_AWS_CLI_registers_runs_waits_for_describes_and_stops_the_example_and_runs_a_service_through_its_life()
    {
        var registered = await AwsAsync("ecs", "register-task-definition", "--cli-input-json", $"file://{Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")}");
        Assert.Equal("fargate-task-definition", registered!["taskDefinition"]!["family"]!.GetValue<string>());
        Assert.True(DateTimeOffset.Parse(registered["taskDefinition"]!["registeredAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > DateTimeOffset.UtcNow.AddMinutes(-5));

        var run = await AwsAsync("ecs", "run-task", "--task-definition", "fargate-task-definition", "--launch-type", "FARGATE", "--started-by", "aws-cli",
            "--network-configuration", "awsvpcConfiguration={subnets=[subnet-home],assignPublicIp=DISABLED}");
        var taskArn = run!["tasks"]![0]!["taskArn"]!.GetValue<string>();
        await AwsAsync("ecs", "wait", "tasks-running", "--tasks", taskArn);
        var described = await AwsAsync("ecs", "describe-tasks", "--tasks", taskArn);
        var task = described!["tasks"]![0]!;
        Assert.Equal(("RUNNING", "aws-cli"), (task["lastStatus"]!.GetValue<string>(), task["startedBy"]!.GetValue<string>()));
        Assert.True(DateTimeOffset.Parse(task["startedAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > DateTimeOffset.UtcNow.AddMinutes(-5));
        Assert.Contains("Congratulations!", await Eventually.PageAsync($"http://{Address}:80/", TimeSpan.FromSeconds(20)), StringComparison.Ordinal);

        // Its output through CloudWatch Logs' calls: the group and stream the awslogs options name, the
        // lines (busybox httpd -v logs each response), and aws logs tail following new ones.
        using var http = new HttpClient();
        await http.GetAsync($"http://{Address}:80/missing-page");
        const string Group = "/ecs/fargate-task-definition";
        var stream = $"ecs/sample-fargate-app/{taskArn.Split('/')[^1]}";
        Assert.Contains(Group, (await AwsAsync("logs", "describe-log-groups"))!["logGroups"]!.AsArray().Select(g => g!["logGroupName"]!.GetValue<string>()));
        Assert.Contains(stream, (await AwsAsync("logs", "describe-log-streams", "--log-group-name", Group))!["logStreams"]!.AsArray().Select(g => g!["logStreamName"]!.GetValue<string>()));
        await Eventually.HoldsAsync(async () => (await AwsAsync("logs", "get-log-events", "--log-group-name", Group, "--log-stream-name", stream))!["events"]!.AsArray()
            .Any(e => e!["message"]!.GetValue<string>().Contains("response:404", StringComparison.Ordinal)), TimeSpan.FromSeconds(20), "the 404 in get-log-events");
        await using (var tail = TestProcess.Start(["/usr/bin/aws", "logs", "tail", Group, "--follow", "--since", "10m", "--format", "short", "--endpoint-url", Endpoint], Environment()))
        {
            await tail.WaitForOutputAsync("response:404", TimeSpan.FromSeconds(30));
            var before = Count(tail.Output, "response:404");
            await http.GetAsync($"http://{Address}:80/another-missing-page");
            await Eventually.HoldsAsync(() => Count(tail.Output, "response:404") > before, TimeSpan.FromSeconds(30), "a new line while following");
        }

        await AwsAsync("ecs", "stop-task", "--task", taskArn, "--reason", "done from the CLI");
        await AwsAsync("ecs", "wait", "tasks-stopped", "--tasks", taskArn);
        var stopped = (await AwsAsync("ecs", "describe-tasks", "--tasks", taskArn))!["tasks"]![0]!;
        Assert.Equal(("STOPPED", "done from the CLI"), (stopped["lastStatus"]!.GetValue<string>(), stopped["stoppedReason"]!.GetValue<string>()));

        // A service: created, stable, a new revision rolled out, scaled to 0, deleted, inactive.
        await AwsAsync("ecs", "create-service", "--service-name", "web", "--task-definition", "fargate-task-definition:1", "--desired-count", "1",
            "--launch-type", "FARGATE", "--deployment-configuration", "maximumPercent=100,minimumHealthyPercent=0",
            "--network-configuration", "awsvpcConfiguration={subnets=[subnet-home]}");
        await AwsAsync("ecs", "wait", "services-stable", "--services", "web");
        await AwsAsync("ecs", "register-task-definition", "--cli-input-json", $"file://{Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")}");
        await AwsAsync("ecs", "update-service", "--service", "web", "--task-definition", "fargate-task-definition:2");
        await AwsAsync("ecs", "wait", "services-stable", "--services", "web");
        var service = (await AwsAsync("ecs", "describe-services", "--services", "web"))!["services"]![0]!;
        Assert.EndsWith("fargate-task-definition:2", service["taskDefinition"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(1, service["runningCount"]!.GetValue<int>());
        var serviceArn = service["serviceArn"]!.GetValue<string>();

        await AwsAsync("ecs", "tag-resource", "--resource-arn", serviceArn, "--tags", "key=team,value=home");
        Assert.Equal("home", (await AwsAsync("ecs", "list-tags-for-resource", "--resource-arn", serviceArn))!["tags"]![0]!["value"]!.GetValue<string>());
        await AwsAsync("ecs", "untag-resource", "--resource-arn", serviceArn, "--tag-keys", "team");
        Assert.Empty((await AwsAsync("ecs", "list-tags-for-resource", "--resource-arn", serviceArn))!["tags"]!.AsArray());

        // An empty list is not an absent one: [] clears the service's placement strategy (as Terraform relies on).
        await AwsAsync("ecs", "update-service", "--service", "web", "--placement-strategy", "type=spread,field=instanceId");
        Assert.Single((await AwsAsync("ecs", "describe-services", "--services", "web"))!["services"]![0]!["placementStrategy"]!.AsArray());
        await AwsAsync("ecs", "update-service", "--service", "web", "--desired-count", "1");
        Assert.Single((await AwsAsync("ecs", "describe-services", "--services", "web"))!["services"]![0]!["placementStrategy"]!.AsArray());
        await AwsAsync("ecs", "update-service", "--service", "web", "--placement-strategy", "[]");
        Assert.Empty((await AwsAsync("ecs", "describe-services", "--services", "web"))!["services"]![0]!["placementStrategy"]!.AsArray());

        await AwsAsync("ecs", "update-service", "--service", "web", "--desired-count", "0");
        await AwsAsync("ecs", "wait", "services-stable", "--services", "web");
        await AwsAsync("ecs", "delete-service", "--service", "web");
        await AwsAsync("ecs", "wait", "services-inactive", "--services", "web");

        // Everything listed and described.
        Assert.Contains(Agent.ContainerInstanceArn, (await AwsAsync("ecs", "list-container-instances"))!["containerInstanceArns"]!.AsArray().Select(a => a!.GetValue<string>()));
        var instance = (await AwsAsync("ecs", "describe-container-instances", "--container-instances", Agent.ContainerInstanceArn!))!["containerInstances"]![0]!;
        Assert.True(instance["agentConnected"]!.GetValue<bool>());
        Assert.Equal(2, (await AwsAsync("ecs", "list-task-definitions"))!["taskDefinitionArns"]!.AsArray().Count);
        Assert.Equal(["fargate-task-definition"], (await AwsAsync("ecs", "list-task-definition-families"))!["families"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.Contains(taskArn, (await AwsAsync("ecs", "list-tasks", "--desired-status", "STOPPED"))!["taskArns"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("ACTIVE", (await AwsAsync("ecs", "describe-clusters"))!["clusters"]![0]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_bad_signature_an_unknown_or_disabled_key_a_wrong_scope_and_a_denied_action_fail_as_AWS_fails_them()
    {
        var admin = Coordinator.AdminKey;
        Assert.Contains("InvalidSignatureException", await AwsFailsAsync((admin.AccessKeyId, admin.Secret + "x"), "ecs", "list-clusters"), StringComparison.Ordinal);
        Assert.Contains("UnrecognizedClientException", await AwsFailsAsync(("AKIAAAAAAAAAAAAAAAAA", admin.Secret), "ecs", "list-clusters"), StringComparison.Ordinal);
        Assert.Contains("Credential should be scoped to a valid region", await AwsFailsAsync(null, "ecs", "list-clusters", "--region", "us-east-1"), StringComparison.Ordinal);

        var iam = new Iam.IamClient(Coordinator.Channel);
        await iam.CreateUserAsync(new CreateUserRequest { UserName = "reader" });
        await iam.PutUserPolicyAsync(new PutUserPolicyRequest
        {
            UserName = "reader",
            PolicyName = "read",
            PolicyDocument = """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*" }] }""",
        });
        var key = (await iam.CreateAccessKeyAsync(new CreateAccessKeyRequest { UserName = "reader" })).AccessKey;
        var reader = (key.AccessKeyId, key.SecretAccessKey);
        var (code, output) = await ProcessRunner.RunAsync("/usr/bin/aws", ["ecs", "list-clusters", "--endpoint-url", Endpoint], Environment(reader));
        Assert.True(code == 0, output);
        var denied = await AwsFailsAsync(reader, "ecs", "create-cluster", "--cluster-name", "not-mine");
        Assert.Contains("AccessDeniedException", denied, StringComparison.Ordinal);
        Assert.Contains("user/reader is not authorized to perform: ecs:CreateCluster", denied, StringComparison.Ordinal);

        await iam.UpdateAccessKeyAsync(new UpdateAccessKeyRequest { UserName = "reader", AccessKeyId = key.AccessKeyId, Status = "Inactive" });
        Assert.Contains("UnrecognizedClientException", await AwsFailsAsync(reader, "ecs", "list-clusters"), StringComparison.Ordinal);
        var audit = await Coordinator.AuditAsync(lines => lines.Any(l => l.Contains("ecs:CreateCluster", StringComparison.Ordinal)));
        Assert.Contains(audit, l => l.Contains("user/reader", StringComparison.Ordinal) && l.Contains("AccessDeniedException", StringComparison.Ordinal));

        // A body of the wrong shape, an unknown member and an unknown action are refused in AWS's words, naming what is wrong.
        using var http = new HttpClient(CoordinatorProcess.TrustingHandler(Coordinator.CaFile));
        var signed = new AwsJsonClient(http, new Uri(Endpoint), Coordinator.AdminKey);
        foreach (var (target, body, type, says) in new[]
        {
            ("AmazonEC2ContainerServiceV20141113.ListClusters", """{"maxResults": "ten"}""", "SerializationException", "maxResults: expected number"),
            ("AmazonEC2ContainerServiceV20141113.ListClusters", """{"maxResult": 10}""", "SerializationException", "has no member 'maxResult'"),
            ("AmazonEC2ContainerServiceV20141113.ListClusters", "[1, 2", "SerializationException", "not valid JSON"),
            ("AmazonEC2ContainerServiceV20141113.DescribeClusters", """{"clusters": [{"nested": {"deeper": []}}]}""", "SerializationException", "clusters[0]: expected string"),
            ("AmazonEC2ContainerServiceV20141113.LaunchRockets", "{}", "UnknownOperationException", "LaunchRockets"),
            ("AmazonEC2ContainerServiceV20141113.ListClusters", """{"maxResults": 1000}""", "InvalidParameterException", "maxResults"),
        })
        {
            using var response = await signed.PostAsync(target, body);
            var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal((400, type), ((int)response.StatusCode, error["__type"]!.GetValue<string>()));
            Assert.Contains(says, error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // Signed more than 15 minutes from the coordinator's clock, either way (a correct signature otherwise).
        foreach (var skew in new[] { -20, 20 })
        {
            using var response = await signed.PostAsync("AmazonEC2ContainerServiceV20141113.ListClusters", "{}", signedAt: DateTimeOffset.UtcNow.AddMinutes(skew));
            var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal("InvalidSignatureException", error["__type"]!.GetValue<string>());
            Assert.StartsWith("Signature expired", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        using var inTime = await signed.PostAsync("AmazonEC2ContainerServiceV20141113.ListClusters", "{}", signedAt: DateTimeOffset.UtcNow.AddMinutes(-10));
        Assert.True(inTime.IsSuccessStatusCode, await inTime.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Boto3_runs_the_example_to_RUNNING_and_stops_it()
    {
        var script = Path.Combine(_home, "flow.py");
        await File.WriteAllTextAsync(script, $$$"""
            import json, boto3
            ecs = boto3.client("ecs", endpoint_url="{{{Endpoint}}}")
            with open("{{{Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")}}}") as f:
                ecs.register_task_definition(**json.load(f))
            arn = ecs.run_task(taskDefinition="fargate-task-definition", launchType="FARGATE",
                networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-home"]}})["tasks"][0]["taskArn"]
            ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
            print("running", task["lastStatus"], task["startedAt"].isoformat())
            ecs.stop_task(task=arn, reason="boto3")
            ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            print("stopped", ecs.describe_tasks(tasks=[arn])["tasks"][0]["stoppedReason"])
            """);
        // Debian's python3 and python3-boto3, not whatever else is on the PATH.
        var (code, output) = await ProcessRunner.RunAsync("/usr/bin/python3", [script], Environment(), timeoutSeconds: 180);
        Assert.True(code == 0, output);
        Assert.Matches(@"running RUNNING 20\d\d-", output);
        Assert.Contains("stopped boto3", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_AWS_SDK_for_JavaScript_runs_the_example_to_RUNNING_and_stops_it()
    {
        // tests/js holds the SDK (npm ci, by test.sh); node is the machine's.
        var directory = Path.Combine(RepoPaths.Root, "tests", "js");
        Assert.True(Directory.Exists(Path.Combine(directory, "node_modules", "@aws-sdk", "client-ecs")), "tests/js has no node_modules: run npm ci there (test.sh does)");
        var (id, secret) = Coordinator.AdminKey;
        var environment = Environment((id, secret));
        environment["ECSLITE_ENDPOINT"] = Endpoint;
        environment["NODE_EXTRA_CA_CERTS"] = Coordinator.CaFile;
        var (code, output) = await ProcessRunner.RunAsync("node", [Path.Combine(directory, "ecs-flow.mjs"), Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")], environment, timeoutSeconds: 240);
        Assert.True(code == 0, output);
        Assert.Contains("registered arn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:1 true", output, StringComparison.Ordinal);
        Assert.Matches(@"running RUNNING js-sdk 20\d\d-", output);
        Assert.Contains("stopped STOPPED js-sdk", output, StringComparison.Ordinal);
        Assert.Contains("error ClientException 400", output, StringComparison.Ordinal);
    }

    /// <summary>The JSON API's target and SigV4 service of each unary RPC it answers (RotateKeyOnDemand, EcsLite's own, is gRPC only).</summary>
    private static IEnumerable<(Google.Protobuf.Reflection.MethodDescriptor Method, string Target, string Service)> JsonActions() =>
        EcsReflection.Descriptor.Services.Single(s => s.Name == "Ecs").Methods.Select(m => (m, $"AmazonEC2ContainerServiceV20141113.{m.Name}", "ecs"))
            .Concat(LogsReflection.Descriptor.Services.Single(s => s.Name == "CloudWatchLogs").Methods.Select(m => (m, $"Logs_20140328.{m.Name}", "logs")))
            .Concat(SecretsReflection.Descriptor.Services.Single().Methods.Where(m => m.Name != "RotateKeyOnDemand").Select(m =>
                m.Name.Contains("Parameter", StringComparison.Ordinal) ? (m, $"AmazonSSM.{m.Name}", "ssm") : (m, $"secretsmanager.{m.Name}", "secretsmanager")))
            .Where(a => !a.Item1.IsServerStreaming && !a.Item1.IsClientStreaming);

    [Fact]
    public async Task Every_action_of_the_JSON_API_is_reachable_over_JSON_and_gRPC_with_the_same_answer()
    {
        var json = await DynamicJsonClient.ConnectAsync(Coordinator.Channel);
        using var http = new HttpClient(CoordinatorProcess.TrustingHandler(Coordinator.CaFile));
        var signed = new AwsJsonClient(http, new Uri(Endpoint), Coordinator.AdminKey);
        var actions = JsonActions().ToList();
        Assert.Equal(30 + 4 + 11, actions.Count); // ECS's, CloudWatch Logs' and the secret stores' actions
        foreach (var (method, target, service) in actions)
        {
            // The same request both ways: an empty one (read calls answer, write calls refuse in the same words).
            var body = "{}";
            string overGrpc;
            try
            {
                overGrpc = Normalize((await json.CallAsync($"{method.Service.FullName}/{method.Name}", body)).ToJsonString());
            }
            catch (Grpc.Core.RpcException e)
            {
                overGrpc = e.Status.Detail.Split(':')[0];
            }

            var response = await signed.PostAsync(target, body, service);
            var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            var overJson = response.IsSuccessStatusCode ? Normalize(answer.ToJsonString()) : answer["__type"]!.GetValue<string>();
            Assert.True(overGrpc == overJson, $"{method.Name}: gRPC {overGrpc} / JSON {overJson}");
        }

        // Timestamps on the wire are epoch seconds, as AWS sends them (the CLI shows them as dates).
        await json.CallAsync("ecslite.v1.Ecs/RegisterTaskDefinition", File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));
        using var described = await signed.PostAsync("AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition", """{"taskDefinition": "fargate-task-definition"}""");
        var registeredAt = JsonNode.Parse(await described.Content.ReadAsStringAsync())!["taskDefinition"]!["registeredAt"]!.GetValue<double>();
        Assert.InRange(registeredAt, DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeSeconds());
    }

    private static int Count(string text, string what) => (text.Length - text.Replace(what, "", StringComparison.Ordinal).Length) / what.Length;

    /// <summary>The answer with what legitimately differs between two calls (ids, times) taken out, and empty lists as absent.</summary>
    private static string Normalize(string json)
    {
        var node = JsonNode.Parse(json)!;
        void Walk(JsonNode? n)
        {
            if (n is JsonObject o)
            {
                foreach (var (name, value) in o.ToList())
                {
                    if (value is JsonArray { Count: 0 } || name.EndsWith("At", StringComparison.Ordinal) || name is "registeredAt" or "createdAt" or "version")
                    {
                        o.Remove(name);
                    }
                    else
                    {
                        Walk(value);
                    }
                }
            }
            else if (n is JsonArray a)
            {
                foreach (var item in a)
                {
                    Walk(item);
                }
            }
        }

        Walk(node);
        return node.ToJsonString();
    }
}
