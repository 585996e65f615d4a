using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EcsLite.Security;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>The cluster CA and certificates, with the real crypto library and real files.</summary>
public sealed class ClusterCertificatesTests : IDisposable
{
    private readonly string _dir = Path.Combine(CoordinatorProcess.TempDirectory("ecslite-tls"), "tls");
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dir)!, recursive: true);

    [Fact]
    public void The_first_start_makes_a_CA_and_a_server_certificate_for_the_hosts_names_keys_readable_by_root_only()
    {
        var made = ClusterCertificates.LoadOrCreate(_dir, ["localhost", "127.0.0.1", "coordinator.lan"], Now);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "ca.key")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "server.key")));
        Assert.True(made.Ca.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        var san = made.Server.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["coordinator.lan", "localhost"], san.EnumerateDnsNames().Order());
        Assert.Equal(["127.0.0.1"], san.EnumerateIPAddresses().Select(a => a.ToString()));
        Assert.True(made.Server.HasPrivateKey);

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(made.Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.True(chain.Build(made.Server));

        // The next start loads the same; a new name makes a new server certificate under the same CA.
        var again = ClusterCertificates.LoadOrCreate(_dir, ["localhost", "127.0.0.1", "coordinator.lan"], Now);
        Assert.Equal(made.AnchorSha256, again.AnchorSha256);
        Assert.Equal(made.Server.Thumbprint, again.Server.Thumbprint);
        var renamed = ClusterCertificates.LoadOrCreate(_dir, ["localhost", "127.0.0.1", "pi.lan"], Now);
        Assert.Equal(made.AnchorSha256, renamed.AnchorSha256);
        Assert.NotEqual(made.Server.Thumbprint, renamed.Server.Thumbprint);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(made.Ca.RawData)), made.AnchorSha256);
    }

    [Fact]
    public void A_client_certificate_carries_the_instance_it_was_issued_for_and_the_requests_key()
    {
        var certificates = ClusterCertificates.LoadOrCreate(_dir, ["localhost"], Now);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=whatever the agent asks", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        const string arn = "arn:aws:ecs:local:000000000000:container-instance/default/0123456789abcdef0123456789abcdef";

        var issued = certificates.IssueClient(csr, arn, Now);
        Assert.Equal(arn, ClusterCertificates.InstanceOf(issued));
        Assert.Equal("CN=EcsLite agent", issued.Subject);
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), issued.PublicKey.ExportSubjectPublicKeyInfo());
        Assert.InRange(issued.NotAfter - Now.UtcDateTime, TimeSpan.FromDays(89), TimeSpan.FromDays(90));
        Assert.Contains(issued.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.2");
        Assert.Null(ClusterCertificates.InstanceOf(certificates.Server));
    }
}
