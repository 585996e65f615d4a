using System.Security.Cryptography.X509Certificates;
using EcsLite.Api.V1;
using EcsLite.Security;
using EcsLite.Testing;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsLite.Agent.Tests;

/// <summary>
/// Hosts joining by token and holding their own certificates, and every way in refused: real coordinator
/// and agent processes, real TLS, real gRPC.
/// </summary>
public sealed class JoinTests
{
    private static async Task<int> InstancesAsync(CoordinatorProcess coordinator) =>
        (await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns.Count;

    private static async Task<string> TokenAsync(CoordinatorProcess coordinator, params string[] options)
    {
        var (code, output) = await coordinator.RunCliAsync(["token", "create", .. options]);
        Assert.True(code == 0, output);
        return output.Split('\n').Single(l => l.StartsWith(JoinToken.Prefix + ":", StringComparison.Ordinal)).Trim();
    }

    [Fact]
    public async Task A_host_joins_with_a_token_from_the_cli_and_keeps_its_key_and_certificate_private()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var token = await TokenAsync(coordinator, "--ttl", "1h", "--uses", "1", "--description", "rack 2");
        Assert.StartsWith($"{JoinToken.Prefix}:{ClusterCertificatesFingerprint(coordinator)}:", token, StringComparison.Ordinal);

        await using var agent = AgentProcess.Start(coordinator.Address, token);
        await agent.WaitJoinedAsync();
        var tls = Path.Combine(agent.DataDir, "tls");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(tls));
        Assert.All(new[] { "agent.key", "agent.crt", "ca.crt" }, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(tls, f))));
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(tls, "agent.crt")));
        Assert.Equal(agent.ContainerInstanceArn, ClusterCertificates.InstanceOf(certificate));
        Assert.DoesNotContain(token.Split('.')[^1], agent.Output, StringComparison.Ordinal); // the secret is never logged

        // Spent: listed as used, and a second host cannot use it.
        var (_, list) = await coordinator.RunCliAsync("token", "list");
        Assert.Contains("1/1", list, StringComparison.Ordinal);
        Assert.Contains("rack 2", list, StringComparison.Ordinal);
        await using var second = AgentProcess.Start(coordinator.Address, token);
        await second.Process.WaitForOutputAsync("The join token is not valid", TimeSpan.FromSeconds(20));

        // Restarted without the token: it is the same instance, by its certificate.
        await agent.Process.StopAsync();
        var again = AgentProcess.Start(coordinator.Address, null, agent.DataDir);
        await again.WaitJoinedAsync();
        Assert.Equal(ClusterCertificates.InstanceOf(certificate), again.ContainerInstanceArn);
        Assert.Equal(1, await InstancesAsync(coordinator));
        await again.Process.StopAsync();
    }

    [Fact]
    public async Task Without_a_token_with_a_wrong_secret_or_with_an_expired_or_revoked_token_a_host_does_not_join()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var good = JoinToken.Parse(coordinator.JoinToken);
        var wrong = (good with { Secret = new string('x', good.Secret.Length) }).ToString();
        var revoked = await TokenAsync(coordinator);
        Assert.Equal(0, (await coordinator.RunCliAsync("token", "revoke", JoinToken.Parse(revoked).Id)).ExitCode);
        var activations = new Activations.ActivationsClient(coordinator.Channel);
        var expired = (await activations.CreateActivationAsync(new CreateActivationRequest
        {
            ExpirationDate = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddSeconds(1)),
        })).JoinToken;
        await Eventually.HoldsAsync(async () => (await activations.DescribeActivationsAsync(new DescribeActivationsRequest())).ActivationList
            .Single(a => expired.Contains(a.ActivationId, StringComparison.Ordinal)).Expired, TimeSpan.FromSeconds(10), "the token to expire");

        await using var none = AgentProcess.Start(coordinator.Address, null);
        await using var withWrong = AgentProcess.Start(coordinator.Address, wrong);
        await using var withRevoked = AgentProcess.Start(coordinator.Address, revoked);
        await using var withExpired = AgentProcess.Start(coordinator.Address, expired);
        await none.Process.WaitForOutputAsync("has not joined a cluster yet: set ECSLITE_JOIN_TOKEN", TimeSpan.FromSeconds(20));
        foreach (var agent in new[] { withWrong, withRevoked, withExpired })
        {
            await agent.Process.WaitForOutputAsync("refused this agent: ClientException: joinToken: The join token is not valid", TimeSpan.FromSeconds(20));
        }

        Assert.All(new[] { none, withWrong, withRevoked, withExpired }, a => Assert.Null(a.ContainerInstanceArn));
        Assert.Equal(0, await InstancesAsync(coordinator));
        var audit = await coordinator.AuditAsync(lines => lines.Count(l => l.Contains("ecslite:Enroll", StringComparison.Ordinal) && l.Contains("ClientException", StringComparison.Ordinal)) >= 3);
        Assert.DoesNotContain(audit, l => l.Contains(good.Secret, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_agent_refuses_a_coordinator_whose_CA_is_not_the_tokens_and_sends_it_nothing()
    {
        await using var right = await CoordinatorProcess.StartAsync();
        await using var impostor = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.Start(impostor.Address, right.JoinToken);
        await agent.Process.WaitForOutputAsync("not the coordinator the token came from", TimeSpan.FromSeconds(20));

        Assert.Null(agent.ContainerInstanceArn);
        Assert.Equal(0, await InstancesAsync(impostor));
        Assert.DoesNotContain("ecslite:Enroll", File.Exists(Path.Combine(impostor.DataDir, "audit.log")) ? await File.ReadAllTextAsync(Path.Combine(impostor.DataDir, "audit.log")) : "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deregistering_an_instance_revokes_its_certificate_and_drops_its_agent_at_once()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await agent.WaitJoinedAsync();
        var arn = agent.ContainerInstanceArn!;

        await coordinator.Ecs.DeregisterContainerInstanceAsync(new DeregisterContainerInstanceRequest { ContainerInstance = arn, Force = true });
        await agent.Process.WaitForOutputAsync($"The certificate of {arn} is revoked", TimeSpan.FromSeconds(20));

        // Its own certificate, presented by anyone, is refused too.
        var tls = Path.Combine(agent.DataDir, "tls");
        using var channel = WithCertificate(coordinator, Path.Combine(tls, "agent.crt"), Path.Combine(tls, "agent.key"));
        var error = await HelloRefusedAsync(channel, arn);
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        var described = await coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { arn } });
        Assert.Equal("INACTIVE", described.ContainerInstances[0].Status);
        Assert.False(described.ContainerInstances[0].AgentConnected);
    }

    [Fact]
    public async Task A_valid_certificate_cannot_speak_for_another_instance()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var victim = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await using var other = AgentProcess.Start(coordinator.Address, coordinator.JoinToken);
        await Task.WhenAll(victim.WaitJoinedAsync(), other.WaitJoinedAsync());

        // The other host's own key and certificate, naming the victim in its hello.
        var tls = Path.Combine(other.DataDir, "tls");
        using var channel = WithCertificate(coordinator, Path.Combine(tls, "agent.crt"), Path.Combine(tls, "agent.key"));
        var error = await HelloRefusedAsync(channel, victim.ContainerInstanceArn!);
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains($"cannot speak for {victim.ContainerInstanceArn}", error.Status.Detail, StringComparison.Ordinal);

        // The victim was not replaced: still connected, on its first connection.
        var described = await coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { victim.ContainerInstanceArn } });
        Assert.True(described.ContainerInstances[0].AgentConnected);
        Assert.DoesNotContain("replaced by a newer connection", victim.Output, StringComparison.Ordinal);
        await coordinator.AuditAsync(lines => lines.Any(l => l.Contains("ecslite:AgentConnect", StringComparison.Ordinal) && l.Contains(victim.ContainerInstanceArn!, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Plaintext_and_certificates_from_another_CA_are_refused_on_the_TCP_port()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var before = await InstancesAsync(coordinator);

        // HTTP/2 without TLS: the handshake fails, no call is made. The client sees the connection end
        // (Unavailable) or the server's TLS alert where it expected HTTP/2 frames (Internal), as the race goes.
        using var plaintext = GrpcChannel.ForAddress($"http://127.0.0.1:{coordinator.Port}");
        var error = await Assert.ThrowsAsync<RpcException>(() => new Ecs.EcsClient(plaintext).ListClustersAsync(new ListClustersRequest()).ResponseAsync);
        Assert.Contains(error.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Internal });
        Assert.False(error.Trailers.Any(t => t.Key == "ecs-error-type"), $"the coordinator answered a plaintext call: {error.Status}");

        // A certificate naming an instance, but signed by a CA of the caller's own: the TLS handshake refuses it.
        var forged = Path.Combine(CoordinatorProcess.TempDirectory("ecslite-forged"), "tls");
        var ca = ClusterCertificates.LoadOrCreate(forged, ["localhost"], DateTimeOffset.UtcNow);
        using var key = System.Security.Cryptography.ECDsa.Create();
        using var issued = ca.IssueClient(ClusterCertificates.RequestFor(key), "arn:aws:ecs:local:000000000000:container-instance/default/forged", DateTimeOffset.UtcNow);
        using var forgedCertificate = CoordinatorProcess.ClientCertificate(issued, key);
        using var channel = CoordinatorProcess.AuthenticatedChannel(coordinator.Address, () => null, coordinator.CaFile, forgedCertificate);
        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = new AgentChannel.AgentChannelClient(channel).Connect();
            await call.RequestStream.WriteAsync(new AgentMessage { Hello = new AgentHello { Hostname = "forged", Cluster = "default" } });
            await call.ResponseStream.MoveNext();
        });
        Assert.Contains(refused.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Internal }); // the handshake's alert, or a reset, as the race goes
        Assert.False(refused.Trailers.Any(t => t.Key == "ecs-error-type"), $"the coordinator answered a forged certificate: {refused.Status}");
        Assert.Equal(before, await InstancesAsync(coordinator));
        Directory.Delete(Path.GetDirectoryName(forged)!, recursive: true);
    }

    [Fact]
    public async Task An_enrolled_host_renews_its_certificate_over_the_channel_for_the_same_instance()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var host = await coordinator.EnrollAsync();
        using var key = System.Security.Cryptography.ECDsa.Create();
        using var call = new AgentChannel.AgentChannelClient(host.Channel).Connect();
        await call.RequestStream.WriteAsync(new AgentMessage { Hello = new AgentHello { Hostname = "renewing", Cluster = "default", RegisteredResources = { Cpu(1024), Memory(1024) } } });
        await call.RequestStream.WriteAsync(new AgentMessage { RenewCertificate = new CertificateRenewal { CertificateSigningRequest = Google.Protobuf.ByteString.CopyFrom(ClusterCertificates.RequestFor(key)) } });
        string? renewed = null;
        while (renewed is null && await call.ResponseStream.MoveNext())
        {
            renewed = call.ResponseStream.Current.Certificate?.Certificate;
        }

        using var certificate = X509Certificate2.CreateFromPem(renewed);
        Assert.Equal(host.ContainerInstanceArn, ClusterCertificates.InstanceOf(certificate));
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), certificate.GetECDsaPublicKey()!.ExportSubjectPublicKeyInfo());
        Assert.True(certificate.NotAfter > host.Certificate.NotAfter.AddSeconds(-5));
    }

    private static Resource Cpu(int units) => new() { Name = "CPU", Type = "INTEGER", IntegerValue = units };

    private static Resource Memory(int mib) => new() { Name = "MEMORY", Type = "INTEGER", IntegerValue = mib };

    private static string ClusterCertificatesFingerprint(CoordinatorProcess coordinator) =>
        ClusterCertificates.Fingerprint(X509CertificateLoader.LoadCertificateFromFile(coordinator.CaFile));

    private static GrpcChannel WithCertificate(CoordinatorProcess coordinator, string certificate, string key)
    {
        using var loaded = X509Certificate2.CreateFromPemFile(certificate, key);
        return CoordinatorProcess.AuthenticatedChannel(coordinator.Address, () => null, coordinator.CaFile, CoordinatorProcess.ClientCertificate(loaded));
    }

    private static async Task<RpcException> HelloRefusedAsync(GrpcChannel channel, string containerInstanceArn)
    {
        using var call = new AgentChannel.AgentChannelClient(channel).Connect();
        var hello = new AgentHello { ContainerInstanceArn = containerInstanceArn, Hostname = "impostor", Cluster = "default", RegisteredResources = { Cpu(1_048_576), Memory(1024) } };
        try
        {
            await call.RequestStream.WriteAsync(new AgentMessage { Hello = hello });
        }
        catch (RpcException)
        {
            // The coordinator may refuse the certificate and end the call before the hello is written
            // (the write is then cancelled): the refusal is the call's status, read below.
        }

        return await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext());
    }
}
