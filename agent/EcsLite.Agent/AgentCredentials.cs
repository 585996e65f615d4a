using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EcsLite.Api.V1;
using EcsLite.Security;
using Grpc.Net.Client;

namespace EcsLite.Agent;

/// <summary>
/// The agent's TLS identity, in DATA_DIR/tls (directory 0700, files 0600): agent.key and agent.crt, the
/// client certificate naming this host's container instance, and ca.crt, the only certificate it trusts
/// the coordinator by. Until it has them, the join token is the way in: the coordinator's CA is fetched
/// (TLS does not send a root), and the coordinator is trusted only if that CA's SHA-256 is the token's
/// and the coordinator's certificate chains to it; only then is the token sent (k3s's way).
/// </summary>
public sealed class AgentCredentials(string dataDir, string? joinToken)
{
    private readonly string _directory = Path.Combine(dataDir, "tls");
    private readonly JoinToken? _token = joinToken is null ? null : JoinToken.Parse(joinToken);
    private ECDsa? _renewalKey;

    /// <summary>While joining: the CA fetched and checked against the token, not yet kept.</summary>
    private X509Certificate2? _joiningAnchor;

    /// <summary>While fetching the CA: the certificate the coordinator presented, checked once the CA is known.</summary>
    private X509Certificate2? _presented;

    /// <summary>The client certificate with its key, once joined.</summary>
    public X509Certificate2? Certificate { get; private set; }

    /// <summary>What the coordinator's certificate must chain to, once joined.</summary>
    public X509Certificate2? Anchor { get; private set; }

    /// <summary>The container instance the certificate names.</summary>
    public string? ContainerInstanceArn => Certificate is null ? null : ClusterCertificates.InstanceOf(Certificate);

    /// <summary>The cluster of that instance (arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID).</summary>
    public string? Cluster => ContainerInstanceArn?.Split('/') is [_, var cluster, _] ? cluster : null;

    /// <summary>Why the last coordinator's certificate was refused, for the log (the TLS error only says that it was).</summary>
    public string? LastRefusal { get; set; }

    private string KeyPath => Path.Combine(_directory, "agent.key");

    private string CertificatePath => Path.Combine(_directory, "agent.crt");

    private string AnchorPath => Path.Combine(_directory, "ca.crt");

    public AgentCredentials Load()
    {
        if (File.Exists(CertificatePath) && File.Exists(KeyPath) && File.Exists(AnchorPath))
        {
            Certificate = X509Certificate2.CreateFromPemFile(CertificatePath, KeyPath);
            Anchor = X509Certificate2.CreateFromPem(File.ReadAllText(AnchorPath));
        }

        return this;
    }

    /// <summary>A channel to <paramref name="coordinator"/>: TLS with this agent's certificate when it has one (plaintext for an http:// loopback URL).</summary>
    public GrpcChannel Channel(Uri coordinator, int maxReceiveMessageSize) => Channel(coordinator, maxReceiveMessageSize, fetchingAnchor: false);

    private GrpcChannel Channel(Uri coordinator, int maxReceiveMessageSize, bool fetchingAnchor)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = fetchingAnchor ? Presented : Trusts,
                ClientCertificates = Certificate is null ? null : [Certificate],
                // The cluster's CA is the only root there is: the system's trust store plays no part,
                // nothing is downloaded, and the chain SslStream builds is the one check needed.
                CertificateChainPolicy = ChainPolicy(fetchingAnchor ? null : Anchor ?? _joiningAnchor),
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            },
        };
        return GrpcChannel.ForAddress(coordinator, new GrpcChannelOptions { MaxReceiveMessageSize = maxReceiveMessageSize, HttpHandler = handler });
    }

    private static X509ChainPolicy ChainPolicy(X509Certificate2? anchor)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        if (anchor is not null)
        {
            policy.CustomTrustStore.Add(anchor);
            policy.ApplicationPolicy.Add(new Oid(ClusterCertificates.ServerAuth)); // an agent's certificate cannot pose as the coordinator
        }

        return policy;
    }

    /// <summary>
    /// Joins with the token: a new key, a certificate request, and the certificate and CA the
    /// coordinator answers with, kept before they are used. Returns the instance the host now is.
    /// </summary>
    public async Task<string> EnrollAsync(Uri coordinator, string cluster, string hostname, CancellationToken cancellationToken)
    {
        if (_token is null)
        {
            throw new NotJoinedException("this host has not joined a cluster yet: set ECSLITE_JOIN_TOKEN (from `ecslite-coordinator token create`) in the agent's settings");
        }

        _joiningAnchor = await FetchAnchorAsync(coordinator, cancellationToken);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var channel = Channel(coordinator, 1024 * 1024);
        var response = await new Enrollment.EnrollmentClient(channel).EnrollAsync(new EnrollRequest
        {
            JoinToken = _token.ToString(),
            CertificateSigningRequest = Google.Protobuf.ByteString.CopyFrom(ClusterCertificates.RequestFor(key)),
            Cluster = cluster,
            Hostname = hostname,
        }, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cancellationToken);

        using var anchor = X509Certificate2.CreateFromPem(response.CaCertificate);
        if (ClusterCertificates.Fingerprint(anchor) != _token.CaSha256)
        {
            throw new NotJoinedException("the coordinator answered with a CA that is not the join token's");
        }

        Directory.CreateDirectory(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        PrivateFile.Write(AnchorPath, response.CaCertificate);
        Save(key, response.Certificate);
        _joiningAnchor = null;
        return response.ContainerInstanceArn;
    }

    /// <summary>The coordinator's CA, if its SHA-256 is the token's and the certificate the coordinator presented chains to it.</summary>
    private async Task<X509Certificate2> FetchAnchorAsync(Uri coordinator, CancellationToken cancellationToken)
    {
        _presented = null;
        using var channel = Channel(coordinator, 64 * 1024, fetchingAnchor: true);
        var answer = await new Enrollment.EnrollmentClient(channel).GetCertificateAuthorityAsync(new GetCertificateAuthorityRequest(),
            deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cancellationToken);
        var anchor = X509Certificate2.CreateFromPem(answer.CaCertificate);
        if (ClusterCertificates.Fingerprint(anchor) != _token!.CaSha256 || _presented is null
            || !ClusterCertificates.ChainsTo(_presented, anchor, ClusterCertificates.ServerAuth))
        {
            LastRefusal = "the coordinator's certificate does not chain to the CA whose fingerprint the join token carries: not the coordinator the token came from";
            throw new NotJoinedException(LastRefusal);
        }

        return anchor;
    }

    /// <summary>Whether the certificate should be renewed now (less than <see cref="ClusterCertificates.RenewBefore"/> left).</summary>
    public bool NeedsRenewal(DateTimeOffset now) => Certificate is not null && Certificate.NotAfter - now.UtcDateTime < ClusterCertificates.RenewBefore;

    /// <summary>A certificate request for a new key, kept until the renewed certificate comes.</summary>
    public byte[] RenewalRequest()
    {
        _renewalKey?.Dispose();
        _renewalKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return ClusterCertificates.RequestFor(_renewalKey);
    }

    /// <summary>Takes the renewed certificate (if it names the same instance and fits the key asked for); used from the next connection on.</summary>
    public bool Renewed(string certificatePem)
    {
        using var renewed = X509Certificate2.CreateFromPem(certificatePem);
        if (_renewalKey is null || Anchor is null || ClusterCertificates.InstanceOf(renewed) != ContainerInstanceArn
            || renewed.GetECDsaPublicKey()?.ExportSubjectPublicKeyInfo() is not { } offered
            || !offered.AsSpan().SequenceEqual(_renewalKey.ExportSubjectPublicKeyInfo()))
        {
            return false;
        }

        Save(_renewalKey, certificatePem);
        _renewalKey.Dispose();
        _renewalKey = null;
        return true;
    }

    /// <summary>Key first, then certificate, each replaced atomically; then both are loaded together.</summary>
    private void Save(ECDsa key, string certificatePem)
    {
        PrivateFile.Write(KeyPath, key.ExportPkcs8PrivateKeyPem());
        PrivateFile.Write(CertificatePath, certificatePem);
        Load();
    }

    /// <summary>
    /// The coordinator is trusted if its certificate names the address dialled and chains to the anchor
    /// (kept, or being joined with) for server authentication: TLS checked both against <see cref="ChainPolicy"/>.
    /// </summary>
    private bool Trusts(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (!NamesAddress(certificate, errors))
        {
            return false;
        }

        var trusted = (Anchor ?? _joiningAnchor) is not null && errors == SslPolicyErrors.None;
        LastRefusal = trusted ? null : "the coordinator's certificate is not one the cluster CA issued for a server, or has expired";
        return trusted;
    }

    /// <summary>Fetching the CA (nothing secret is sent on this connection): the certificate is kept, to be checked against it.</summary>
    private bool Presented(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (!NamesAddress(certificate, errors))
        {
            return false;
        }

        _presented = X509CertificateLoader.LoadCertificate(certificate!.GetRawCertData());
        return true;
    }

    private bool NamesAddress(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            LastRefusal = "the coordinator's certificate does not name the address dialled (add it with the coordinator's TlsSubjectAlternativeNames)";
            return false;
        }

        return true;
    }
}

/// <summary>The host cannot join: no token, or a coordinator that is not the token's.</summary>
public sealed class NotJoinedException(string message) : Exception(message);
