using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using EcsLite.Api.V1;
using EcsLite.Store.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Security;

/// <summary>
/// The join tokens (activations), as an immutable value; every change returns a new one. Bounds as
/// SSM's CreateActivation: 1 to 1000 registrations, expiring within 30 days (24 hours by default).
/// </summary>
public sealed record JoinTokenState(ImmutableSortedDictionary<string, StoredActivation> Tokens)
{
    /// <summary>At most this many tokens are kept (expired and used-up ones count until they are purged).</summary>
    public const int MaxTokens = 1000;

    public const int MaxRegistrations = 1000;

    public static readonly TimeSpan MaxTtl = TimeSpan.FromDays(30);

    public static readonly TimeSpan DefaultTtl = TimeSpan.FromHours(24);

    /// <summary>How long an expired token stays listed (as SSM lists expired activations) before it is purged.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    public static JoinTokenState Empty { get; } = new(ImmutableSortedDictionary.Create<string, StoredActivation>(StringComparer.Ordinal));

    public static JoinTokenState Load(IEnumerable<StoredActivation> tokens) =>
        new(tokens.ToImmutableSortedDictionary(t => t.Activation.ActivationId, t => t, StringComparer.Ordinal));

    /// <summary>A new token; <paramref name="id"/> and <paramref name="secret"/> come from the caller (randomness is not pure).</summary>
    public (JoinTokenState State, StoredActivation Token) Create(string id, string secret, CreateActivationRequest request, DateTimeOffset now)
    {
        if (request.Description.Length > 256)
        {
            throw EcsException.InvalidParameter("Description", "is at most 256 characters.");
        }

        var expires = request.ExpirationDate is { } given ? given.ToDateTimeOffset() : now + DefaultTtl;
        if (expires <= now || expires > now + MaxTtl)
        {
            throw EcsException.InvalidParameter("ExpirationDate", $"A token expires in the future and within {MaxTtl.TotalDays:F0} days.");
        }

        var limit = request.HasRegistrationLimit ? request.RegistrationLimit : 1;
        if (limit is < 1 or > MaxRegistrations)
        {
            throw EcsException.InvalidParameter("RegistrationLimit", $"is between 1 and {MaxRegistrations}.");
        }

        if (Tokens.Count >= MaxTokens)
        {
            throw new EcsException(EcsErrorType.LimitExceededException, $"At most {MaxTokens} join tokens are kept; delete some first.");
        }

        var token = new StoredActivation
        {
            Activation = new Activation
            {
                ActivationId = id,
                Description = request.Description,
                RegistrationLimit = limit,
                ExpirationDate = Timestamp.FromDateTimeOffset(expires),
                CreatedDate = Timestamp.FromDateTimeOffset(now),
                Cluster = request.Cluster,
            },
            SecretSha256 = ByteString.CopyFrom(Hash(secret)),
        };
        return (new(Tokens.SetItem(id, token)), token);
    }

    /// <summary>
    /// Spends one registration of a token for a host set to join <paramref name="cluster"/> (empty: the
    /// token's, or default), or throws ClientException. The reason is the same whether the id is
    /// unknown, the code wrong, or the token deleted, expired or used up: a caller learns nothing.
    /// </summary>
    public (JoinTokenState State, StoredActivation Token) Redeem(string id, string secret, string cluster, DateTimeOffset now)
    {
        if (!Tokens.TryGetValue(id, out var token)
            || !CryptographicOperations.FixedTimeEquals(token.SecretSha256.Span, Hash(secret))
            || Expired(token, now) || token.Activation.RegistrationsCount >= token.Activation.RegistrationLimit)
        {
            throw EcsException.Client("joinToken", "The join token is not valid: unknown, deleted, expired or used up.");
        }

        var allowed = token.Activation.Cluster;
        if (allowed.Length > 0 && cluster.Length > 0 && cluster != allowed)
        {
            throw EcsException.Client("cluster", $"This join token is for cluster {allowed}; the agent is set to join {cluster} (ECS_CLUSTER).");
        }

        var spent = token.Clone();
        spent.Activation.RegistrationsCount++;
        return (new(Tokens.SetItem(id, spent)), spent);
    }

    /// <summary>The cluster a host joining with <paramref name="token"/> joins, set to <paramref name="cluster"/>.</summary>
    public static string ClusterFor(StoredActivation token, string cluster) =>
        token.Activation.Cluster.Length > 0 ? token.Activation.Cluster : cluster.Length > 0 ? cluster : "default";

    public JoinTokenState Delete(string id) =>
        Tokens.ContainsKey(id)
            ? new(Tokens.Remove(id))
            : throw new EcsException(EcsErrorType.InvalidParameterException, $"No activation with id {Validation.CallerText.Quote(id)}.", "ActivationId");

    /// <summary>A token as listed: never its secret.</summary>
    public static Activation Describe(StoredActivation token, DateTimeOffset now)
    {
        var shown = token.Activation.Clone();
        shown.Expired = Expired(token, now);
        return shown;
    }

    /// <summary>Tokens expired for longer than <see cref="Retention"/>.</summary>
    public IEnumerable<string> Purgeable(DateTimeOffset now) =>
        Tokens.Values.Where(t => now >= t.Activation.ExpirationDate.ToDateTimeOffset() + Retention).Select(t => t.Activation.ActivationId);

    private static bool Expired(StoredActivation token, DateTimeOffset now) => now >= token.Activation.ExpirationDate.ToDateTimeOffset();

    private static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));
}
