using System.Net;
using System.Net.Http.Headers;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Both metrics endpoints scraped during a run of tasks (a real coordinator and agent, real containers),
/// their figures checked against the run's own counts: tasks placed by RunTask and by a service,
/// placements refused for want of memory, calls by result, tasks by status, each container's usage.
/// </summary>
public sealed class MetricsTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    private CoordinatorProcess Coordinator => _cluster.Coordinator;

    private AgentProcess Agent => _cluster.Agent;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(new Dictionary<string, string>
    {
        ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
        ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
    });

    public async Task DisposeAsync() => await (_cluster?.DisposeAsync() ?? ValueTask.CompletedTask);

    private Uri MetricsUri => new(Coordinator.Address.Replace("http://", "https://", StringComparison.Ordinal) + "/metrics");

    private async Task<(HttpStatusCode Status, string Body)> ScrapeAsync(AuthenticationHeaderValue? authorization)
    {
        using var http = new HttpClient(CoordinatorProcess.TrustingHandler(Coordinator.CaFile));
        using var request = new HttpRequestMessage(HttpMethod.Get, MetricsUri) { Headers = { Authorization = authorization } };
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static AuthenticationHeaderValue Basic((string Id, string Secret) key) =>
        new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{key.Id}:{key.Secret}")));

    [Fact]
    public async Task Both_endpoints_count_what_the_run_did()
    {
        var ecs = Coordinator.Ecs;
        // A container that reads and writes through its network and disk, so its counters move.
        await ecs.RegisterTaskDefinitionAsync(JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
            { "family": "busy", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32,
              "entryPoint": ["sh", "-c"], "command": ["dd if=/dev/urandom of=/tmp/x bs=64k count=64 2>/dev/null; trap 'exit 0' TERM; sleep 600 & wait"] }] }
            """));
        await ecs.RegisterTaskDefinitionAsync(JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
            { "family": "huge", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 100000000 }] }
            """));

        var run = await ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "busy", Count = 3 });
        Assert.Equal(3, run.Tasks.Count);
        var refused = await ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "huge", Count = 2 });
        Assert.Equal(["RESOURCE:MEMORY", "RESOURCE:MEMORY"], refused.Failures.Select(f => f.Reason));
        await ecs.CreateServiceAsync(new CreateServiceRequest { ServiceName = "web", TaskDefinition = "busy", DesiredCount = 2 });
        await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "busy", Count = 11 }));

        // Every task RUNNING, as DescribeTasks shows it.
        List<EcsLite.Api.V1.Task> running = [];
        await Eventually.HoldsAsync(async () =>
        {
            var arns = (await ecs.ListTasksAsync(new ListTasksRequest { DesiredStatus = "RUNNING" })).TaskArns;
            running = await ecs.DescribeAllTasksAsync(arns);
            return running.Count == 5 && running.All(t => t.LastStatus == "RUNNING");
        }, TimeSpan.FromSeconds(60), "five RUNNING tasks");

        var (status, body) = await ScrapeAsync(Basic(Coordinator.AdminKey));
        Assert.True(status == HttpStatusCode.OK, body);
        var coordinator = PrometheusText.Parse(body);
        Assert.Equal(5, coordinator.Sum("ecslite_placements_total", "cluster=default"));
        Assert.Equal(2, coordinator.Sum("ecslite_placement_failures_total", "cluster=default", "reason=RESOURCE:MEMORY"));
        Assert.Equal(5, coordinator.Sum("ecslite_tasks", "cluster=default", "last_status=RUNNING", "desired_status=RUNNING"));
        Assert.Equal(2, coordinator.Sum("ecslite_api_requests_total", "action=ecs:RunTask", "protocol=grpc", "result=OK"));
        Assert.Equal(1, coordinator.Sum("ecslite_api_requests_total", "action=ecs:RunTask", "protocol=grpc", "result=InvalidParameterException"));
        Assert.Equal(3, coordinator.Sum("ecslite_api_request_duration_seconds_count", "action=ecs:RunTask", "protocol=grpc")); // the refused call is timed too
        Assert.Equal(1, coordinator.Sum("ecslite_agents_connected"));
        Assert.Equal(1, coordinator.Sum("ecslite_container_instances", "cluster=default", "status=ACTIVE", "agent_connected=true"));
        Assert.Equal(2, coordinator.Sum("ecslite_service_desired_tasks", "service=web"));
        Assert.Equal(2, coordinator.Sum("ecslite_service_running_tasks", "service=web"));
        Assert.True(coordinator.Sum("ecslite_service_scheduler_pass_duration_seconds_count", "result=ok") >= 1);
        Assert.True(coordinator.Sum("ecslite_store_commit_duration_seconds_count") >= 10);
        Assert.True(coordinator.Sum("ecslite_store_size_bytes") > 0);

        // The agent: each running container's usage, its Docker calls, its channel.
        using var http = new HttpClient();
        var agent = PrometheusText.Parse(await http.GetStringAsync(Agent.MetricsUrl));
        Assert.Equal(5, agent.Sum("ecslite_agent_tasks", "last_status=RUNNING"));
        Assert.Equal(1, agent.Sum("ecslite_agent_channel_connected"));
        Assert.True(agent.Sum("ecslite_agent_docker_request_duration_seconds_count", "operation=containers.start") >= 5);
        foreach (var task in running)
        {
            var labels = new[] { $"task_arn={task.TaskArn}", "family=busy", "container=app" };
            Assert.True(agent.Sum("ecslite_agent_container_memory_working_set_bytes", labels) > 0, $"no memory for {task.TaskArn}");
            Assert.True(agent.Sum("ecslite_agent_container_cpu_seconds_total", labels) > 0, $"no CPU time for {task.TaskArn}");
            Assert.Single(agent, s => s.Name == "ecslite_agent_container_network_receive_bytes_total" && s.Labels["task_arn"] == task.TaskArn);
        }

        // Every series the Grafana dashboard in packaging/ plots is one the two endpoints serve.
        var served = coordinator.Concat(agent).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var grafana = File.ReadAllText(Path.Combine(RepoPaths.Root, "packaging", "grafana", "ecslite-dashboard.json"));
        var plotted = System.Text.RegularExpressions.Regex.Matches(grafana, @"\b(ecslite_[a-z_]+|process_[a-z_]+)").Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        Assert.True(plotted.Count >= 15, string.Join(", ", plotted));
        Assert.True(plotted.IsSubsetOf(served), $"plotted but not served: {string.Join(", ", plotted.Except(served))}");

        // A stopped task's container leaves the agent's scrape.
        await ecs.StopTaskAsync(new StopTaskRequest { Task = run.Tasks[0].TaskArn });
        await Eventually.HoldsAsync(async () => !(await http.GetStringAsync(Agent.MetricsUrl)).Contains(run.Tasks[0].TaskArn, StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the stopped task's series gone");
    }

    [Fact]
    public async Task The_coordinators_endpoint_wants_a_key_whose_policy_allows_reading_metrics()
    {
        var (status, body) = await ScrapeAsync(null);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.StartsWith("MissingAuthenticationTokenException", body, StringComparison.Ordinal);
        var admin = Coordinator.AdminKey;
        Assert.Equal(HttpStatusCode.Unauthorized, (await ScrapeAsync(Basic((admin.AccessKeyId, admin.Secret + "x")))).Status);

        var iam = new Iam.IamClient(Coordinator.Channel);
        await iam.CreateUserAsync(new CreateUserRequest { UserName = "reader" });
        await iam.PutUserPolicyAsync(new PutUserPolicyRequest
        {
            UserName = "reader",
            PolicyName = "read",
            PolicyDocument = """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:Describe*"], "Resource": "*" }] }""",
        });
        var key = (await iam.CreateAccessKeyAsync(new CreateAccessKeyRequest { UserName = "reader" })).AccessKey;
        (status, body) = await ScrapeAsync(new AuthenticationHeaderValue("Bearer", $"{key.AccessKeyId}:{key.SecretAccessKey}"));
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("is not authorized to perform: cloudwatch:GetMetricData", body, StringComparison.Ordinal);

        await iam.PutUserPolicyAsync(new PutUserPolicyRequest
        {
            UserName = "reader",
            PolicyName = "metrics",
            PolicyDocument = """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": "*" }] }""",
        });
        (status, body) = await ScrapeAsync(Basic((key.AccessKeyId, key.SecretAccessKey)));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("# TYPE ecslite_api_requests_total counter", body, StringComparison.Ordinal);
    }
}
