using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace EcsLite.Security;

/// <summary>
/// The cluster's certificate authority and the coordinator's server certificate, in DATA_DIR/tls:
/// ca.crt, ca.key (0600), server.crt, server.key (0600). Made at the first start (ECDSA P-256); the
/// server certificate is made again when it nears its end or its names no longer cover the host.
/// The CA also signs each agent's client certificate, naming its container instance.
/// </summary>
public sealed class ClusterCertificates
{
    public static readonly TimeSpan CaLifetime = TimeSpan.FromDays(3650);
    public static readonly TimeSpan ServerLifetime = TimeSpan.FromDays(365);
    public static readonly TimeSpan ClientLifetime = TimeSpan.FromDays(90);

    /// <summary>A certificate with less than this left is made again (server) or renewed (agents).</summary>
    public static readonly TimeSpan RenewBefore = TimeSpan.FromDays(30);

    private ClusterCertificates(X509Certificate2 ca, X509Certificate2 server, X509Certificate2Collection? operatorChain = null)
    {
        Ca = ca;
        Server = server;
        ServerChain = operatorChain ?? [ca];
        ServerAnchor = ServerChain.Count > 0 ? ServerChain[^1] : server;
    }

    /// <summary>The certificates sent after the server's own: the cluster CA, or the operator's chain.</summary>
    public X509Certificate2Collection ServerChain { get; }

    /// <summary>What agents trust the coordinator by (the cluster CA, or the operator chain's last certificate); join tokens pin it.</summary>
    public X509Certificate2 ServerAnchor { get; }

    /// <summary>The CA, with its private key.</summary>
    public X509Certificate2 Ca { get; }

    /// <summary>The server certificate, with its private key.</summary>
    public X509Certificate2 Server { get; }

    /// <summary>SHA-256 of the server's trust anchor (DER), lowercase hex: what a join token pins.</summary>
    public string AnchorSha256 => Fingerprint(ServerAnchor);

    public static string Fingerprint(X509Certificate2 certificate) => Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));

    /// <summary>A client certificate this CA issued (for TLS client authentication) and still in its lifetime.</summary>
    public bool IssuedClient(X509Certificate2 certificate) => ChainsTo(certificate, Ca, ClientAuth);

    /// <summary>
    /// Whether <paramref name="certificate"/> chains to <paramref name="anchor"/> as the only trusted root,
    /// within its lifetime and allowed the extended key usage <paramref name="usage"/> (server or client
    /// authentication: an agent's certificate cannot pose as the coordinator, nor the other way round).
    /// </summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 anchor, string usage)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(anchor);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(usage));
        return chain.Build(certificate);
    }

    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    /// <summary>A PKCS#10 certificate request (DER) for <paramref name="key"/>, as an agent sends it to join or renew.</summary>
    public static byte[] RequestFor(ECDsa key) =>
        new CertificateRequest("CN=EcsLite agent", key, HashAlgorithmName.SHA256).CreateSigningRequest();

    /// <summary>
    /// Loads the cluster's certificates, making what is missing, stale or does not name <paramref name="names"/>;
    /// with <paramref name="operatorCertificate"/> and its key, the server's certificate is the operator's.
    /// </summary>
    public static ClusterCertificates LoadOrCreate(string directory, IReadOnlyCollection<string> names, DateTimeOffset now,
        string? operatorCertificate = null, string? operatorKey = null)
    {
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var caCrt = Path.Combine(directory, "ca.crt");
        var caKey = Path.Combine(directory, "ca.key");
        X509Certificate2 ca;
        if (File.Exists(caCrt) && File.Exists(caKey))
        {
            ca = X509Certificate2.CreateFromPemFile(caCrt, caKey);
        }
        else
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=EcsLite cluster CA", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            ca = request.CreateSelfSigned(now.AddMinutes(-5), now + CaLifetime);
            PrivateFile.Write(caKey, key.ExportPkcs8PrivateKeyPem());
            PrivateFile.Write(caCrt, ca.ExportCertificatePem(), secret: false);
        }

        if (!string.IsNullOrEmpty(operatorCertificate))
        {
            var chain = new X509Certificate2Collection();
            chain.ImportFromPemFile(operatorCertificate);
            chain.RemoveAt(0);
            return new ClusterCertificates(ca, X509Certificate2.CreateFromPemFile(operatorCertificate, operatorKey), chain);
        }

        var serverCrt = Path.Combine(directory, "server.crt");
        var serverKey = Path.Combine(directory, "server.key");
        if (File.Exists(serverCrt) && File.Exists(serverKey)
            && X509Certificate2.CreateFromPemFile(serverCrt, serverKey) is var existing
            && existing.NotAfter - now.UtcDateTime > RenewBefore && Covers(existing, names) && ChainsTo(existing, ca, ServerAuth))
        {
            return new ClusterCertificates(ca, existing);
        }

        using var serverKeyPair = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var server = Issue(ca, "CN=EcsLite coordinator", serverKeyPair, now, ServerLifetime, names, uri: null, serverAuth: true);
        PrivateFile.Write(serverKey, serverKeyPair.ExportPkcs8PrivateKeyPem());
        PrivateFile.Write(serverCrt, server.ExportCertificatePem(), secret: false);
        return new ClusterCertificates(ca, server.CopyWithPrivateKey(serverKeyPair));
    }

    /// <summary>
    /// A client certificate for a container instance from its certificate request (PKCS#10, DER): the
    /// request's key, the instance's ARN as the subject alternative name (a URI), the CA's signature.
    /// </summary>
    public X509Certificate2 IssueClient(byte[] certificateRequest, string containerInstanceArn, DateTimeOffset now)
    {
        var request = CertificateRequest.LoadSigningRequest(certificateRequest, HashAlgorithmName.SHA256,
            CertificateRequestLoadOptions.Default, RSASignaturePadding.Pkcs1);
        var issued = new CertificateRequest(new X500DistinguishedName("CN=EcsLite agent"), request.PublicKey, HashAlgorithmName.SHA256);
        return Sign(Ca, issued, now, ClientLifetime, [], new Uri(containerInstanceArn), serverAuth: false);
    }

    /// <summary>The URI name of a coordinator's client certificate: the coordinators of one store share the CA.</summary>
    public const string CoordinatorUri = "urn:ecslite:coordinator";

    /// <summary>
    /// A client certificate for this coordinator to call another (a follower forwarding a change to the leader),
    /// with a key of its own, kept in memory only: only a holder of the CA's key can make one.
    /// </summary>
    public X509Certificate2 IssueCoordinator(DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var issued = Issue(Ca, "CN=EcsLite coordinator", key, now, ClientLifetime, [], new Uri(CoordinatorUri), serverAuth: false);
        using var withKey = issued.CopyWithPrivateKey(key);
        // Through PKCS#12, so that TLS can use the key (an ephemeral key cannot sign a handshake everywhere).
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Whether a client certificate is a coordinator's of this cluster (issued by its CA, naming <see cref="CoordinatorUri"/>).</summary>
    public bool IssuedCoordinator(X509Certificate2 certificate) =>
        IssuedClient(certificate) && certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => Uris(e.RawData)).Contains(CoordinatorUri);

    /// <summary>The container instance a client certificate speaks for (its URI name), or null.</summary>
    public static string? InstanceOf(X509Certificate2 certificate) =>
        certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => Uris(e.RawData))
            .FirstOrDefault(u => u.StartsWith("arn:aws:ecs:", StringComparison.Ordinal));

    /// <summary>The uniformResourceIdentifier names ([6] IA5String) of a GeneralNames sequence (.NET enumerates only DNS names and addresses).</summary>
    private static List<string> Uris(byte[] generalNames)
    {
        var uris = new List<string>();
        var uri = new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 6);
        var names = new System.Formats.Asn1.AsnReader(generalNames, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
        while (names.HasData)
        {
            if (names.PeekTag() == uri)
            {
                uris.Add(names.ReadCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, uri));
            }
            else
            {
                names.ReadEncodedValue();
            }
        }

        return uris;
    }

    /// <summary>The host's names and addresses, and what the settings add: what the server certificate names.</summary>
    public static IReadOnlyCollection<string> HostNames(IPEndPoint? listen, IEnumerable<string> extra)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal) { "localhost", "127.0.0.1", "::1", Dns.GetHostName() };
        if (listen is not null && !listen.Address.Equals(IPAddress.Any) && !listen.Address.Equals(IPAddress.IPv6Any))
        {
            names.Add(listen.Address.ToString());
        }

        foreach (var address in SafeAddresses())
        {
            names.Add(address.ToString());
        }

        names.UnionWith(extra.Where(e => e.Length > 0));
        return names;
    }

    private static IEnumerable<IPAddress> SafeAddresses()
    {
        try
        {
            return System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(a => a.Address)
                .Where(a => !a.IsIPv6LinkLocal);
        }
        catch (System.Net.NetworkInformation.NetworkInformationException)
        {
            return [];
        }
    }

    private static X509Certificate2 Sign(X509Certificate2 ca, CertificateRequest request, DateTimeOffset now, TimeSpan lifetime, IEnumerable<string> names, Uri? uri, bool serverAuth)
    {
        AddExtensions(request, names, uri, serverAuth);
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // a positive serial number
        var notAfter = now + lifetime < ca.NotAfter ? now + lifetime : new DateTimeOffset(ca.NotAfter);
        return request.Create(ca, now.AddMinutes(-5), notAfter, serial);
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, ECDsa key, DateTimeOffset now, TimeSpan lifetime, IEnumerable<string> names, Uri? uri, bool serverAuth)
    {
        return Sign(ca, new CertificateRequest(subject, key, HashAlgorithmName.SHA256), now, lifetime, names, uri, serverAuth);
    }

    private static void AddExtensions(CertificateRequest request, IEnumerable<string> names, Uri? uri, bool serverAuth)
    {
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuth ? ServerAuth : ClientAuth)], false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            if (IPAddress.TryParse(name, out var address))
            {
                san.AddIpAddress(address);
            }
            else
            {
                san.AddDnsName(name);
            }
        }

        if (uri is not null)
        {
            san.AddUri(uri);
        }

        request.CertificateExtensions.Add(san.Build());
    }

    private static bool Covers(X509Certificate2 certificate, IEnumerable<string> names)
    {
        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (san is null)
        {
            return false;
        }

        var present = san.EnumerateDnsNames().Concat(san.EnumerateIPAddresses().Select(a => a.ToString())).ToHashSet(StringComparer.OrdinalIgnoreCase);
        return names.All(present.Contains);
    }
}
