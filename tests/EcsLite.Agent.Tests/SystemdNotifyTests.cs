using System.Net.Sockets;
using System.Text;
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

    /// <summary>A unix datagram socket standing in for systemd's notification socket.</summary>
    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        private readonly List<string> _messages = [];
        private readonly Task _receiving;

        public NotifySocket(string path)
        {
            Path = path;
            _socket.Bind(new UnixDomainSocketEndPoint(path));
            _receiving = Task.Run(Receive);
        }

        public string Path { get; }

        public IReadOnlyList<string> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            _ = _receiving.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        private void Receive()
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var length = _socket.Receive(buffer);
                    lock (_messages)
                    {
                        _messages.AddRange(Encoding.UTF8.GetString(buffer, 0, length).Split('\n', StringSplitOptions.RemoveEmptyEntries));
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
