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
        var parts = build.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var environment = parts.Skip(1).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        environment["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached";
        environment["ECS_CONTAINER_STOP_TIMEOUT"] = "1s";
        environment["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "1s";
        var dataDir = CoordinatorProcess.TempDirectory("ecslite-runtask");
        string[] command = parts[0].EndsWith(".dll", StringComparison.Ordinal) ? ["dotnet", parts[0]] : [parts[0]];
        await using var agent = TestProcess.Start([.. command, "--coordinator", coordinator.Address, "--data-dir", dataDir], environment);
        await agent.WaitForOutputAsync("Joined ", TimeSpan.FromSeconds(30));

        var register = new RegisterTaskDefinitionRequest { Family = "bench" };
        register.ContainerDefinitions.Add(new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16, Command = { "sleep", "600" } });
        await coordinator.Ecs.RegisterTaskDefinitionAsync(register);

        async Task<double> RunTaskOnceAsync()
        {
            var start = Stopwatch.GetTimestamp();
            var run = await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "bench" });
            var arn = run.Tasks.Single().TaskArn;
            while ((await coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arn } })).Tasks[0].LastStatus != "RUNNING")
            {
                await Task.Delay(2);
                if (Stopwatch.GetElapsedTime(start) > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException($"{arn} did not reach RUNNING");
                }
            }

            var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            await coordinator.Ecs.StopTaskAsync(new StopTaskRequest { Task = arn });
            await Eventually.HoldsAsync(async () => (await coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { arn } })).Tasks[0].LastStatus == "STOPPED",
                TimeSpan.FromSeconds(60), $"{arn} STOPPED");

            return elapsed;
        }

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
}
