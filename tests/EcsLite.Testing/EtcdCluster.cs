namespace EcsLite.Testing;

/// <summary>
/// A real etcd cluster of one or more members (Debian's etcd-server, which .ci/run installs), each on
/// loopback ports of its own and a data directory removed on dispose. Started with the limits the
/// coordinator's store needs (docs/cluster-store.md).
/// </summary>
public sealed class EtcdCluster : IAsyncDisposable
{
    public const string Binary = "/usr/bin/etcd";

    private readonly List<Member> _members;
    private readonly string _directory;

    private EtcdCluster(List<Member> members, string directory) => (_members, _directory) = (members, directory);

    /// <summary>Client endpoints (host:port), comma-separated, as the coordinator's Store setting takes them.</summary>
    public string Endpoints => string.Join(",", _members.Select(m => $"127.0.0.1:{m.ClientPort}"));

    /// <summary>The Store setting for this cluster with a root of the caller's (e.g. "/test-1").</summary>
    public string Location(string root = "") => $"etcd://{Endpoints}{root}";

    public IReadOnlyList<TestProcess?> Processes => [.. _members.Select(m => m.Process)];

    public static async Task<EtcdCluster> StartAsync(int members = 1)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: install Debian's etcd-server (.ci/run does)");
        }

        var directory = CoordinatorProcess.TempDirectory("ecslite-etcd");
        var list = Enumerable.Range(0, members).Select(i => new Member($"m{i}", CoordinatorProcess.FreePort(), CoordinatorProcess.FreePort())).ToList();
        var cluster = new EtcdCluster(list, directory);
        try
        {
            foreach (var member in list)
            {
                cluster.Start(member);
            }

            foreach (var member in list)
            {
                await member.Process!.WaitForOutputAsync("ready to serve client requests", TimeSpan.FromSeconds(30));
            }
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    /// <summary>Kills member <paramref name="index"/> (SIGKILL); <see cref="RestartAsync"/> brings it back on its data.</summary>
    public async Task KillAsync(int index)
    {
        if (_members[index].Process is { } process)
        {
            await process.KillAsync();
            await process.DisposeAsync();
            _members[index].Process = null;
        }
    }

    public async Task RestartAsync(int index)
    {
        Start(_members[index]);
        await _members[index].Process!.WaitForOutputAsync("ready to serve client requests", TimeSpan.FromSeconds(30));
    }

    private void Start(Member member)
    {
        var peers = string.Join(",", _members.Select(m => $"{m.Name}=http://127.0.0.1:{m.PeerPort}"));
        member.Process = TestProcess.Start(
        [
            Binary, "--name", member.Name, "--data-dir", Path.Combine(_directory, member.Name),
            "--listen-client-urls", $"http://127.0.0.1:{member.ClientPort}", "--advertise-client-urls", $"http://127.0.0.1:{member.ClientPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{member.PeerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{member.PeerPort}",
            "--initial-cluster", peers, "--initial-cluster-token", Path.GetFileName(_directory), "--initial-cluster-state", "new",
            "--max-txn-ops", "10000", "--max-request-bytes", $"{10 * 1024 * 1024}",
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "100000",
        ]);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var member in _members)
        {
            if (member.Process is { } process)
            {
                await process.KillAsync();
                await process.DisposeAsync();
            }
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class Member(string name, int clientPort, int peerPort)
    {
        public string Name { get; } = name;

        public int ClientPort { get; } = clientPort;

        public int PeerPort { get; } = peerPort;

        public TestProcess? Process { get; set; }
    }
}
