using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

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

    /// <summary>With TLS: the CA of etcd's certificates, and a client certificate and key it accepts (PEM files).</summary>
    public (string CaFile, string CertificateFile, string KeyFile)? Tls { get; private set; }

    /// <param name="tls">Serve clients over TLS only, and accept only client certificates of its own CA (etcd's --client-cert-auth).</param>
    public static async Task<EtcdCluster> StartAsync(int members = 1, bool tls = false)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: install Debian's etcd-server (.ci/run does)");
        }

        for (var attempt = 1; ; attempt++)
        {
            var directory = CoordinatorProcess.TempDirectory("ecslite-etcd");
            var list = Enumerable.Range(0, members).Select(i => new Member($"m{i}", CoordinatorProcess.FreePort(), CoordinatorProcess.FreePort())).ToList();
            var cluster = new EtcdCluster(list, directory);
            if (tls)
            {
                cluster.Tls = MakeCertificates(directory);
            }

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

                return cluster;
            }
            catch (InvalidOperationException) when (attempt < 3 && list.Any(m => m.Process?.Output.Contains("address already in use", StringComparison.Ordinal) == true))
            {
                // A port chosen free was taken before etcd bound it (by another test's outgoing connection): other ports.
                await cluster.DisposeAsync();
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
        }
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

    /// <summary>
    /// The index of the member that is etcd's raft leader now (asked through etcd's JSON gateway, plain HTTP
    /// clusters only): killing it is the hard case, as the others must elect a new one first.
    /// </summary>
    public async Task<int> RaftLeaderAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        for (var i = 0; i < _members.Count; i++)
        {
            if (_members[i].Process is null)
            {
                continue;
            }

            using var response = await http.PostAsync($"http://127.0.0.1:{_members[i].ClientPort}/v3/maintenance/status", new StringContent("{}"));
            using var status = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            if (status.RootElement.GetProperty("leader").GetString() == status.RootElement.GetProperty("header").GetProperty("member_id").GetString())
            {
                return i;
            }
        }

        throw new InvalidOperationException("no member of the etcd cluster says it leads");
    }

    public async Task RestartAsync(int index)
    {
        Start(_members[index]);
        await _members[index].Process!.WaitForOutputAsync("ready to serve client requests", TimeSpan.FromSeconds(30));
    }

    private void Start(Member member)
    {
        var peers = string.Join(",", _members.Select(m => $"{m.Name}=http://127.0.0.1:{m.PeerPort}"));
        var scheme = Tls is null ? "http" : "https";
        string[] tls = Tls is { } files
            ? ["--cert-file", Path.Combine(_directory, "server.crt"), "--key-file", Path.Combine(_directory, "server.key"), "--trusted-ca-file", files.CaFile, "--client-cert-auth"]
            : [];
        member.Process = TestProcess.Start(
        [
            Binary, "--name", member.Name, "--data-dir", Path.Combine(_directory, member.Name), .. tls,
            "--listen-client-urls", $"{scheme}://127.0.0.1:{member.ClientPort}", "--advertise-client-urls", $"{scheme}://127.0.0.1:{member.ClientPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{member.PeerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{member.PeerPort}",
            "--initial-cluster", peers, "--initial-cluster-token", Path.GetFileName(_directory), "--initial-cluster-state", "new",
            "--max-txn-ops", "10000", "--max-request-bytes", $"{10 * 1024 * 1024}",
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "100000",
        ]);
    }

    /// <summary>A CA, etcd's server certificate for 127.0.0.1 and a client certificate, as PEM files in <paramref name="directory"/>.</summary>
    private static (string CaFile, string CertificateFile, string KeyFile) MakeCertificates(string directory)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=etcd test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        // One clock reading for every certificate: a leaf made a second after its CA would outlive it, which Create refuses.
        var now = DateTimeOffset.UtcNow;
        var (notBefore, notAfter) = (now.AddMinutes(-5), now.AddDays(1));
        using var ca = caRequest.CreateSelfSigned(notBefore, notAfter);

        string Issue(string name, string purpose, bool server)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(purpose)], false));
            if (server)
            {
                var names = new SubjectAlternativeNameBuilder();
                names.AddIpAddress(IPAddress.Loopback);
                request.CertificateExtensions.Add(names.Build());
            }

            using var issued = request.Create(ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(16));
            File.WriteAllText(Path.Combine(directory, $"{name}.crt"), issued.ExportCertificatePem());
            File.WriteAllText(Path.Combine(directory, $"{name}.key"), key.ExportPkcs8PrivateKeyPem());
            return Path.Combine(directory, name);
        }

        File.WriteAllText(Path.Combine(directory, "ca.crt"), ca.ExportCertificatePem());
        Issue("server", "1.3.6.1.5.5.7.3.1", server: true);
        var client = Issue("client", "1.3.6.1.5.5.7.3.2", server: false);
        return (Path.Combine(directory, "ca.crt"), client + ".crt", client + ".key");
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
