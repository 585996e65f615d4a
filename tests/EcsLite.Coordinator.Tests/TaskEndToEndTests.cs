using EcsLite.Api.V1;
using EcsLite.Testing;
using Grpc.Core;
using EcsTask = EcsLite.Api.V1.Task;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The whole path with real processes: RunTask on the real coordinator, placed on the real agent, run on
/// the real Docker engine, described, its logs streamed back over the agent's channel, stopped.
/// </summary>
public sealed class TaskEndToEndTests : IAsyncLifetime
{
    private const string Ecs = "ecslite.v1.Ecs/";
    private const string Address = "127.0.0.2";
    private TestCluster _cluster = null!;
    private DynamicJsonClient _json = null!;

    private CoordinatorProcess Coordinator => _cluster.Coordinator;

    private AgentProcess Agent => _cluster.Agent;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync(new Dictionary<string, string>
        {
            // Its own loopback address: the agent tests publish the seed's port 80 on 127.0.0.1 meanwhile.
            ["ECSLITE_HOST_PORT_ADDRESS"] = Address,
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s",
        });
        _json = await DynamicJsonClient.ConnectAsync(Coordinator.Channel);
    }

    public async Task DisposeAsync() => await (_cluster?.DisposeAsync() ?? ValueTask.CompletedTask);

    [Fact]
    public async Task The_seed_runs_with_RunTask_serves_its_page_shows_its_bindings_streams_its_logs_and_stops()
    {
        await _json.CallAsync(Ecs + "RegisterTaskDefinition", File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));
        var run = await _json.CallAsync(Ecs + "RunTask", """
            { "taskDefinition": "fargate-task-definition", "launchType": "FARGATE", "startedBy": "e2e",
              "networkConfiguration": { "awsvpcConfiguration": { "subnets": ["subnet-home"], "assignPublicIp": "DISABLED" } } }
            """);
        Assert.True(run["failures"] is null || run["failures"]!.AsArray().Count == 0, run["failures"]?.ToJsonString());
        var taskArn = run["tasks"]![0]!["taskArn"]!.GetValue<string>();
        Assert.Equal("PROVISIONING", run["tasks"]![0]!["lastStatus"]!.GetValue<string>());
        Assert.Equal(Agent.ContainerInstanceArn, run["tasks"]![0]!["containerInstanceArn"]!.GetValue<string>());

        var task = await WaitForAsync(taskArn, t => t.LastStatus == "RUNNING");
        Assert.Equal("RUNNING", task.DesiredStatus);
        Assert.Equal("FARGATE", task.LaunchType);
        Assert.Equal("family:fargate-task-definition", task.Group);
        Assert.Equal("e2e", task.StartedBy);
        Assert.Equal(("256", "512"), (task.Cpu, task.Memory));
        var container = Assert.Single(task.Containers);
        Assert.Equal("RUNNING", container.LastStatus);
        Assert.NotEmpty(container.RuntimeId);
        var binding = Assert.Single(container.NetworkBindings);
        Assert.Equal((80, 80, "tcp"), (binding.ContainerPort, binding.HostPort, binding.Protocol));
        Assert.NotNull(task.StartedAt);
        Assert.NotNull(task.PullStartedAt);
        var eni = Assert.Single(task.Attachments);
        Assert.Equal(("ElasticNetworkInterface", "ATTACHED"), (eni.Type, eni.Status));
        Assert.Matches(@"^\d+\.\d+\.\d+\.\d+$", eni.Details.Single(d => d.Name == "privateIPv4Address").Value);

        using var http = new HttpClient();
        var page = await Eventually.PageAsync($"http://{Address}:80/", TimeSpan.FromSeconds(20));
        Assert.Contains("Congratulations!", page, StringComparison.Ordinal);

        // Logs: follow from now (tail 0); a request to the server writes a line (busybox httpd -v logs
        // "response:404" for a missing page) that arrives on the open stream.
        var logs = new TaskLogs.TaskLogsClient(Coordinator.Channel);
        using (var following = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            using var call = logs.GetTaskLogs(new GetTaskLogsRequest { Task = taskArn, Follow = true, Tail = 0 }, cancellationToken: following.Token);
            Assert.True(await call.ResponseStream.MoveNext(following.Token)); // the first answer names the stream: following has begun
            Assert.Equal("/ecs/fargate-task-definition", call.ResponseStream.Current.LogGroupName);
            Assert.Matches("^ecs/sample-fargate-app/[0-9a-f]{32}$", call.ResponseStream.Current.LogStreamName);
            var marker = $"/marker-{Guid.NewGuid():N}";
            _ = http.GetAsync($"http://{Address}:80{marker}");
            var seen = call.ResponseStream.Current.Events.Any(e => e.Message.Contains("response:404", StringComparison.Ordinal));
            while (!seen && await call.ResponseStream.MoveNext(following.Token))
            {
                seen = call.ResponseStream.Current.Events.Any(e => e.Message.Contains("response:404", StringComparison.Ordinal));
            }

            Assert.True(seen, "the request's log line did not arrive while following");
        }

        // The coordinator restarts (SIGKILL): the task is still known, still RUNNING, and its agent rejoins.
        await Coordinator.KillAsync();
        await Coordinator.StartAgainAsync();
        Assert.Equal("RUNNING", (await WaitForAsync(taskArn, _ => true)).LastStatus);
        await Eventually.HoldsAsync(async () => (await Coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest
            { ContainerInstances = { Agent.ContainerInstanceArn } })).ContainerInstances[0].AgentConnected, TimeSpan.FromSeconds(40), "the agent rejoined");
        logs = new TaskLogs.TaskLogsClient(Coordinator.Channel);
        _json = await DynamicJsonClient.ConnectAsync(Coordinator.Channel);

        // Its host goes away: the task keeps its last known state and the instance shows it is not
        // connected; StopTask while it is away reaches the agent when it comes back (full desired set).
        await Agent.Process.KillAsync();
        await Eventually.HoldsAsync(async () => !(await Coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest
            { ContainerInstances = { Agent.ContainerInstanceArn } })).ContainerInstances[0].AgentConnected, TimeSpan.FromSeconds(20), "the instance disconnected");
        Assert.Equal("RUNNING", (await WaitForAsync(taskArn, _ => true)).LastStatus);
        await _json.CallAsync(Ecs + "StopTask", $$"""{ "task": "{{taskArn}}", "reason": "done with it" }""");
        Agent.StartAgain();
        var stopped = await WaitForAsync(taskArn, t => t.LastStatus == "STOPPED");
        Assert.Equal(("STOPPED", "UserInitiated", "done with it"), (stopped.DesiredStatus, stopped.StopCode, stopped.StoppedReason));
        Assert.NotNull(stopped.StoppedAt);
        Assert.Equal("STOPPED", stopped.Containers[0].LastStatus);

        // Listed as stopped, no longer as running; its logs stay readable.
        var listed = await Coordinator.Ecs.ListTasksAsync(new ListTasksRequest { DesiredStatus = "STOPPED", StartedBy = "e2e" });
        Assert.Contains(taskArn, listed.TaskArns);
        Assert.DoesNotContain(taskArn, (await Coordinator.Ecs.ListTasksAsync(new ListTasksRequest())).TaskArns);
        using var after = logs.GetTaskLogs(new GetTaskLogsRequest { Task = taskArn, Tail = 5 });
        var lines = new List<LogEvent>();
        while (await after.ResponseStream.MoveNext(default))
        {
            lines.AddRange(after.ResponseStream.Current.Events);
        }

        Assert.InRange(lines.Count, 1, 5);

        var wrongContainer = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = logs.GetTaskLogs(new GetTaskLogsRequest { Task = taskArn, ContainerName = "nope" });
            while (await call.ResponseStream.MoveNext(default))
            {
            }
        });
        Assert.Equal(StatusCode.InvalidArgument, wrongContainer.StatusCode);
        Assert.StartsWith("InvalidParameterException: containerName", wrongContainer.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Images_that_cannot_be_pulled_stop_their_tasks_within_10_seconds_and_give_their_resources_back()
    {
        // ECS's registration rule lets an upper-case name through; Docker calls it an invalid reference.
        // The other is a valid name whose registry (on loopback, where nothing listens) cannot be reached.
        string[] images = ["Ecslite/Not-A-Docker-Reference:1", "127.0.0.1:5999/ecslite/missing:1"];
        var before = await RemainingAsync();
        foreach (var (image, i) in images.Select((image, i) => (image, i)))
        {
            await _json.CallAsync(Ecs + "RegisterTaskDefinition", $$"""
                { "family": "unpullable-{{i}}", "containerDefinitions": [{ "name": "app", "image": "{{image}}", "cpu": 128, "memory": 64 }] }
                """);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var run = await Coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = $"unpullable-{i}" });
            var stopped = await WaitForAsync(Assert.Single(run.Tasks).TaskArn, t => t.LastStatus == "STOPPED");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{image}: STOPPED after {clock.Elapsed}");
            Assert.Equal("TaskFailedToStart", stopped.StopCode);
            Assert.StartsWith("CannotPullContainerError:", stopped.StoppedReason, StringComparison.Ordinal);
            Assert.StartsWith("CannotPullContainerError:", stopped.Containers.Single().Reason, StringComparison.Ordinal);
        }

        await Eventually.HoldsAsync(async () => (await RemainingAsync()) == before, TimeSpan.FromSeconds(10), "the instance's CPU and memory given back");
    }

    private async Task<(int Cpu, int Memory)> RemainingAsync()
    {
        var instance = (await Coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { Agent.ContainerInstanceArn } })).ContainerInstances.Single();
        return (instance.RemainingResources.Single(r => r.Name == "CPU").IntegerValue, instance.RemainingResources.Single(r => r.Name == "MEMORY").IntegerValue);
    }

    [Fact]
    public async Task Bad_RunTask_calls_get_ECS_errors_and_change_nothing()
    {
        await _json.CallAsync(Ecs + "RegisterTaskDefinition", """
            { "family": "small", "requiresCompatibilities": ["EC2"], "containerDefinitions": [{ "name": "app", "image": "ecslite/busybox:latest", "memory": 16, "command": ["sleep", "60"] }] }
            """);
        async Task<RpcException> FailsAsync(RunTaskRequest request) => await Assert.ThrowsAsync<RpcException>(() => Coordinator.Ecs.RunTaskAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, (await FailsAsync(new RunTaskRequest { Cluster = "nowhere", TaskDefinition = "small" })).StatusCode);
        Assert.StartsWith("ClientException", (await FailsAsync(new RunTaskRequest { TaskDefinition = "missing" })).Status.Detail, StringComparison.Ordinal);
        Assert.StartsWith("InvalidParameterException: count", (await FailsAsync(new RunTaskRequest { TaskDefinition = "small", Count = 11 })).Status.Detail, StringComparison.Ordinal);
        Assert.StartsWith("ClientException: launchType", (await FailsAsync(new RunTaskRequest { TaskDefinition = "small", LaunchType = "FARGATE" })).Status.Detail, StringComparison.Ordinal);
        var malformed = await FailsAsync(new RunTaskRequest
        {
            TaskDefinition = "small",
            PlacementConstraints = { new PlacementConstraint { Type = "memberOf", Expression = "attribute:ecs.os-type == linux and (" } },
        });
        Assert.Contains("placementConstraints[0].expression", malformed.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("column", malformed.Status.Detail, StringComparison.Ordinal);
        await _json.CallAsync(Ecs + "DeregisterTaskDefinition", """{ "taskDefinition": "small:1" }""");
        Assert.StartsWith("ClientException", (await FailsAsync(new RunTaskRequest { TaskDefinition = "small:1" })).Status.Detail, StringComparison.Ordinal);

        var other = await Coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = "other" });
        var start = await Assert.ThrowsAsync<RpcException>(() => Coordinator.Ecs.StartTaskAsync(new StartTaskRequest
        {
            Cluster = "other", TaskDefinition = "fargate-task-definition", ContainerInstances = { Agent.ContainerInstanceArn! },
        }).ResponseAsync);
        Assert.StartsWith("InvalidParameterException: containerInstances[0]", start.Status.Detail, StringComparison.Ordinal);

        // Nothing was created by any of them.
        Assert.Empty((await Coordinator.Ecs.ListTasksAsync(new ListTasksRequest())).TaskArns);
        Assert.Empty((await Coordinator.Ecs.ListTasksAsync(new ListTasksRequest { DesiredStatus = "STOPPED" })).TaskArns);
        Assert.NotNull(other);
    }

    /// <summary>The README's service walk-through on one host, as grpcurl sends it.</summary>
    [Fact]
    public async Task The_seed_runs_as_a_service_scales_into_a_port_conflict_that_the_events_explain_and_deploys_a_new_revision()
    {
        var seed = File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json"));
        await _json.CallAsync(Ecs + "RegisterTaskDefinition", seed);
        await _json.CallAsync(Ecs + "CreateService", """
            { "serviceName": "web", "taskDefinition": "fargate-task-definition", "desiredCount": 1, "launchType": "FARGATE",
              "deploymentConfiguration": { "minimumHealthyPercent": 0, "maximumPercent": 200, "deploymentCircuitBreaker": { "enable": true, "rollback": true } } }
            """);
        var service = await ServiceWhenAsync(s => s.RunningCount == 1 && s.Deployments[0].RolloutState == "COMPLETED", "the service steady with 1 task");
        Assert.Equal("(service web) has reached a steady state.", service.Events[0].Message);
        Assert.Contains("Congratulations!", await Eventually.PageAsync($"http://{Address}:80/", TimeSpan.FromSeconds(20)), StringComparison.Ordinal);

        await _json.CallAsync(Ecs + "UpdateService", """{ "service": "web", "desiredCount": 2 }""");
        service = await ServiceWhenAsync(s => s.Events.Any(e => e.Message.Contains("is already using a port required by your task", StringComparison.Ordinal)), "the port conflict explained");
        Assert.Equal(1, service.RunningCount);
        await _json.CallAsync(Ecs + "UpdateService", """{ "service": "web", "desiredCount": 1 }""");

        // A new revision of the same definition rolls out: the old copy stops first (the port), the new one runs.
        var first = service.Deployments[0].Id;
        await _json.CallAsync(Ecs + "RegisterTaskDefinition", seed);
        await _json.CallAsync(Ecs + "UpdateService", """{ "service": "web", "taskDefinition": "fargate-task-definition" }""");
        service = await ServiceWhenAsync(s => s.Deployments[0].Id != first && s.Deployments[0].RolloutState == "COMPLETED" && s.RunningCount == 1, "revision 2 COMPLETED");
        Assert.EndsWith("fargate-task-definition:2", service.TaskDefinition, StringComparison.Ordinal);
        var running = (await Coordinator.Ecs.ListTasksAsync(new ListTasksRequest { ServiceName = "web" })).TaskArns;
        var task = (await Coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { running } })).Tasks.Single();
        Assert.Equal((service.Deployments[0].Id, "service:web"), (task.StartedBy, task.Group));
        Assert.EndsWith("fargate-task-definition:2", task.TaskDefinitionArn, StringComparison.Ordinal);
        Assert.Contains("Congratulations!", await Eventually.PageAsync($"http://{Address}:80/", TimeSpan.FromSeconds(20)), StringComparison.Ordinal);

        await _json.CallAsync(Ecs + "DeleteService", """{ "service": "web", "force": true }""");
        await ServiceWhenAsync(s => s.Status == "INACTIVE", "the service INACTIVE");
    }

    private async Task<Service> ServiceWhenAsync(Func<Service, bool> condition, string what)
    {
        Service? found = null;
        await Eventually.HoldsAsync(async () =>
        {
            found = (await Coordinator.Ecs.DescribeServicesAsync(new DescribeServicesRequest { Services = { "web" } })).Services.Single();
            return condition(found);
        }, TimeSpan.FromSeconds(60), $"{what} (events: {string.Join(" | ", found?.Events.Take(5).Select(e => e.Message) ?? [])})");
        return found!;
    }

    private async Task<EcsTask> WaitForAsync(string taskArn, Func<EcsTask, bool> condition)
    {
        EcsTask? found = null;
        await Eventually.HoldsAsync(async () =>
        {
            found = (await Coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { taskArn } })).Tasks.Single();
            return condition(found);
        }, TimeSpan.FromSeconds(60), $"task {taskArn} (last seen {found?.LastStatus})");
        return found!;
    }
}
