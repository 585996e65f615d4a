using EcsLite.Testing;

namespace EcsLite.Agent.Tests;

/// <summary>
/// sd_notify under systemd semantics. Microsoft.Extensions.Hosting.Systemd only switches on when the
/// process's parent is named "systemd" (or it is PID 1), so the test starts the agent from a shell
/// whose name is "systemd" (a symlink to bash) and gives it a real NOTIFY_SOCKET to talk to. The
/// second test shows the other side of that rule: without such a parent nothing is sent.
/// </summary>
public sealed partial class SystemdNotifyTests : IDisposable
{
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    private readonly string _directory = CoordinatorProcess.TempDirectory("ecslite-notify");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task READY_comes_after_registration_WATCHDOG_while_running_and_STOPPING_on_SIGTERM()
    {
        using var notify = new NotifySocket(Path.Combine(_directory, "notify.sock"));
        var port = CoordinatorProcess.FreePort();
        var systemd = Path.Combine(_directory, "systemd");
        File.CreateSymbolicLink(systemd, "/bin/bash");
        var dataDir = Path.Combine(_directory, "agent");

        // A first start makes the cluster CA and the token that pins it; then the coordinator is away.
        await using var coordinator = await CoordinatorProcess.StartListeningAsync(null, $"127.0.0.1:{port}", $"https://127.0.0.1:{port}", null);
        await coordinator.StopAsync();
        var agent = TestProcess.Start(
            [systemd, "-c", "dotnet \"$@\"; exit $?", "agent", RepoPaths.AgentDll, "--coordinator", coordinator.Address, "--data-dir", dataDir],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1000000", ["ECSLITE_JOIN_TOKEN"] = coordinator.JoinToken });
        await using (agent)
        {
            // No coordinator yet: the agent runs but has not joined, so it must not say READY.
            await agent.WaitForOutputAsync("Cannot reach", TimeSpan.FromSeconds(15));
            Assert.DoesNotContain("READY=1", notify.Messages);

            await coordinator.StartAgainAsync();
            await Eventually.HoldsAsync(() => notify.Messages.Contains("READY=1"), TimeSpan.FromSeconds(35), "READY=1");
            Assert.True(File.Exists(Path.Combine(dataDir, "instance.json")), "READY=1 arrived before the instance identity was saved");
            await Eventually.HoldsAsync(() => notify.Messages.Any(m => m.StartsWith("STATUS=Joined", StringComparison.Ordinal)), TimeSpan.FromSeconds(5), "STATUS=Joined");
            await Eventually.HoldsAsync(() => notify.Messages.Contains("WATCHDOG=1"), TimeSpan.FromSeconds(5), "WATCHDOG=1");

            // SIGTERM to the agent itself (the child of the "systemd" shell), as systemd would send it.
            var child = int.Parse(File.ReadAllText($"/proc/{agent.Id}/task/{agent.Id}/children").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            _ = Kill(child, 15);
            await Eventually.HoldsAsync(() => notify.Messages.Contains("STOPPING=1"), TimeSpan.FromSeconds(10), "STOPPING=1");
            await Eventually.HoldsAsync(() => agent.HasExited, TimeSpan.FromSeconds(10), "the agent exiting");
            Assert.Equal(0, agent.ExitCode);
        }
    }

    /// <summary>
    /// The loop that takes the coordinator's messages stuck in one (here: the first task waits on a Docker
    /// engine that accepts the connection and never answers, which the agent gives 5 s) stops the pings
    /// until it moves on; before, they come every half WATCHDOG_USEC.
    /// </summary>
    [Fact]
    public async Task WATCHDOG_pings_stop_while_the_message_loop_is_stuck()
    {
        using var notify = new NotifySocket(Path.Combine(_directory, "notify.sock"));
        using var silentDocker = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        silentDocker.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(_directory, "docker.sock")));
        silentDocker.Listen(16); // connections wait in the backlog, never read from or answered
        var systemd = Path.Combine(_directory, "systemd");
        File.CreateSymbolicLink(systemd, "/bin/bash");
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = TestProcess.Start(
            [systemd, "-c", "dotnet \"$@\"; exit $?", "agent", RepoPaths.AgentDll, "--coordinator", coordinator.Address, "--data-dir", Path.Combine(_directory, "agent")],
            new Dictionary<string, string>
            {
                ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1000000", ["ECSLITE_JOIN_TOKEN"] = coordinator.JoinToken,
                ["DOCKER_HOST"] = $"unix://{Path.Combine(_directory, "docker.sock")}",
            });
        await Eventually.HoldsAsync(() => notify.Watchdogs.Count >= 6, TimeSpan.FromSeconds(30), "six WATCHDOG=1");
        var steady = NotifySocket.Gaps(notify.Watchdogs);
        Assert.True(steady.Max() < TimeSpan.FromSeconds(1.2), $"pings while healthy came {NotifySocket.Seconds(steady)} s apart (every 0.5 s expected)");
        Assert.True(steady.Average(g => g.TotalSeconds) is > 0.35 and < 0.8, "pings not at half WATCHDOG_USEC");

        await coordinator.Ecs.RegisterTaskDefinitionAsync(new EcsLite.Api.V1.RegisterTaskDefinitionRequest
        {
            Family = "stuck", ContainerDefinitions = { new EcsLite.Api.V1.ContainerDefinition { Name = "app", Image = "busybox", Memory = 16 } },
        });
        var sent = DateTime.UtcNow;
        var run = await coordinator.Ecs.RunTaskAsync(new EcsLite.Api.V1.RunTaskRequest { TaskDefinition = "stuck" });
        Assert.True(run.Failures.Count == 0, $"RunTask failed: {run.Failures}");
        try
        {
            await agent.WaitForOutputAsync("cgroup driver", TimeSpan.FromSeconds(45)); // it gave up on the silent engine
        }
        catch (TimeoutException e)
        {
            // Which side held the task up (a loaded CI machine once saw nothing within 20 s).
            var task = await coordinator.Ecs.DescribeTasksAsync(new EcsLite.Api.V1.DescribeTasksRequest { Tasks = { run.Tasks[0].TaskArn } });
            throw new TimeoutException($"{e.Message}\ntask: {task.Tasks[0]}\ncoordinator output:\n{coordinator.Output}", e);
        }

        await Eventually.HoldsAsync(() => notify.Watchdogs.Count(at => at > sent) >= 3, TimeSpan.FromSeconds(10), "pings again after the loop moved on");

        var longest = NotifySocket.Gaps([.. notify.Watchdogs.Where(at => at > sent.AddSeconds(-1))]).Max();
        Assert.True(longest > TimeSpan.FromSeconds(3), $"the longest gap between pings around the stuck message was {longest.TotalSeconds:F1} s; the loop was stuck for about 5 s\n"
            + $"pings: {string.Join(", ", notify.Watchdogs.Select(at => at.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture)))}; RunTask sent {sent:HH:mm:ss.fff}\nagent output:\n{agent.Output}");
    }

    [Fact]
    public async Task Without_a_systemd_parent_the_hosting_integration_stays_off()
    {
        using var notify = new NotifySocket(Path.Combine(_directory, "notify.sock"));
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken, environment: new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await agent.WaitJoinedAsync();
        await agent.Process.StopAsync();
        Assert.Empty(notify.Messages);
    }
}
