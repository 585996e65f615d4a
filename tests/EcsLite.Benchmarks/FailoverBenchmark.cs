using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// How fast a service gets back its tasks when a host is lost: simulated agents (real agent channels)
/// run one service spread over them; each round one agent dies, and the time from its instance being
/// marked disconnected to all its tasks RUNNING elsewhere is measured, per round and per task. Then it
/// comes back, its stale copies are stopped, and the next round starts from exactly the desired count.
/// Baseline in the same run: the same number of tasks started with RunTask (count 10 per call).
/// Usage: ... failover [--agents 11] [--tasks-per-agent 100] [--rounds 5] [--grace-ms 1000]
/// </summary>
internal static class FailoverBenchmark
{
    private static readonly TimeSpan StartDelay = TimeSpan.FromMilliseconds(50);

    public static async Task<int> RunAsync(string[] args)
    {
        var agents = Report.Option(args, "--agents", 11);
        var perAgent = Report.Option(args, "--tasks-per-agent", 100);
        var rounds = Report.Option(args, "--rounds", 5);
        var grace = TimeSpan.FromMilliseconds(Report.Option(args, "--grace-ms", 1000));
        var desired = agents * perAgent;
        await using var coordinator = await CoordinatorProcess.StartAsync(null, $"--LostInstanceGrace={grace:c}");
        var ecs = coordinator.Ecs;
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, agents, cpu: 4096, memoryMiB: 16384, startDelay: StartDelay);
        await ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "web",
            ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 64 } },
        });

        // Baseline: as many tasks as one host holds, through RunTask, to RUNNING.
        var baseline = Stopwatch.StartNew();
        var calls = await Task.WhenAll(Enumerable.Range(0, perAgent / 10).Select(_ => ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "web", Count = 10 }).ResponseAsync));
        var started = calls.SelectMany(c => c.Tasks).Select(t => t.TaskArn).ToList();
        await Eventually.HoldsAsync(async () => (await ecs.DescribeAllTasksAsync(started)).All(t => t.LastStatus == "RUNNING"), TimeSpan.FromMinutes(1), "the baseline's tasks RUNNING");
        var baselineTime = baseline.Elapsed;
        foreach (var arn in started)
        {
            await ecs.StopTaskAsync(new StopTaskRequest { Task = arn });
        }

        await ecs.CreateServiceAsync(new CreateServiceRequest { ServiceName = "web", TaskDefinition = "web", DesiredCount = desired });
        await Eventually.HoldsAsync(async () => (await ServiceTasksAsync(ecs)).Count(t => t.LastStatus == "RUNNING") == desired, TimeSpan.FromMinutes(2), "the service RUNNING");

        var perRound = new List<double>();
        var perTask = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            var victim = fleet.Agents[round % agents];
            var lost = victim.ContainerInstanceArn!;
            var affected = (await ServiceTasksAsync(ecs)).Count(t => t.ContainerInstanceArn == lost);
            await victim.DieAsync();
            await Eventually.HoldsAsync(async () => !(await ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { lost } })).ContainerInstances[0].AgentConnected,
                TimeSpan.FromSeconds(30), "the instance marked disconnected", TimeSpan.FromMilliseconds(5));
            var marked = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            List<EcsLite.Api.V1.Task> tasks = [];
            await Eventually.HoldsAsync(async () => (tasks = await ServiceTasksAsync(ecs)).Count(t => t.LastStatus == "RUNNING" && t.ContainerInstanceArn != lost) == desired,
                TimeSpan.FromMinutes(1), "its tasks RUNNING elsewhere", TimeSpan.FromMilliseconds(20));
            perRound.Add(clock.Elapsed.TotalMilliseconds);
            perTask.AddRange(tasks.Where(t => t.CreatedAt.ToDateTimeOffset() >= marked).Select(t => (t.StartedAt.ToDateTimeOffset() - marked).TotalMilliseconds));
            Console.WriteLine($"round {round + 1}: {affected} tasks of {victim.ContainerInstanceArn!.Split('/')[^1]} RUNNING elsewhere {clock.Elapsed.TotalMilliseconds:N0} ms after it was marked disconnected");

            // Back as the same instance: its stale copies stop, and exactly the desired count remains.
            await victim.StartAsync();
            await Eventually.HoldsAsync(async () => (await ServiceTasksAsync(ecs)).Count == desired, TimeSpan.FromMinutes(1), "the stale copies stopped");
        }

        perRound.Sort();
        perTask.Sort();
        Report.Print(
        [
            ($"RunTask of {perAgent} tasks (10 per call, concurrent) to all RUNNING (baseline)", $"{baselineTime.TotalMilliseconds:N0} ms", ""),
            ($"lost instance ({perAgent} service tasks, grace {grace.TotalMilliseconds:N0} ms) to all RUNNING elsewhere, {rounds} rounds",
                $"p50 {ScaleRun.At(perRound, 50):N0} ms, max {perRound[^1]:N0} ms", "p99 < 3 s"),
            ($"the same, per replacement task ({perTask.Count} tasks)", $"p50 {ScaleRun.At(perTask, 50):N0} ms, p99 {ScaleRun.At(perTask, 99):N0} ms", ""),
            ("of which the lost-instance grace", $"{grace.TotalMilliseconds:N0} ms", ""),
        ]);

        return perRound[^1] < 3000 ? 0 : 1;
    }

    /// <summary>The service's tasks not yet STOPPED.</summary>
    private static async Task<List<EcsLite.Api.V1.Task>> ServiceTasksAsync(Ecs.EcsClient ecs)
    {
        var arns = new List<string>();
        string? token = null;
        do
        {
            var page = await ecs.ListTasksAsync(new ListTasksRequest { ServiceName = "web", MaxResults = 100, NextToken = token ?? "" });
            arns.AddRange(page.TaskArns);
            token = page.HasNextToken && page.NextToken.Length > 0 ? page.NextToken : null;
        }
        while (token is not null);

        return [.. (await ecs.DescribeAllTasksAsync(arns)).Where(t => t.LastStatus != "STOPPED")];
    }
}
