using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>
/// The agent as hosts run it: the NativeAOT executable (packaging/build-agent.sh, which test.sh runs
/// first), against the real coordinator and the real Docker engine: it joins with a token, runs a
/// task, reports it, gives back its start-up memory, stops the task and cleans up, and rejoins as the same instance after a restart.
/// </summary>
public sealed class NativeAgentTests
{
    [Fact]
    public async Task The_NativeAOT_agent_joins_runs_and_stops_a_task_and_keeps_its_identity_across_a_restart()
    {
        Assert.True(File.Exists(RepoPaths.NativeAgent), $"{RepoPaths.NativeAgent} is missing: run packaging/build-agent.sh (test.sh does)");
        await LocalImages.EnsureAsync();
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.StartBuild(RepoPaths.NativeAgent, coordinator.Address, coordinator.JoinToken, new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached", // the images are local; nothing is pulled from outside
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s",
        });
        await agent.WaitJoinedAsync();
        var instance = agent.ContainerInstanceArn;
        Assert.NotNull(instance);

        await coordinator.Ecs.RegisterTaskDefinitionAsync(JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
            { "family": "native", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "600"] }] }
            """));
        var task = Assert.Single((await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "native" })).Tasks);
        Assert.Equal(instance, task.ContainerInstanceArn);
        var running = await DescribedAsync(coordinator, task.TaskArn, "RUNNING");
        var container = Assert.Single(running.Containers);
        var (_, state) = await ProcessRunner.RunAsync("docker", ["inspect", "--format", "{{.State.Running}}", container.RuntimeId]);
        Assert.Equal("true", state.Trim());

        // Once joining has settled, the agent gives back the memory start-up grew into.
        await agent.Process.WaitForOutputAsync("Start-up memory given back", TimeSpan.FromSeconds(30));
        var released = System.Text.RegularExpressions.Regex.Match(agent.Output, @"Start-up memory given back: VmRSS (\d+) kB, now (\d+) kB");
        Assert.True(released.Success, agent.Output);
        Assert.True(long.Parse(released.Groups[2].Value) < long.Parse(released.Groups[1].Value), released.Value);

        // Restarted, it comes back as the same instance and adopts its running container.
        await agent.Process.StopAsync(TimeSpan.FromSeconds(10));
        agent.StartAgain();
        await agent.WaitJoinedAsync();
        Assert.Equal(instance, agent.ContainerInstanceArn);
        await coordinator.Ecs.StopTaskAsync(new StopTaskRequest { Task = task.TaskArn });
        var stopped = await DescribedAsync(coordinator, task.TaskArn, "STOPPED");
        Assert.Equal(container.RuntimeId, stopped.Containers[0].RuntimeId); // the same container, never restarted
        Assert.Equal("UserInitiated", stopped.StopCode);
        await agent.Process.StopAsync(TimeSpan.FromSeconds(10));

        using var docker = DockerRuntime.Connect();
        foreach (var owned in await docker.ListOwnedAsync(instance!, default))
        {
            await docker.RemoveAsync(owned.ID, default);
        }
    }

    /// <summary>
    /// The managed functions the settled agent runs are laid out side by side (the agent's IlcOrderFile), so
    /// that what stays resident after start-up's pages are handed back is a few folios rather than most of
    /// the executable (docs/benchmarks.md). The list comes from a profile (packaging/profile-agent.py): this
    /// fails when code changes have left it naming functions the build no longer has, or when the build
    /// stopped applying it.
    /// </summary>
    [Fact]
    public async Task The_functions_the_settled_agent_runs_are_laid_out_together()
    {
        const string list = "hot-methods.txt";
        var symbols = RepoPaths.NativeAgent + ".dbg";
        Assert.True(File.Exists(symbols), $"{symbols} is missing: run packaging/build-agent.sh (test.sh does)");
        var listed = File.ReadLines(Path.Combine(RepoPaths.Root, "agent", "EcsLite.Agent", list)).Where(l => l.Length > 0).ToList();
        var (code, output) = await ProcessRunner.RunAsync("nm", ["--defined-only", symbols], timeoutSeconds: 120);
        Assert.True(code == 0, output);
        var functions = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n'))
        {
            var parts = line.Split(' ', 3);
            if (parts.Length == 3 && parts[1] is "t" or "T")
            {
                functions.TryAdd(parts[2], Convert.ToUInt64(parts[0], 16));
            }
        }

        var placed = listed.Where(functions.ContainsKey).Select(n => functions[n]).ToHashSet();
        Assert.True(placed.Count >= listed.Count * 9 / 10,
            $"{list}: only {placed.Count} of its {listed.Count} functions are in the build; run packaging/profile-agent.py again");

        // Together: from the first of them to the 99th in a hundred lie hardly any functions the list does
        // not name (ILC places a handful, such as some stubs, where it always does).
        var sorted = placed.Order().ToList();
        var (first, last) = (sorted[0], sorted[sorted.Count * 99 / 100]);
        var between = functions.Values.Distinct().Count(a => a > first && a < last && !placed.Contains(a));
        Assert.True(between < placed.Count / 20, $"{list}: {between} other functions lie among its {placed.Count}");
    }

    internal static async Task<EcsLite.Api.V1.Task> DescribedAsync(CoordinatorProcess coordinator, string arn, string status, TimeSpan? timeout = null)
    {
        EcsLite.Api.V1.Task? found = null;
        await Eventually.HoldsAsync(async () =>
        {
            found = (await coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arn } })).Tasks.Single();
            return found.LastStatus == status;
        }, timeout ?? TimeSpan.FromSeconds(60), $"the task {status}");
        return found!;
    }
}
