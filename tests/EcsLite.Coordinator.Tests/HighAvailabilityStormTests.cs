using System.Collections.Concurrent;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Grpc.Core;
using Xunit.Abstractions;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Issue 19's failover run, with real processes: three coordinators on a three-member etcd cluster,
/// three agents given all three, a service of 6, and 8 callers running tasks and registering task
/// definitions, each recording what was acknowledged. The leader is killed (SIGKILL) mid-storm.
/// </summary>
public sealed class HighAvailabilityStormTests(ITestOutputHelper output)
{
    private const int Callers = 8;
    private const int CallsPerCaller = 6;

    [Fact]
    public async Task Killing_the_leader_mid_storm_loses_no_acknowledged_task_or_definition_starts_none_twice_and_restarts_no_container()
    {
        await LocalImages.EnsureAsync();
        await using var etcd = await EtcdCluster.StartAsync(members: 3);
        var store = etcd.Location("/storm");
        await using var first = await CoordinatorProcess.StartAsync(null, "--store", store);
        await using var second = await CoordinatorProcess.StartStandbyAsync(first, "--store", store);
        await using var third = await CoordinatorProcess.StartStandbyAsync(first, "--store", store);

        CoordinatorProcess[] coordinators = [first, second, third];
        // Each agent is given all three, starting with a different one: two of them are served by a follower.
        var agents = Enumerable.Range(0, 3).Select(i => AgentProcess.Start([.. coordinators.Skip(i).Concat(coordinators.Take(i)).Select(c => c.Address)], first.JoinToken, null,
            new Dictionary<string, string> { ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s" }, null)).ToList();
        try
        {
            await Task.WhenAll(agents.Select(a => a.WaitJoinedAsync()));
            foreach (var family in new[] { "svc", "job" })
            {
                await first.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
                {
                    Family = family,
                    ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16, Command = { "sleep", "3600" } } },
                });
            }

            await first.Ecs.CreateServiceAsync(new CreateServiceRequest { ServiceName = "web", TaskDefinition = "svc", DesiredCount = 6 });
            var serviceTasks = await EventuallyServiceRunningAsync(first, TimeSpan.FromSeconds(90));
            var serviceContainers = await ContainersAsync(agents);

            // The storm: each caller runs tasks (a client token per call, kept across retries) and registers
            // definitions, trying the coordinators in turn when one does not answer.
            var acknowledgedTasks = new ConcurrentBag<string>();
            var acknowledgedDefinitions = new ConcurrentBag<string>();
            var calls = 0;
            var storm = Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
            {
                for (var call = 0; call < CallsPerCaller; call++)
                {
                    // Answered without its task (a new leader whose agents have not reconnected yet: AGENT),
                    // the caller asks again, as a new call.
                    RunTaskResponse run;
                    for (var ask = 0; ; ask++)
                    {
                        var token = $"storm-{caller}-{call}-{ask}";
                        run = await AnyAsync(coordinators, ecs => ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "job", Count = 1, StartedBy = "storm", ClientToken = token }).ResponseAsync);
                        if (run.Tasks.Count == 1 || ask == 100)
                        {
                            break;
                        }

                        Assert.All(run.Failures, f => Assert.Equal("AGENT", f.Reason));
                        await Task.Delay(200);
                    }

                    Assert.Empty(run.Failures);
                    acknowledgedTasks.Add(run.Tasks[0].TaskArn);

                    var registered = await AnyAsync(coordinators, ecs => ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
                    {
                        Family = $"storm-{caller}",
                        ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 16 } },
                    }).ResponseAsync);
                    acknowledgedDefinitions.Add(registered.TaskDefinition.TaskDefinitionArn);
                    Interlocked.Increment(ref calls);
                    await Task.Delay(200);
                }
            })));

            await Eventually.HoldsAsync(() => Volatile.Read(ref calls) >= Callers * CallsPerCaller / 3, TimeSpan.FromSeconds(60), "a third of the storm acknowledged");
            var killed = System.Diagnostics.Stopwatch.StartNew();
            await first.KillAsync();
            var leader = await Task.WhenAny(
                second.WaitForOutputAsync("Leading the coordinators", TimeSpan.FromSeconds(20)).ContinueWith(t => { t.GetAwaiter().GetResult(); return second; }),
                third.WaitForOutputAsync("Leading the coordinators", TimeSpan.FromSeconds(20)).ContinueWith(t => { t.GetAwaiter().GetResult(); return third; })).Unwrap();
            var leading = killed.Elapsed;
            await storm.WaitAsync(TimeSpan.FromSeconds(120));
            output.WriteLine($"a standby led {leading.TotalSeconds:0.00} s after the leader was killed; {acknowledgedTasks.Count} tasks and {acknowledgedDefinitions.Count} definitions acknowledged");
            // The lease (3 s) and etcd's check for ended leases (every 0.5 s) make about 3.5 s: the issue's 5 s
            // leaves 1.5 s for a loaded machine (docs/benchmarks.md has the figures).
            Assert.True(leading < TimeSpan.FromSeconds(5), $"a standby led {leading.TotalSeconds:0.0} s after the leader was killed");
            var other = leader == second ? third : second;
            Assert.Contains("Waiting to lead", other.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Leading the coordinators", other.Output, StringComparison.Ordinal); // one leader at a time

            // Every acknowledged definition is there; every acknowledged task is there and RUNNING, and the
            // state holds no storm task nobody was told of (a retried call got its first tasks back).
            foreach (var arn in acknowledgedDefinitions)
            {
                Assert.Equal(arn, (await leader.Ecs.DescribeTaskDefinitionAsync(new DescribeTaskDefinitionRequest { TaskDefinition = arn })).TaskDefinition.TaskDefinitionArn);
            }

            var storms = (await leader.Ecs.ListTasksAsync(new ListTasksRequest { StartedBy = "storm", MaxResults = 100 })).TaskArns;
            var missing = acknowledgedTasks.Except(storms).ToList();
            var described = missing.Count == 0 ? [] : await leader.Ecs.DescribeAllTasksAsync(missing);
            Assert.True(missing.Count == 0 && storms.All(acknowledgedTasks.Contains),
                $"acknowledged but not running: {string.Join("; ", described.Select(t => $"{t.TaskArn} {t.LastStatus}/{t.DesiredStatus} {t.StopCode} {t.StoppedReason} on {t.ContainerInstanceArn}"))}" +
                $" ({missing.Count - described.Count} not found); running but not acknowledged: {string.Join(", ", storms.Except(acknowledgedTasks))}\n" +
                string.Join("\n", coordinators.Select(c => c.Output)));
            Assert.Equal(Callers * CallsPerCaller, acknowledgedTasks.Distinct().Count());
            await Eventually.HoldsAsync(async () => (await leader.Ecs.DescribeAllTasksAsync(acknowledgedTasks)).All(t => t.LastStatus == "RUNNING"),
                TimeSpan.FromSeconds(90), "every acknowledged task RUNNING");

            // The killed leader's agent connected again elsewhere; the followers' agents stayed where they were, on
            // one stream all along. The service is 6 again, the same 6; no container ran twice or was restarted.
            await Eventually.HoldsAsync(async () => (await leader.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest
                { ContainerInstances = { agents.Select(a => a.ContainerInstanceArn) } })).ContainerInstances.All(i => i.AgentConnected), TimeSpan.FromSeconds(40), "every agent connected");
            Assert.True(Joins(agents[0]) >= 2, agents[0].Output);
            Assert.All(agents.Skip(1), a => Assert.True(Joins(a) == 1, a.Output));
            Assert.Equal(serviceTasks, await EventuallyServiceRunningAsync(leader, TimeSpan.FromSeconds(30)));
            var containers = await ContainersAsync(agents);
            Assert.All(containers, c => Assert.Single(c.Value));
            string Of(Dictionary<string, List<string>> byTask) => string.Join("\n", byTask.Where(c => serviceTasks.Contains(c.Key)).OrderBy(c => c.Key).Select(c => $"{c.Key} {string.Join(",", c.Value)}"));
            Assert.Equal(Of(serviceContainers), Of(containers));
            Assert.Equal(acknowledgedTasks.Order(), containers.Keys.Where(k => !serviceTasks.Contains(k)).Order());
        }
        finally
        {
            var instances = agents.Select(a => a.ContainerInstanceArn).OfType<string>().ToList(); // read from the agents' data, gone once disposed
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }

            await ProcessRunner.RemoveContainersAsync(instances);
        }
    }

    private static int Joins(AgentProcess agent) => System.Text.RegularExpressions.Regex.Matches(agent.Output, "Joined ").Count;

    /// <summary>A call to whichever coordinator answers: the same call (same client token) again on the next when one does not.</summary>
    private static async Task<T> AnyAsync<T>(CoordinatorProcess[] coordinators, Func<Ecs.EcsClient, Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call(coordinators[attempt % coordinators.Length].Ecs);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded or StatusCode.Cancelled && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>The service's task ARNs once exactly 6 are RUNNING (and no other is wanted).</summary>
    private static async Task<List<string>> EventuallyServiceRunningAsync(CoordinatorProcess coordinator, TimeSpan timeout)
    {
        List<string> arns = [];
        await Eventually.HoldsAsync(async () =>
        {
            var listed = (await coordinator.Ecs.ListTasksAsync(new ListTasksRequest { ServiceName = "web", DesiredStatus = "RUNNING" })).TaskArns;
            var tasks = await coordinator.Ecs.DescribeAllTasksAsync(listed);
            arns = [.. tasks.Where(t => t.LastStatus == "RUNNING").Select(t => t.TaskArn).Order()];
            return tasks.Count == 6 && arns.Count == 6;
        }, timeout, "the service at exactly 6 RUNNING");
        return arns;
    }

    /// <summary>Every container the agents' instances made, by task ARN.</summary>
    private static async Task<Dictionary<string, List<string>>> ContainersAsync(IEnumerable<AgentProcess> agents)
    {
        var containers = new List<(string Task, string Id)>();
        foreach (var agent in agents)
        {
            var (_, lines) = await ProcessRunner.RunAsync("docker", ["ps", "-a", "--filter", $"label=ecslite.container-instance-arn={agent.ContainerInstanceArn}",
                "--format", "{{.Label \"com.amazonaws.ecs.task-arn\"}} {{.ID}}"]);
            containers.AddRange(lines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).Select(p => (p[0], p[1])));
        }

        return containers.GroupBy(c => c.Task).ToDictionary(g => g.Key, g => g.Select(c => c.Id).Order().ToList());
    }
}
