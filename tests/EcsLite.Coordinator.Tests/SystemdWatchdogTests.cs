using EcsLite.Api.V1;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;
using Microsoft.Data.Sqlite;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// sd_notify as systemd sees the coordinator (Type=notify, WatchdogSec): started from a shell named
/// "systemd" (Microsoft.Extensions.Hosting.Systemd switches on only under such a parent) with a real
/// NOTIFY_SOCKET. READY=1 once it serves, WATCHDOG=1 every half WATCHDOG_USEC while commands go through
/// its state machine and store, none while the store cannot commit (another process holds its write
/// lock), again once it can, and STOPPING=1 on SIGTERM.
/// </summary>
public sealed class SystemdWatchdogTests : IDisposable
{
    private readonly string _directory = CoordinatorProcess.TempDirectory("ecslite-watchdog");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task READY_then_WATCHDOG_while_the_store_commits_none_while_it_cannot_and_STOPPING_on_SIGTERM()
    {
        using var notify = new NotifySocket(Path.Combine(_directory, "notify.sock"));
        var systemd = Path.Combine(_directory, "systemd");
        File.CreateSymbolicLink(systemd, "/bin/bash");
        var port = CoordinatorProcess.FreePort();
        await using var coordinator = await CoordinatorProcess.StartListeningAsync(null, $"127.0.0.1:{port}", $"https://127.0.0.1:{port}",
            ["env", $"NOTIFY_SOCKET={notify.Path}", "WATCHDOG_USEC=1000000", systemd, "-c", "\"$@\"; exit $?", "coordinator"]);

        await Eventually.HoldsAsync(() => notify.Messages.Contains("READY=1"), TimeSpan.FromSeconds(10), "READY=1");
        await Eventually.HoldsAsync(() => notify.Watchdogs.Count >= 6, TimeSpan.FromSeconds(30), "six WATCHDOG=1");
        var steady = NotifySocket.Gaps(notify.Watchdogs);
        Assert.True(steady.Max() < TimeSpan.FromSeconds(1.2), $"pings while healthy came {NotifySocket.Seconds(steady)} s apart (every 0.5 s expected)");
        Assert.True(steady.Average(g => g.TotalSeconds) is > 0.35 and < 0.8, $"pings not at half WATCHDOG_USEC: {NotifySocket.Seconds(steady)}");

        // Another process takes the store's write lock: the next write waits for it, and so does every
        // probe queued behind that write.
        var store = Path.Combine(coordinator.DataDir, SqliteKeyValueStore.FileName);
        DateTime locked;
        Task<CreateClusterResponse> write;
        using (var holder = new SqliteConnection($"Data Source={store};Pooling=False"))
        {
            holder.Open();
            using (var begin = holder.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE";
                begin.ExecuteNonQuery();
            }

            locked = DateTime.UtcNow;
            write = coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = "while-locked" }, deadline: DateTime.UtcNow.AddSeconds(60)).ResponseAsync;
            await Task.Delay(TimeSpan.FromSeconds(5));
            Assert.False(write.IsCompleted, "the write finished while another process held the store's lock");
            var during = notify.Watchdogs.Count(at => at > locked.AddSeconds(1));
            Assert.True(during == 0, $"{during} WATCHDOG=1 while the store could not commit");
            Assert.Contains("the systemd watchdog is not fed", coordinator.Output, StringComparison.Ordinal);
        }

        // The lock is gone (the connection closed, its transaction rolled back): the write commits, pings resume.
        var released = DateTime.UtcNow;
        Assert.Equal("while-locked", (await write).Cluster.ClusterName);
        await Eventually.HoldsAsync(() => notify.Watchdogs.Count(at => at > released) >= 3, TimeSpan.FromSeconds(10), "pings again once the store commits");

        // SIGTERM to the coordinator itself (the child of the "systemd" shell), as systemd sends it.
        var child = File.ReadAllText($"/proc/{coordinator.ProcessId}/task/{coordinator.ProcessId}/children").Trim();
        await ProcessRunner.RunAsync("kill", ["-TERM", child]);
        await Eventually.HoldsAsync(() => notify.Messages.Contains("STOPPING=1"), TimeSpan.FromSeconds(10), "STOPPING=1");
    }
}
