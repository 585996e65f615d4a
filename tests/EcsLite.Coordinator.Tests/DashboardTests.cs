using System.Text.Json.Nodes;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The dashboard in a real browser (Debian's Chromium driven by playwright-core: tests/js/dashboard.mjs)
/// against a live cluster: two hosts, one drained; a service whose deployment cannot finish (its new
/// revision asks for more memory than any host has, so the reason is in its events); a task printing
/// lines. What the page shows is checked against the API's own answers; the screenshots are kept in
/// TestResults/dashboard.
/// </summary>
public sealed class DashboardTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    private CoordinatorProcess Coordinator => _cluster.Coordinator;

    private IReadOnlyList<AgentProcess> Agents => _cluster.Agents;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(new Dictionary<string, string>
    {
        ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
        ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
    }, agents: 2);

    public async Task DisposeAsync() => await (_cluster?.DisposeAsync() ?? ValueTask.CompletedTask);

    /// <summary>
    /// On the host's network: a container on a bridge adds a network interface, and Chromium drops its
    /// connections when the machine's interfaces change (ERR_NETWORK_CHANGED).
    /// </summary>
    private async Task RegisterAsync(string family, int memory, string script) =>
        await Coordinator.Ecs.RegisterTaskDefinitionAsync(JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
            { "family": "{{family}}", "networkMode": "host", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": {{memory}},
              "entryPoint": ["sh", "-c"], "command": [{{System.Text.Json.JsonSerializer.Serialize(script)}}] }] }
            """));

    [Fact]
    public async Task Chromium_shows_hosts_services_a_placement_failure_and_logs_live_and_nothing_without_a_key()
    {
        var ecs = Coordinator.Ecs;
        var drained = Agents[1].ContainerInstanceArn!;
        await ecs.UpdateContainerInstancesStateAsync(new UpdateContainerInstancesStateRequest { ContainerInstances = { drained }, Status = "DRAINING" });
        const string Sleeper = "trap 'exit 0' TERM; sleep 600 & wait";
        await RegisterAsync("web", 32, Sleeper);
        await ecs.CreateServiceAsync(new CreateServiceRequest { ServiceName = "web", TaskDefinition = "web", DesiredCount = 2 });
        await Eventually.HoldsAsync(async () => (await ecs.DescribeServicesAsync(new DescribeServicesRequest { Services = { "web" } })).Services.Single().RunningCount == 2,
            TimeSpan.FromSeconds(60), "web:1's two tasks RUNNING");
        await RegisterAsync("web", 100_000_000, Sleeper);
        await ecs.UpdateServiceAsync(new UpdateServiceRequest { Service = "web", TaskDefinition = "web:2" });
        await RegisterAsync("talker", 16, "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo \"hello from the talker $i\"; sleep 0.5; done");
        var talker = (await ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "talker" })).Tasks.Single();

        // Settled as the API tells it: the talker and web:1's two tasks RUNNING, web:2 unplaceable.
        Service web = null!;
        List<EcsLite.Api.V1.Task> running = [];
        try
        {
            await Eventually.HoldsAsync(async () =>
            {
                web = (await ecs.DescribeServicesAsync(new DescribeServicesRequest { Services = { "web" } })).Services.Single();
                running = await ecs.DescribeAllTasksAsync((await ecs.ListTasksAsync(new ListTasksRequest())).TaskArns);
                return web.RunningCount == 2 && running.Count == 3 && running.All(t => t.LastStatus == "RUNNING")
                    && web.Events.Any(e => e.Message.Contains("was unable to place a task", StringComparison.Ordinal));
            }, TimeSpan.FromSeconds(60), "web's two tasks, the talker RUNNING and web:2's placement failure");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\nweb: {web}\ntasks: {string.Join("\n", running)}", e);
        }

        var cluster = (await ecs.DescribeClustersAsync(new DescribeClustersRequest())).Clusters.Single(); // as the page will first see it
        var screenshots = Path.Combine(RepoPaths.Root, "tests", "EcsLite.Coordinator.Tests", "TestResults", "dashboard");
        Directory.CreateDirectory(screenshots);
        var (id, secret) = Coordinator.AdminKey;
        var (code, output) = await ProcessRunner.RunAsync("node", [Path.Combine(RepoPaths.Root, "tests", "js", "dashboard.mjs")], new Dictionary<string, string>
        {
            ["URL"] = Coordinator.Address.Replace("http://", "https://", StringComparison.Ordinal),
            ["KEY_ID"] = id,
            ["SECRET"] = secret,
            ["SCREENSHOTS"] = screenshots,
        }, timeoutSeconds: 180);
        Assert.True(code == 0, output);
        var seen = JsonNode.Parse(output.Trim().Split('\n')[^1])!;

        // Without a key: the sign-in form only; the API, the streams and the metrics refuse.
        Assert.Equal(400, (int)seen["unauthenticated"]!["api"]!);
        Assert.Equal("MissingAuthenticationTokenException", (string?)seen["unauthenticated"]!["apiError"]);
        Assert.Equal(400, (int)seen["unauthenticated"]!["stream"]!);
        Assert.Equal("MissingAuthenticationTokenException", (string?)seen["unauthenticated"]!["streamError"]);
        Assert.Equal(401, (int)seen["unauthenticated"]!["metrics"]!);
        Assert.True((bool)seen["dashboardHiddenBeforeSignIn"]!);
        Assert.StartsWith("InvalidSignatureException", (string?)seen["wrongSecret"], StringComparison.Ordinal);

        // Hosts: both, the drained one DRAINING, each with its registered memory as the API has it.
        var instances = (await ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { Agents.Select(a => a.ContainerInstanceArn!) } })).ContainerInstances;
        var shown = seen["instances"]!.AsArray();
        Assert.Equal(instances.Select(i => i.ContainerInstanceArn).Order(), shown.Select(i => (string)i!["arn"]!).Order());
        Assert.Equal("DRAINING", (string?)shown.Single(i => (string?)i!["arn"] == drained)!["status"]);
        foreach (var instance in instances)
        {
            var registered = instance.RegisteredResources.Single(r => r.Name == "MEMORY").IntegerValue;
            Assert.EndsWith($" / {registered} MiB", (string?)shown.Single(i => (string?)i!["arn"] == instance.ContainerInstanceArn)!["memory"], StringComparison.Ordinal);
            Assert.Equal("connected", (string?)shown.Single(i => (string?)i!["arn"] == instance.ContainerInstanceArn)!["agent"]);
        }

        Assert.Equal(2, (int)seen["summary"]!["container instances"]!);
        Assert.Equal(1, (int)seen["summary"]!["draining"]!);
        Assert.Equal(cluster.RunningTasksCount, (int)seen["summary"]!["running tasks"]!);

        // The service mid-deployment, and why it cannot finish.
        var service = seen["services"]!.AsArray().Single(s => (string?)s!["name"] == "web")!;
        Assert.Equal($"desired {web.DesiredCount} · running {web.RunningCount} · pending {web.PendingCount}", (string?)service["counts"]);
        var deployments = service["deployments"]!.AsArray().Select(d => (string)d!).ToList();
        Assert.Equal(web.Deployments.Count, deployments.Count);
        foreach (var deployment in web.Deployments)
        {
            var revision = deployment.TaskDefinition.Split('/')[^1];
            Assert.Contains(deployments, d => d.StartsWith($"{deployment.Status} {revision} {deployment.RolloutState}", StringComparison.Ordinal)
                && d.Contains($"{deployment.RunningCount} running · {deployment.DesiredCount} desired", StringComparison.Ordinal));
        }

        Assert.Contains(deployments, d => d.StartsWith("PRIMARY web:2 IN_PROGRESS", StringComparison.Ordinal));
        var failure = (string)seen["placementFailures"]!.AsArray().Single()!;
        Assert.Contains("(service web) was unable to place a task", failure, StringComparison.Ordinal);
        Assert.Contains("has insufficient memory available", failure, StringComparison.Ordinal);

        // Tasks with their states; the talker's lines, followed; a task started later appeared by itself.
        var tasks = seen["tasks"]!.AsArray();
        Assert.Contains(tasks, t => (string?)t!["arn"] == talker.TaskArn && (string?)t!["lastStatus"] == "RUNNING");
        Assert.Equal(3, tasks.Count);
        var lines = seen["logLines"]!.AsArray().Select(l => (string)l!).ToList();
        Assert.Matches(@"^hello from the talker \d+$", lines[^1]);
        Assert.True(lines.Count >= 3, string.Join('\n', lines));
        var live = (string)seen["liveTask"]!["arn"]!;
        Assert.Equal("talker", (await ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { live } })).Tasks.Single().Group.Split(':')[1]);
        Assert.Empty(seen["consoleErrors"]!.AsArray());
        foreach (var shot in new[] { "1-sign-in.png", "2-cluster.png", "3-logs.png", "4-live.png" })
        {
            Assert.True(new FileInfo(Path.Combine(screenshots, shot)).Length > 10_000, $"{shot} missing or blank");
        }
    }
}
