using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Security;

/// <summary>IAM's error words for its own calls, and the words AWS uses for a caller it cannot authenticate.</summary>
public static class IamErrorType
{
    public const string AccessDeniedException = nameof(AccessDeniedException);
    public const string EntityAlreadyExists = nameof(EntityAlreadyExists);
    public const string NoSuchEntity = nameof(NoSuchEntity);
    public const string DeleteConflict = nameof(DeleteConflict);
    public const string LimitExceeded = nameof(LimitExceeded);

    /// <summary>No credentials at all.</summary>
    public const string MissingAuthenticationTokenException = nameof(MissingAuthenticationTokenException);

    /// <summary>A key that is unknown, wrong or inactive: AWS does not say which.</summary>
    public const string UnrecognizedClientException = nameof(UnrecognizedClientException);
}

/// <summary>Who is calling: a user, or the account's root (the admin socket), to whom no policy applies.</summary>
public sealed record Principal(string Name, string Arn, ImmutableArray<PolicyDocument> Policies, bool IsRoot = false)
{
    public static Principal Root(ArnFormat arns) => new("root", $"arn:aws:iam::{arns.AccountId}:root", [], IsRoot: true);
}

/// <summary>
/// The API's users, their inline policies and access keys, as one immutable value; commands return the
/// new value and the one user record that changed (or was removed), which is what the host stores.
/// </summary>
public sealed record IamState(
    ImmutableSortedDictionary<string, StoredUser> Users,
    ImmutableDictionary<string, string> KeyOwners,
    ImmutableDictionary<string, Principal> Principals)
{
    /// <summary>IAM's quotas: 5,000 users, 2 access keys a user; 10 inline policies a user is EcsLite's own bound.</summary>
    public const int MaxUsers = 5000;
    public const int MaxAccessKeys = 2;
    public const int MaxPolicies = 10;

    /// <summary>The administrator created at first start, and its policy.</summary>
    public const string AdminUser = "admin";
    public const string AdminPolicyName = "AdministratorAccess";
    public const string AdminPolicy = """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:*", "iam:*", "ssm:*", "scheduler:*", "secretsmanager:*", "kms:*", "logs:*", "cloudwatch:*"], "Resource": "*" }] }""";

    /// <summary>The administrator's policy as earlier versions wrote it: replaced by <see cref="AdminPolicy"/> at start (one an operator changed is left alone).</summary>
    public static readonly string[] EarlierAdminPolicies =
    [
        """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:*", "iam:*"], "Resource": "*" }] }""",
        """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:*", "iam:*", "ssm:*"], "Resource": "*" }] }""",
        """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:*", "iam:*", "ssm:*", "scheduler:*"], "Resource": "*" }] }""",
        """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:*", "iam:*", "ssm:*", "scheduler:*", "secretsmanager:*", "kms:*", "logs:*"], "Resource": "*" }] }""",
    ];

    private static readonly Regex UserName = new(@"^[\w+=,.@-]{1,64}$", RegexOptions.CultureInvariant);
    private static readonly Regex PolicyName = new(@"^[\w+=,.@-]{1,128}$", RegexOptions.CultureInvariant);
    private static readonly Regex AccessKeyId = new("^AKIA[A-Z2-7]{16}$", RegexOptions.CultureInvariant);

    public static IamState Empty { get; } = new(
        ImmutableSortedDictionary.Create<string, StoredUser>(StringComparer.Ordinal),
        ImmutableDictionary.Create<string, string>(StringComparer.Ordinal),
        ImmutableDictionary.Create<string, Principal>(StringComparer.Ordinal));

    public static IamState Load(IEnumerable<StoredUser> users) =>
        users.Aggregate(Empty, (state, user) => state.Put(user));

    public static string UserArn(ArnFormat arns, string name) => $"arn:aws:iam::{arns.AccountId}:user/{name}";

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    /// <summary>
    /// The principal an access key id and secret prove, or an error in AWS's words. The secret is
    /// compared in constant time; an unknown key, a wrong secret and an inactive key look the same.
    /// </summary>
    public Principal Authenticate(string accessKeyId, string secret)
    {
        if (KeyOwners.TryGetValue(accessKeyId, out var owner) && Users[owner] is var user
            && user.AccessKeys.FirstOrDefault(k => k.AccessKeyId == accessKeyId) is { Status: "Active" } key
            && CryptographicOperations.FixedTimeEquals(key.SecretSha256.Span, Hash(secret)))
        {
            return Principals[owner];
        }

        throw new EcsException(IamErrorType.UnrecognizedClientException, "The security token included in the request is invalid.");
    }

    /// <summary>A user as a caller, its policies parsed once (when they change, not on every call).</summary>
    private static Principal PrincipalOf(StoredUser user) =>
        new(user.User.UserName, user.User.Arn, [.. user.Policies.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => PolicyDocument.Parse(p.Value))]);

    public (IamState State, StoredUser User) CreateUser(string name, string userId, CommandContext context)
    {
        CheckName(UserName, name, "UserName");
        if (Users.ContainsKey(name))
        {
            throw new EcsException(IamErrorType.EntityAlreadyExists, $"User with name {name} already exists.", "UserName");
        }

        if (Users.Count >= MaxUsers)
        {
            throw new EcsException(IamErrorType.LimitExceeded, $"Cannot exceed quota for UsersPerAccount: {MaxUsers}.");
        }

        var user = new StoredUser
        {
            User = new User { UserName = name, UserId = userId, Arn = UserArn(context.Arns, name), Path = "/", CreateDate = Timestamp.FromDateTimeOffset(context.Now) },
        };
        return (Put(user), user);
    }

    public StoredUser Get(string name) =>
        Users.GetValueOrDefault(name) ?? throw new EcsException(IamErrorType.NoSuchEntity, $"The user with name {name} cannot be found.", "UserName");

    public (IamState State, string Removed) DeleteUser(string name)
    {
        var user = Get(name);
        if (user.AccessKeys.Count > 0 || user.Policies.Count > 0)
        {
            throw new EcsException(IamErrorType.DeleteConflict, "Cannot delete entity, must delete access keys and policies first.", "UserName");
        }

        return (this with { Users = Users.Remove(name), Principals = Principals.Remove(name) }, name);
    }

    public (IamState State, StoredUser User) PutUserPolicy(string name, string policyName, string document)
    {
        var user = Get(name);
        CheckName(PolicyName, policyName, "PolicyName");
        PolicyDocument.Parse(document, "PolicyDocument");
        if (!user.Policies.ContainsKey(policyName) && user.Policies.Count >= MaxPolicies)
        {
            throw new EcsException(IamErrorType.LimitExceeded, $"A user has at most {MaxPolicies} inline policies.", "PolicyName");
        }

        var changed = user.Clone();
        changed.Policies[policyName] = document;
        return (Put(changed), changed);
    }

    public string GetUserPolicy(string name, string policyName) =>
        Get(name).Policies.GetValueOrDefault(policyName)
        ?? throw new EcsException(IamErrorType.NoSuchEntity, $"The user policy with name {policyName} cannot be found.", "PolicyName");

    public (IamState State, StoredUser User) DeleteUserPolicy(string name, string policyName)
    {
        GetUserPolicy(name, policyName);
        var changed = Get(name).Clone();
        changed.Policies.Remove(policyName);
        return (Put(changed), changed);
    }

    /// <summary>A new key; <paramref name="accessKeyId"/> and <paramref name="secret"/> are made by the caller (randomness is not pure).</summary>
    public (IamState State, StoredUser User) CreateAccessKey(string name, string accessKeyId, string secret, CommandContext context, EncryptedValue? sealedSecret = null)
    {
        var user = Get(name);
        if (user.AccessKeys.Count >= MaxAccessKeys)
        {
            throw new EcsException(IamErrorType.LimitExceeded, $"Cannot exceed quota for AccessKeysPerUser: {MaxAccessKeys}.");
        }

        var changed = user.Clone();
        changed.AccessKeys.Add(new StoredAccessKey
        {
            AccessKeyId = accessKeyId,
            Status = "Active",
            SecretSha256 = Google.Protobuf.ByteString.CopyFrom(Hash(secret)),
            CreateDate = Timestamp.FromDateTimeOffset(context.Now),
            Secret = sealedSecret,
        });
        return (Put(changed), changed);
    }

    /// <summary>The context an access key's sealed secret is bound to.</summary>
    public static string SecretContext(string accessKeyId) => $"access-key:{accessKeyId}";

    /// <summary>
    /// What a SigV4 signature by this key is checked against: its user and its sealed secret. An unknown
    /// key, an inactive one and one without a sealed secret (made before SigV4) look the same, as in AWS.
    /// </summary>
    public (Principal Principal, EncryptedValue Secret) SigningKey(string accessKeyId)
    {
        if (KeyOwners.TryGetValue(accessKeyId, out var owner) && Users[owner] is var user
            && user.AccessKeys.FirstOrDefault(k => k.AccessKeyId == accessKeyId) is { Status: "Active", Secret: { } secret })
        {
            return (Principals[owner], secret);
        }

        throw new EcsException(IamErrorType.UnrecognizedClientException, "The security token included in the request is invalid.");
    }

    /// <summary>Keys whose secret is known (the administrator's file) but not yet sealed: the users to store again.</summary>
    public (IamState State, IReadOnlyList<StoredUser> Users) Seal(IReadOnlyDictionary<string, string> secrets, Func<string, string, EncryptedValue> seal)
    {
        var changed = new List<StoredUser>();
        foreach (var user in Users.Values)
        {
            var keys = user.AccessKeys.Where(k => k.Secret is null && secrets.TryGetValue(k.AccessKeyId, out var s)
                && CryptographicOperations.FixedTimeEquals(k.SecretSha256.Span, Hash(s))).ToList();
            if (keys.Count == 0)
            {
                continue;
            }

            var copy = user.Clone();
            foreach (var key in copy.AccessKeys.Where(k => keys.Any(c => c.AccessKeyId == k.AccessKeyId)))
            {
                key.Secret = seal(secrets[key.AccessKeyId], SecretContext(key.AccessKeyId));
            }

            changed.Add(copy);
        }

        return (changed.Aggregate(this, (s, u) => s.Put(u)), changed);
    }

    /// <summary>Every sealed secret under a stale key opened and sealed again: the users to store again.</summary>
    public (IamState State, IReadOnlyList<StoredUser> Users) Reseal(Func<EncryptedValue, bool> stale, Func<EncryptedValue, string, byte[]> open, Func<byte[], string, EncryptedValue> seal)
    {
        var changed = Users.Values.Where(u => u.AccessKeys.Any(k => k.Secret is { } s && stale(s))).Select(u =>
        {
            var copy = u.Clone();
            foreach (var key in copy.AccessKeys.Where(k => k.Secret is { } s && stale(s)))
            {
                key.Secret = seal(open(key.Secret, SecretContext(key.AccessKeyId)), SecretContext(key.AccessKeyId));
            }

            return copy;
        }).ToList();
        return (changed.Aggregate(this, (s, u) => s.Put(u)), changed);
    }

    public (IamState State, StoredUser User) UpdateAccessKey(string name, string accessKeyId, string status)
    {
        if (status is not ("Active" or "Inactive"))
        {
            throw EcsException.InvalidParameter("Status", "Status is Active or Inactive.");
        }

        var changed = Get(name).Clone();
        Key(changed, accessKeyId).Status = status;
        return (Put(changed), changed);
    }

    public (IamState State, StoredUser User) DeleteAccessKey(string name, string accessKeyId)
    {
        var changed = Get(name).Clone();
        changed.AccessKeys.Remove(Key(changed, accessKeyId));
        return (Put(changed), changed);
    }

    private static StoredAccessKey Key(StoredUser user, string accessKeyId)
    {
        CheckName(AccessKeyId, accessKeyId, "AccessKeyId");
        return user.AccessKeys.FirstOrDefault(k => k.AccessKeyId == accessKeyId)
            ?? throw new EcsException(IamErrorType.NoSuchEntity, $"The Access Key with id {accessKeyId} cannot be found.", "AccessKeyId");
    }

    /// <summary>A user's new record, with the indexes derived from it: its keys' owner and its parsed policies.</summary>
    private IamState Put(StoredUser user)
    {
        var name = user.User.UserName;
        var previousKeys = Users.TryGetValue(name, out var previous) ? previous.AccessKeys.Select(k => k.AccessKeyId) : [];
        return this with
        {
            Users = Users.SetItem(name, user),
            Principals = Principals.SetItem(name, PrincipalOf(user)),
            KeyOwners = KeyOwners.RemoveRange(previousKeys).SetItems(user.AccessKeys.Select(k => System.Collections.Generic.KeyValuePair.Create(k.AccessKeyId, name))),
        };
    }

    private static void CheckName(Regex rule, string value, string field)
    {
        if (!rule.IsMatch(value))
        {
            throw EcsException.InvalidParameter(field, $"'{CallerText.Quote(value)}' must match {rule} (IAM's rule).");
        }
    }
}
