using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator;

/// <summary>
/// The coordinator's settings. Sources, later ones winning: built-in defaults, the JSON file named by
/// --config, ECSLITE_-prefixed environment variables (ECSLITE_LISTEN, ECSLITE_DATADIR, ...), the command line.
/// </summary>
public sealed partial class CoordinatorOptions
{
    public const string DefaultListen = "127.0.0.1:7430";

    /// <summary>
    /// Address for the gRPC API: host:port, [v6]:port or https://host:port (TLS, always), or unix:/path
    /// (a local socket without TLS, where callers still need a key and agents cannot connect).
    /// </summary>
    public string Listen { get; set; } = DefaultListen;

    /// <summary>
    /// The admin socket: a unix socket (mode 0600) that answers every call as the account's root, as
    /// Docker's socket does, for local administration without a key. Its directory is created 0700.
    /// </summary>
    public string AdminSocket { get; set; } = DefaultAdminSocket();

    /// <summary>Directory holding the cluster store; created if missing.</summary>
    public string DataDir { get; set; } = DefaultDataDir();

    /// <summary>
    /// Where the cluster state is kept: empty for the embedded store in DataDir (one coordinator), or an etcd
    /// cluster, etcd://host1:2379,host2:2379,host3:2379[/root], every key under the root (docs/cluster-store.md).
    /// </summary>
    public string Store { get; set; } = "";

    /// <summary>
    /// For an etcd store: the time to live of the leader's etcd lease. A leader that dies is followed by
    /// another after at most this long. One that cannot renew it holds still half a second before it ends,
    /// acts again once etcd renews it (etcd electing a new raft leader: one to three seconds) and gives up
    /// the lead after a second time to live without an answer.
    /// </summary>
    public TimeSpan LeaderLeaseTtl { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// For an etcd store: host:port where the other coordinators reach this one (they forward changes to the
    /// leader). Default: the Listen address, or this host's name when Listen is a wildcard (0.0.0.0, [::]).
    /// The server certificate must name the host (TlsSubjectAlternativeNames).
    /// </summary>
    public string AdvertiseAddress { get; set; } = "";

    /// <summary>The URL another coordinator calls this one at (<see cref="AdvertiseAddress"/>); empty on a unix socket.</summary>
    public string AdvertisedUrl()
    {
        var scheme = InsecureTestMode ? "http" : "https";
        if (AdvertiseAddress.Length > 0)
        {
            return $"{scheme}://{AdvertiseAddress.Trim()}";
        }

        var (endpoint, _) = ParseListen();
        if (endpoint is null)
        {
            return "";
        }

        var host = endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any) ? Dns.GetHostName()
            : endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]"
            : endpoint.Address.ToString();
        return $"{scheme}://{host}:{endpoint.Port}";
    }

    /// <summary>For an etcd store: the CA that signed etcd's certificates (PEM); when set, the connection is TLS.</summary>
    public string StoreCaFile { get; set; } = "";

    /// <summary>For an etcd store with TLS: the client certificate and key (PEM) presented to etcd (its --client-cert-auth).</summary>
    public string StoreCertificateFile { get; set; } = "";

    public string StoreKeyFile { get; set; } = "";

    /// <summary>
    /// For an etcd store: the token the coordinators' shared CA and secret keys are sealed with in the store.
    /// The first coordinator makes one (DATA_DIR/server-token) unless given; the others are given it.
    /// </summary>
    public string ServerToken { get; set; } = "";

    /// <summary>Names and addresses the server certificate names besides the host's own (comma-separated), e.g. a DNS name agents use.</summary>
    public string TlsSubjectAlternativeNames { get; set; } = "";

    /// <summary>
    /// The operator's own server certificate (PEM, leaf first, its chain after) and key, in place of the
    /// one made from the cluster CA. Join tokens then pin the last certificate of that file. Agents'
    /// client certificates still come from the cluster CA.
    /// </summary>
    public string TlsCertificateFile { get; set; } = "";

    public string TlsKeyFile { get; set; } = "";

    /// <summary>
    /// For benchmarks only: plaintext HTTP/2, no authentication or policies, agents trusted by their
    /// hello, as before security existed; refused unless Listen is a loopback address.
    /// </summary>
    public bool InsecureTestMode { get; set; }

    /// <summary>The region written into ARNs.</summary>
    public string Region { get; set; } = "local";

    /// <summary>The 12-digit account id written into ARNs.</summary>
    public string AccountId { get; set; } = "000000000000";

    /// <summary>How often agents send heartbeats (told to each agent in its welcome).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Heartbeats an agent may miss before its instance counts as disconnected.</summary>
    public int MissedHeartbeats { get; set; } = 3;

    /// <summary>
    /// How long an instance may be disconnected before the service scheduler replaces its service tasks
    /// elsewhere (they are stopped there once its agent is back).
    /// </summary>
    public TimeSpan LostInstanceGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long STOPPED tasks stay visible (DescribeTasks, ListTasks) before they are purged (ECS: about an hour).</summary>
    public TimeSpan StoppedTaskRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Changes a WatchEvents reader may fall behind before its stream is ended (it resumes from the revision it is given).</summary>
    public int EventStreamBuffer { get; set; } = 10_000;

    public static string DefaultDataDir() =>
        Environment.UserName == "root" || Environment.IsPrivilegedProcess
            ? "/var/lib/ecslite/coordinator"
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "ecslite", "coordinator");

    public static string DefaultAdminSocket() =>
        Environment.UserName == "root" || Environment.IsPrivilegedProcess
            ? "/run/ecslite/coordinator.sock"
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } run ? run : Path.GetTempPath(), "ecslite", "coordinator.sock");

    /// <summary>Where Kestrel listens: an IP endpoint or a unix socket path.</summary>
    public (IPEndPoint? Endpoint, string? UnixSocket) ParseListen()
    {
        var text = Listen.Trim();
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            return (null, text["unix:".Length..]);
        }

        foreach (var scheme in (string[])["https://", "http://"])
        {
            if (text.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            {
                text = text[scheme.Length..].TrimEnd('/');
            }
        }

        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            text = "127.0.0.1" + text["localhost".Length..];
        }

        return IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port != 0
            ? (endpoint, null)
            : throw new FormatException($"Listen '{Listen}' is not host:port (e.g. 127.0.0.1:7430 or [::]:7430), https://host:port or unix:/path");
    }

    [GeneratedRegex("^[a-z0-9-]{1,64}$")]
    private static partial Regex RegionPattern();

    [GeneratedRegex("^[0-9]{12}$")]
    private static partial Regex AccountPattern();

    public sealed class Validator : IValidateOptions<CoordinatorOptions>
    {
        public ValidateOptionsResult Validate(string? name, CoordinatorOptions options)
        {
            var failures = new List<string>();
            try
            {
                var (endpoint, _) = options.ParseListen();
                if (options.InsecureTestMode && endpoint is not null && !IPAddress.IsLoopback(endpoint.Address))
                {
                    failures.Add("InsecureTestMode is for benchmarks on loopback only: Listen must be a 127.0.0.0/8 or ::1 address");
                }
            }
            catch (FormatException e)
            {
                failures.Add(e.Message);
            }

            if ((options.TlsCertificateFile.Length == 0) != (options.TlsKeyFile.Length == 0))
            {
                failures.Add("TlsCertificateFile and TlsKeyFile are set together (the operator's server certificate and its key)");
            }

            if (options.AdvertiseAddress.Length > 0 && !(Uri.TryCreate($"https://{options.AdvertiseAddress}", UriKind.Absolute, out var advertised)
                && advertised.PathAndQuery == "/" && !advertised.IsDefaultPort && options.AdvertiseAddress.Length <= 255))
            {
                failures.Add($"AdvertiseAddress '{options.AdvertiseAddress}' is not host:port");
            }

            if (options.TlsSubjectAlternativeNames.Length > 1024)
            {
                failures.Add("TlsSubjectAlternativeNames is at most 1024 characters");
            }

            if (string.IsNullOrWhiteSpace(options.AdminSocket) || !Path.IsPathRooted(options.AdminSocket) || options.AdminSocket.Length > 100)
            {
                failures.Add($"AdminSocket '{options.AdminSocket}' must be an absolute path of at most 100 characters (a unix socket's limit)");
            }

            if (string.IsNullOrWhiteSpace(options.DataDir))
            {
                failures.Add("DataDir must name a directory");
            }

            if (options.Store.Length > 0)
            {
                try
                {
                    EcsLite.Coordinator.Store.EtcdKeyValueStore.ParseLocation(options.Store);
                }
                catch (FormatException e)
                {
                    failures.Add($"Store: {e.Message}; or empty for the embedded store in DataDir");
                }
            }

            if (options.LeaderLeaseTtl < TimeSpan.FromSeconds(2) || options.LeaderLeaseTtl > TimeSpan.FromMinutes(1) || options.LeaderLeaseTtl.Ticks % TimeSpan.TicksPerSecond != 0)
            {
                failures.Add($"LeaderLeaseTtl {options.LeaderLeaseTtl} must be whole seconds between 00:00:02 and 00:01:00");
            }

            if ((options.StoreCertificateFile.Length == 0) != (options.StoreKeyFile.Length == 0) || (options.StoreCertificateFile.Length > 0 && options.StoreCaFile.Length == 0))
            {
                failures.Add("StoreCertificateFile and StoreKeyFile are set together, and with StoreCaFile (etcd's client certificate, its key, and the CA of etcd's certificates)");
            }

            if (!RegionPattern().IsMatch(options.Region))
            {
                failures.Add($"Region '{options.Region}' must be lowercase letters, digits and hyphens (e.g. local, us-east-1)");
            }

            if (options.HeartbeatInterval < TimeSpan.FromMilliseconds(100) || options.HeartbeatInterval > TimeSpan.FromMinutes(5))
            {
                failures.Add($"HeartbeatInterval {options.HeartbeatInterval} must be between 00:00:00.1 and 00:05:00");
            }

            if (options.EventStreamBuffer is < 100 or > 1_000_000)
            {
                failures.Add($"EventStreamBuffer {options.EventStreamBuffer} must be between 100 and 1000000");
            }

            if (options.MissedHeartbeats is < 1 or > 100)
            {
                failures.Add($"MissedHeartbeats {options.MissedHeartbeats} must be between 1 and 100");
            }

            if (options.StoppedTaskRetention < TimeSpan.Zero || options.StoppedTaskRetention > TimeSpan.FromDays(30))
            {
                failures.Add($"StoppedTaskRetention {options.StoppedTaskRetention} must be between 00:00:00 and 30.00:00:00");
            }

            if (options.LostInstanceGrace < TimeSpan.Zero || options.LostInstanceGrace > TimeSpan.FromDays(1))
            {
                failures.Add($"LostInstanceGrace {options.LostInstanceGrace} must be between 00:00:00 and 1.00:00:00");
            }

            if (!AccountPattern().IsMatch(options.AccountId))
            {
                failures.Add($"AccountId '{options.AccountId}' must be 12 digits");
            }

            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }
    }
}
