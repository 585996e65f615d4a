using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Security;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Tests;

public sealed class JoinTokenTests
{
    private static readonly DateTimeOffset Now = Fixtures.Now;
    private const string Ca = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private const string Id = "e488f2f6-e686-4afb-8a04-ef6dfa6b2d10";
    private const string Secret = "s3cretS3cretS3cretS3cretS3cret0123";

    [Fact]
    public void A_token_reads_back_as_it_was_printed_and_a_malformed_one_is_refused_without_quoting_it()
    {
        var token = new JoinToken(Ca, Id, Secret);
        Assert.Equal(token, JoinToken.Parse(token.ToString()));
        var error = Assert.Throws<FormatException>(() => JoinToken.Parse($"ECSLITE1:{Ca}:{Id}:{Secret}"));
        Assert.DoesNotContain(Secret, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("A join token looks like", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_is_spent_once_per_join_up_to_its_limit_and_never_after_it_expires_or_is_deleted()
    {
        var (state, created) = JoinTokenState.Empty.Create(Id, Secret, new CreateActivationRequest { RegistrationLimit = 2 }, Now);
        Assert.Equal(Now + JoinTokenState.DefaultTtl, created.Activation.ExpirationDate.ToDateTimeOffset());
        (state, var first) = state.Redeem(Id, Secret, "", Now);
        Assert.Equal(1, first.Activation.RegistrationsCount);
        (state, _) = state.Redeem(Id, Secret, "", Now);
        var usedUp = Assert.Throws<EcsException>(() => state.Redeem(Id, Secret, "", Now));

        var (fresh, _) = JoinTokenState.Empty.Create(Id, Secret, new CreateActivationRequest { RegistrationLimit = 10, ExpirationDate = Timestamp.FromDateTimeOffset(Now.AddHours(1)) }, Now);
        var expired = Assert.Throws<EcsException>(() => fresh.Redeem(Id, Secret, "", Now.AddHours(1)));
        var wrong = Assert.Throws<EcsException>(() => fresh.Redeem(Id, Secret + "x", "", Now));
        var unknown = Assert.Throws<EcsException>(() => fresh.Redeem("00000000-e686-4afb-8a04-ef6dfa6b2d10", Secret, "", Now));
        var afterDelete = Assert.Throws<EcsException>(() => fresh.Delete(Id).Redeem(Id, Secret, "", Now));
        Assert.True(JoinTokenState.Describe(fresh.Tokens[Id], Now.AddHours(1)).Expired);
        Assert.False(JoinTokenState.Describe(fresh.Tokens[Id], Now).Expired);

        // One answer for every reason: a caller learns nothing about which it was.
        Assert.Single(new[] { usedUp, expired, wrong, unknown, afterDelete }.Select(e => e.Message).Distinct());
        Assert.Equal(EcsErrorType.ClientException, usedUp.ErrorType);
    }

    [Fact]
    public void A_token_for_one_cluster_joins_hosts_to_it_only_and_a_mismatch_spends_nothing()
    {
        var (state, _) = JoinTokenState.Empty.Create(Id, Secret, new CreateActivationRequest { Cluster = "edge" }, Now);
        var error = Assert.Throws<EcsException>(() => state.Redeem(Id, Secret, "prod", Now));
        Assert.Equal("cluster", error.Field);
        Assert.Contains("for cluster edge", error.Message, StringComparison.Ordinal);
        var (_, spent) = state.Redeem(Id, Secret, "", Now);
        Assert.Equal("edge", JoinTokenState.ClusterFor(spent, ""));
        var (any, _) = JoinTokenState.Empty.Create(Id, Secret, new CreateActivationRequest(), Now);
        Assert.Equal("prod", JoinTokenState.ClusterFor(any.Tokens[Id], "prod"));
        Assert.Equal("default", JoinTokenState.ClusterFor(any.Tokens[Id], ""));
    }

    [Theory]
    [InlineData(0, 1, "ExpirationDate")]
    [InlineData(31 * 24, 1, "ExpirationDate")]
    [InlineData(1, 0, "RegistrationLimit")]
    [InlineData(1, 1001, "RegistrationLimit")]
    public void Lifetimes_and_registrations_are_bounded_as_in_ssm(int hours, int limit, string field)
    {
        var request = new CreateActivationRequest { RegistrationLimit = limit, ExpirationDate = Timestamp.FromDateTimeOffset(Now.AddHours(hours)) };
        var error = Assert.Throws<EcsException>(() => JoinTokenState.Empty.Create(Id, Secret, request, Now));
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void Tokens_are_purged_a_while_after_they_expire()
    {
        var (state, _) = JoinTokenState.Empty.Create(Id, Secret, new CreateActivationRequest { ExpirationDate = Timestamp.FromDateTimeOffset(Now.AddHours(1)) }, Now);
        Assert.Empty(state.Purgeable(Now.AddHours(1)));
        Assert.Equal([Id], state.Purgeable(Now.AddHours(1) + JoinTokenState.Retention));
    }
}
