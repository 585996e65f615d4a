using System.Security.Cryptography.X509Certificates;
using EcsLite.Security;
using EcsLite.Testing;

namespace EcsLite.Agent.Tests;

/// <summary>The agent's TLS identity against the stand-in coordinator over real TLS: joining, keeping, renewing.</summary>
public sealed class AgentCredentialsTests : IAsyncLifetime
{
    private readonly string _dataDir = CoordinatorProcess.TempDirectory("ecslite-credentials");
    private FakeCoordinator _coordinator = null!;

    public async Task InitializeAsync() => _coordinator = await FakeCoordinator.StartAsync();

    public async Task DisposeAsync()
    {
        await _coordinator.DisposeAsync();
        Directory.Delete(_dataDir, recursive: true);
    }

    [Fact]
    public async Task A_joined_host_keeps_its_identity_and_takes_a_renewed_certificate_only_for_the_key_it_asked_for()
    {
        var credentials = new AgentCredentials(_dataDir, _coordinator.JoinToken);
        var arn = await credentials.EnrollAsync(new Uri(_coordinator.Address), "default", "renewing", CancellationToken.None);
        Assert.Equal(_coordinator.InstanceArn, arn);
        Assert.Equal(arn, credentials.ContainerInstanceArn);
        Assert.Equal("default", credentials.Cluster);
        Assert.False(credentials.NeedsRenewal(DateTimeOffset.UtcNow));
        Assert.True(credentials.NeedsRenewal(DateTimeOffset.UtcNow + ClusterCertificates.ClientLifetime - ClusterCertificates.RenewBefore + TimeSpan.FromHours(1)));

        // Loaded again from the files, without the token: the same identity.
        var reloaded = new AgentCredentials(_dataDir, null).Load();
        Assert.Equal(arn, reloaded.ContainerInstanceArn);
        var keyBefore = await File.ReadAllTextAsync(Path.Combine(_dataDir, "tls", "agent.key"));

        // A certificate for another key is not taken; one for the key asked for is, and kept.
        var request = reloaded.RenewalRequest();
        using var stranger = _coordinator.Certificates.IssueClient(ClusterCertificates.RequestFor(System.Security.Cryptography.ECDsa.Create()), arn, DateTimeOffset.UtcNow);
        Assert.False(reloaded.Renewed(stranger.ExportCertificatePem()));
        using var renewed = _coordinator.Certificates.IssueClient(request, arn, DateTimeOffset.UtcNow.AddDays(1));
        Assert.True(reloaded.Renewed(renewed.ExportCertificatePem()));
        Assert.Equal(renewed.SerialNumber, reloaded.Certificate!.SerialNumber);
        Assert.NotEqual(keyBefore, await File.ReadAllTextAsync(Path.Combine(_dataDir, "tls", "agent.key")));
        Assert.Equal(renewed.SerialNumber, new AgentCredentials(_dataDir, null).Load().Certificate!.SerialNumber);
        Assert.False(reloaded.Renewed(renewed.ExportCertificatePem())); // asked once, taken once
    }

    [Fact]
    public async Task A_host_with_a_token_for_another_coordinator_learns_nothing_and_sends_nothing()
    {
        await using var other = await FakeCoordinator.StartAsync("other");
        var credentials = new AgentCredentials(_dataDir, other.JoinToken);
        var error = await Assert.ThrowsAsync<NotJoinedException>(() => credentials.EnrollAsync(new Uri(_coordinator.Address), "default", "lost", CancellationToken.None));
        Assert.Contains("not the coordinator the token came from", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _coordinator.Enrollments);
        Assert.False(File.Exists(Path.Combine(_dataDir, "tls", "agent.key")));
    }
}
