using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace EcsLite.Coordinator.Core.Security;

/// <summary>
/// A join token as an operator copies it to a new host (k3s's idea): it names the cluster CA by its
/// SHA-256 fingerprint, so the agent can check the coordinator before it sends anything, and carries
/// an id and a secret, presented once with the agent's certificate request.
/// Text form: <c>ECSLITE1:&lt;ca-sha256-hex&gt;:&lt;id&gt;.&lt;secret&gt;</c>.
/// </summary>
public sealed partial record JoinToken(string CaSha256, string Id, string Secret)
{
    public const string Prefix = "ECSLITE1";

    public override string ToString() => $"{Prefix}:{CaSha256}:{Id}.{Secret}";

    /// <summary>Reads a token, or throws InvalidParameterException naming <paramref name="field"/>; the secret is never quoted.</summary>
    public static JoinToken Parse(string text, string field = "joinToken")
    {
        var match = Shape().Match(text.Trim());
        return match.Success
            ? new JoinToken(match.Groups["ca"].Value.ToLowerInvariant(), match.Groups["id"].Value, match.Groups["secret"].Value)
            : throw EcsException.InvalidParameter(field, $"A join token looks like {Prefix}:<64 hex digits>:<id>.<secret>, as `ecslite-coordinator token create` prints it.");
    }

    [GeneratedRegex("^ECSLITE1:(?<ca>[0-9a-fA-F]{64}):(?<id>[a-z0-9]{6,32})\\.(?<secret>[A-Za-z0-9]{32,64})$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();
}

/// <summary>A token as the coordinator keeps it: the secret only hashed.</summary>
public sealed record StoredJoinToken(
    string Id,
    ImmutableArray<byte> SecretSha256,
    string Cluster,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    int UsesLeft,
    bool Unlimited,
    bool Revoked);

/// <summary>The join tokens, as an immutable value; every change returns a new one.</summary>
public sealed record JoinTokenState(ImmutableSortedDictionary<string, StoredJoinToken> Tokens)
{
    /// <summary>At most this many tokens are kept (expired and used-up ones count until they are purged).</summary>
    public const int MaxTokens = 1000;

    public static readonly TimeSpan MaxTtl = TimeSpan.FromDays(365);

    public static JoinTokenState Empty { get; } = new(ImmutableSortedDictionary.Create<string, StoredJoinToken>(StringComparer.Ordinal));

    /// <summary>A new token; <paramref name="id"/> and <paramref name="secret"/> come from the caller (randomness is not pure).</summary>
    public (JoinTokenState State, StoredJoinToken Token) Create(string id, string secret, string cluster, TimeSpan ttl, int? uses, DateTimeOffset now)
    {
        if (ttl <= TimeSpan.Zero || ttl > MaxTtl)
        {
            throw EcsException.InvalidParameter("ttl", $"A token lives between 1 second and {MaxTtl.TotalDays:F0} days.");
        }

        if (uses is <= 0)
        {
            throw EcsException.InvalidParameter("uses", "A token is good for at least one join (leave it out for any number until it expires).");
        }

        if (Tokens.Count >= MaxTokens)
        {
            throw new EcsException(EcsErrorType.LimitExceededException, $"At most {MaxTokens} join tokens are kept; revoke some first.");
        }

        var token = new StoredJoinToken(id, [.. SHA256.HashData(Encoding.UTF8.GetBytes(secret))], cluster, now, now + ttl, uses ?? 0, uses is null, Revoked: false);
        return (new(Tokens.SetItem(id, token)), token);
    }

    /// <summary>
    /// Spends one use of a token, or throws ClientException. The reason is the same whether the id is
    /// unknown, the secret wrong, or the token revoked, expired or used up: a caller learns nothing.
    /// </summary>
    public (JoinTokenState State, StoredJoinToken Token) Redeem(string id, string secret, DateTimeOffset now)
    {
        if (!Tokens.TryGetValue(id, out var token)
            || !CryptographicOperations.FixedTimeEquals(token.SecretSha256.AsSpan(), SHA256.HashData(Encoding.UTF8.GetBytes(secret)))
            || token.Revoked || now >= token.ExpiresAt || (!token.Unlimited && token.UsesLeft <= 0))
        {
            throw EcsException.Client("joinToken", "The join token is not valid: unknown, revoked, expired or used up.");
        }

        var spent = token.Unlimited ? token : token with { UsesLeft = token.UsesLeft - 1 };
        return (new(Tokens.SetItem(id, spent)), spent);
    }

    public (JoinTokenState State, StoredJoinToken Token) Revoke(string id)
    {
        var token = Tokens.GetValueOrDefault(id) ?? throw new EcsException(EcsErrorType.ResourceNotFoundException, $"No join token with id {id}.", "id");
        var revoked = token with { Revoked = true };
        return (new(Tokens.SetItem(id, revoked)), revoked);
    }

    /// <summary>Tokens expired for longer than <paramref name="retention"/>: gone from the list (revoked and used-up ones stay listed until then).</summary>
    public IEnumerable<string> Purgeable(DateTimeOffset now, TimeSpan retention) =>
        Tokens.Values.Where(t => now >= t.ExpiresAt + retention).Select(t => t.Id);
}
