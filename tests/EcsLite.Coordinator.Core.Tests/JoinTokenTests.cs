using EcsLite.Coordinator.Core.Security;

namespace EcsLite.Coordinator.Core.Tests;

public sealed class JoinTokenTests
{
    private static readonly DateTimeOffset Now = Fixtures.Now;
    private const string Ca = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private const string Secret = "s3cretS3cretS3cretS3cretS3cret0123";

    [Fact]
    public void A_token_reads_back_as_it_was_printed_and_a_malformed_one_is_refused_without_quoting_it()
    {
        var token = new JoinToken(Ca, "abc123", Secret);
        Assert.Equal(token, JoinToken.Parse(token.ToString()));
        var error = Assert.Throws<EcsException>(() => JoinToken.Parse($"ECSLITE1:{Ca}:abc123:{Secret}"));
        Assert.DoesNotContain(Secret, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("joinToken: A join token looks like", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_is_spent_once_per_join_up_to_its_uses_and_never_after_it_expires_or_is_revoked()
    {
        var (state, _) = JoinTokenState.Empty.Create("abc123", Secret, "default", TimeSpan.FromHours(1), uses: 2, Now);
        (state, var first) = state.Redeem("abc123", Secret, Now);
        Assert.Equal(1, first.UsesLeft);
        (state, _) = state.Redeem("abc123", Secret, Now);
        var usedUp = Assert.Throws<EcsException>(() => state.Redeem("abc123", Secret, Now));

        var (unlimited, _) = JoinTokenState.Empty.Create("abc123", Secret, "default", TimeSpan.FromHours(1), uses: null, Now);
        for (var i = 0; i < 5; i++)
        {
            (unlimited, _) = unlimited.Redeem("abc123", Secret, Now.AddMinutes(i));
        }

        var expired = Assert.Throws<EcsException>(() => unlimited.Redeem("abc123", Secret, Now.AddHours(1)));
        var wrong = Assert.Throws<EcsException>(() => unlimited.Redeem("abc123", Secret + "x", Now));
        var unknown = Assert.Throws<EcsException>(() => unlimited.Redeem("zzz999", Secret, Now));
        var (revoked, _) = unlimited.Revoke("abc123");
        var afterRevoke = Assert.Throws<EcsException>(() => revoked.Redeem("abc123", Secret, Now));

        // One answer for every reason: a caller learns nothing about which it was.
        Assert.Single(new[] { usedUp, expired, wrong, unknown, afterRevoke }.Select(e => e.Message).Distinct());
        Assert.Equal(EcsErrorType.ClientException, usedUp.ErrorType);
    }

    [Theory]
    [InlineData(0, null, "ttl")]
    [InlineData(400 * 24, null, "ttl")]
    [InlineData(1, 0, "uses")]
    public void Lifetimes_and_uses_are_bounded(int hours, int? uses, string field)
    {
        var error = Assert.Throws<EcsException>(() => JoinTokenState.Empty.Create("abc123", Secret, "default", TimeSpan.FromHours(hours), uses, Now));
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void Tokens_are_purged_a_while_after_they_expire()
    {
        var (state, _) = JoinTokenState.Empty.Create("abc123", Secret, "default", TimeSpan.FromHours(1), null, Now);
        Assert.Empty(state.Purgeable(Now.AddHours(1), TimeSpan.FromDays(1)));
        Assert.Equal(["abc123"], state.Purgeable(Now.AddHours(25), TimeSpan.FromDays(1)));
    }
}
