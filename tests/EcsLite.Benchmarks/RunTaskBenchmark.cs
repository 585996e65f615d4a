using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// RunTask to RUNNING through the real coordinator and agent (a cached image), against starting the
/// same container without EcsLite, interleaved in the same run. RUNNING is seen by DescribeTasks polled
/// every 2 ms, so the figure includes at most that much polling delay.
/// Usage: ... runtask [--rounds 40] [--agent PATH or "PATH ENV=VALUE ..."]
/// </summary>
internal static class RunTaskBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = Report.Option(args, "--rounds", 40);
        var build = Report.Options(args, "--agent").FirstOrDefault() ?? RepoPaths.AgentDll;
        await LocalImages.EnsureAsync();
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var dataDir = CoordinatorProcess.TempDirectory("ecslite-runtask");
        await using var agent = await StartAgentAsync(build, coordinator.Address, coordinator.JoinToken, dataDir, coordinator.Ecs);
        Task<double> RunTaskOnceAsync() => OnceAsync(coordinator.Ecs);

        using var baselines = new DockerBaselines();
        await RunTaskOnceAsync();
        await baselines.ApiOnceAsync();
        await DockerBaselines.CliOnceAsync();
        var runTask = new List<double>();
        var api = new List<double>();
        var cli = new List<double>();
        for (var i = 0; i < rounds; i++)
        {
            runTask.Add(await RunTaskOnceAsync());
            api.Add(await baselines.ApiOnceAsync());
            cli.Add(await DockerBaselines.CliOnceAsync());
        }

        var instance = (await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns.Single();
        await DockerBaselines.NoContainersLeftAsync(instance);
        Report.Print(
        [
            ($"RunTask to RUNNING (coordinator + agent, {rounds} rounds)", DockerBaselines.Figures(runTask), ""),
            ("baseline: create + start through Docker's API", DockerBaselines.Figures(api), ""),
            ("baseline: docker run -d", DockerBaselines.Figures(cli), ""),
            ("added over the API baseline, at the median", $"{DockerBaselines.Median(runTask) - DockerBaselines.Median(api):N1} ms", "<= 100 ms"),
            ("added over docker run -d, at the median", $"{DockerBaselines.Median(runTask) - DockerBaselines.Median(cli):N1} ms", "<= 100 ms"),
        ]);
        Directory.Delete(dataDir, recursive: true);
        return 0;
    }

    /// <summary>An agent that runs the benchmark's tasks (cached images, quick stops), joined, and the task definition "bench" registered.</summary>
    public static async Task<TestProcess> StartAgentAsync(string build, string coordinator, string? joinToken, string dataDir, Ecs.EcsClient ecs)
    {
        var agent = Report.StartAgent(build, coordinator, joinToken, dataDir, new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
            ["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "1s",
        });
        await agent.WaitForOutputAsync("Joined ", TimeSpan.FromSeconds(30));
        var register = new RegisterTaskDefinitionRequest { Family = "bench" };
        register.ContainerDefinitions.Add(new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16, Command = { "sleep", "600" } });
        await ecs.RegisterTaskDefinitionAsync(register);
        return agent;
    }

    /// <summary>One RunTask of "bench", timed to RUNNING (DescribeTasks every 2 ms), then stopped and waited for.</summary>
    public static async Task<double> OnceAsync(Ecs.EcsClient ecs)
    {
        var start = Stopwatch.GetTimestamp();
        var run = await ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "bench" });
        var arn = run.Tasks.Single().TaskArn;
        while ((await ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arn } })).Tasks[0].LastStatus != "RUNNING")
        {
            await Task.Delay(2);
            if (Stopwatch.GetElapsedTime(start) > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"{arn} did not reach RUNNING");
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        await ecs.StopTaskAsync(new StopTaskRequest { Task = arn });
        await Eventually.HoldsAsync(async () => (await ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arn } })).Tasks[0].LastStatus == "STOPPED",
            TimeSpan.FromSeconds(60), $"{arn} STOPPED");

        return elapsed;
    }
}
