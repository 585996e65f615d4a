using System.Security.Cryptography;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Store;
using EcsLite.Coordinator.Secrets;
using EcsLite.Api.V1;
using EcsLite.Security;
using EcsLite.Store.V1;
using Google.Protobuf;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Security;

/// <summary>
/// The API's users, keys and policies: <see cref="IamState"/> in memory (read without locks by every
/// call's authentication), one writer at a time, each change durable in the cluster store before it
/// is visible. Keys: iam/users/NAME (outside the cluster state's "/" prefix). The join tokens
/// (<see cref="JoinTokenState"/>) are kept the same way, under iam/activations/ID.
/// </summary>
public sealed partial class IamStore(IKeyValueStore store, IOptions<CoordinatorOptions> options, SecretKeyring keyring, TimeProvider time, ILogger<IamStore> logger)
{
    private const string Prefix = "iam/users/";
    private const string ActivationPrefix = "iam/activations/";
    private readonly StoreWriter _writer = new(store);
    private readonly ArnFormat _arns = new(options.Value.Region, options.Value.AccountId);
    private volatile IamState _state = IamState.Empty;
    private volatile JoinTokenState _tokens = JoinTokenState.Empty;

    public IamState State => _state;

    public JoinTokenState Tokens => _tokens;

    public ArnFormat Arns => _arns;

    /// <summary>
    /// Loads the users; at the first start makes the administrator (policy AdministratorAccess) with one
    /// key, written to DATA_DIR/admin-credentials (0600) in the AWS shared-credentials format. A coordinator
    /// that follows the leader only reads (<paramref name="following"/>), again whenever the store's change.
    /// </summary>
    public async Task LoadAsync(CancellationToken cancellationToken, bool following = false)
    {
        var range = await store.RangeAsync(Prefix, cancellationToken);
        _state = IamState.Load(range.Kvs.Select(kv => StoredUser.Parser.ParseFrom(kv.Value)));
        _tokens = JoinTokenState.Load((await store.RangeAsync(ActivationPrefix, cancellationToken)).Kvs.Select(kv => StoredActivation.Parser.ParseFrom(kv.Value)));
        if (following)
        {
            return;
        }

        if (_state.Users.TryGetValue(IamState.AdminUser, out var admin))
        {
            // A key made before SigV4 has only its hash; the administrator's file still holds its secret.
            var file = Path.Combine(options.Value.DataDir, "admin-credentials");
            if (File.Exists(file) && AdminFileKey(File.ReadAllText(file)) is { } known)
            {
                await _writer.WriteAsync<int>(() =>
                {
                    var (next, users) = _state.Seal(new Dictionary<string, string> { [known.Id] = known.Secret }, (s, c) => keyring.Seal(System.Text.Encoding.UTF8.GetBytes(s), c));
                    return ([.. users.Select(u => new PutOp(Prefix + u.User.UserName, u.ToByteArray()))], users.Count, () => _state = next);
                }, cancellationToken);
            }

            // A new version's services (scheduler:, ...) for an administrator made by an earlier one.
            if (admin.Policies.TryGetValue(IamState.AdminPolicyName, out var policy) && IamState.EarlierAdminPolicies.Contains(policy))
            {
                await ChangeAsync(s => s.PutUserPolicy(IamState.AdminUser, IamState.AdminPolicyName, IamState.AdminPolicy), cancellationToken);
            }

            return;
        }

        // The file first, then the store: a crash in between leaves no administrator, and the next
        // start makes one again (and a new file), rather than a key that nobody has.
        var (id, secret) = NewAccessKey();
        var path = Path.Combine(options.Value.DataDir, "admin-credentials");
        PrivateFile.Write(path, $"""
            # The EcsLite administrator's access key (user "{IamState.AdminUser}"), in the AWS shared-credentials format.
            # gRPC callers send it as "authorization: Bearer {id}:SECRET". Keep this file private.
            [default]
            aws_access_key_id = {id}
            aws_secret_access_key = {secret}

            """);
        await ChangeAsync(
            s => s.CreateUser(IamState.AdminUser, NewUserId(), Context()).State
                .PutUserPolicy(IamState.AdminUser, IamState.AdminPolicyName, IamState.AdminPolicy).State
                .CreateAccessKey(IamState.AdminUser, id, secret, Context(), Sealed(id, secret)),
            cancellationToken);
        LogAdminCreated(logger, path);
    }

    /// <summary>A new key for a user: the secret is returned once and stored only hashed.</summary>
    public async Task<(string AccessKeyId, string Secret)> CreateAccessKeyAsync(string user, CancellationToken cancellationToken)
    {
        var (id, secret) = NewAccessKey();
        await ChangeAsync(s => s.CreateAccessKey(user, id, secret, Context(), Sealed(id, secret)), cancellationToken);
        return (id, secret);
    }

    /// <summary>The principal a SigV4 signature by this key would be, and the key's secret to check it with.</summary>
    public (Principal Principal, byte[] Secret) SigningKey(string accessKeyId)
    {
        var (principal, sealedSecret) = _state.SigningKey(accessKeyId);
        return (principal, keyring.Open(sealedSecret, IamState.SecretContext(accessKeyId)));
    }

    /// <summary>Access key secrets under a key the keyring is retiring, sealed again under its current one.</summary>
    public Task<int> ResealAsync(CancellationToken cancellationToken) =>
        _writer.WriteAsync<int>(() =>
        {
            var (next, users) = _state.Reseal(keyring.IsStale, keyring.Open, (p, c) => keyring.Seal(p, c));
            return ([.. users.Select(u => new PutOp(Prefix + u.User.UserName, u.ToByteArray()))], users.Sum(u => u.AccessKeys.Count), () => _state = next);
        }, cancellationToken);

    private EncryptedValue Sealed(string id, string secret) => keyring.Seal(System.Text.Encoding.UTF8.GetBytes(secret), IamState.SecretContext(id));

    /// <summary>The key in an admin-credentials file (AWS shared-credentials format), if it has one.</summary>
    private static (string Id, string Secret)? AdminFileKey(string text)
    {
        string? Value(string name) => text.Split('\n').Select(l => l.Split('=', 2)).Where(p => p.Length == 2 && p[0].Trim() == name).Select(p => p[1].Trim()).FirstOrDefault();
        return Value("aws_access_key_id") is { } id && Value("aws_secret_access_key") is { } secret ? (id, secret) : null;
    }

    /// <summary>An id as AWS spells them (AKIA and 16 of base32's letters) and a 40-character random secret (240 bits).</summary>
    private static (string AccessKeyId, string Secret) NewAccessKey() => (
        "AKIA" + RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40));

    public static string NewUserId() => "AIDA" + RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 17);

    public CommandContext Context() => new(time.GetUtcNow(), _arns);

    /// <summary>Applies a command that changes one user: stored first, then visible.</summary>
    public Task<StoredUser> ChangeAsync(Func<IamState, (IamState State, StoredUser User)> command, CancellationToken cancellationToken) =>
        _writer.WriteAsync<StoredUser>(() =>
        {
            var (next, user) = command(_state);
            return ([new PutOp(Prefix + user.User.UserName, user.ToByteArray())], user, () => _state = next);
        }, cancellationToken);

    public Task<string> RemoveAsync(Func<IamState, (IamState State, string Removed)> command, CancellationToken cancellationToken) =>
        _writer.WriteAsync<string>(() =>
        {
            var (next, name) = command(_state);
            return ([new DeleteOp(Prefix + name)], name, () => _state = next);
        }, cancellationToken);

    /// <summary>A new join token, its id and code random; tokens long expired are purged on the way.</summary>
    public Task<(StoredActivation Token, string Code)> CreateTokenAsync(CreateActivationRequest request, CancellationToken cancellationToken) =>
        _writer.WriteAsync<(StoredActivation, string)>(() =>
        {
            var now = time.GetUtcNow();
            var purged = _tokens.Purgeable(now).ToList();
            var code = RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 32);
            var (next, token) = purged.Aggregate(_tokens, (s, id) => s.Delete(id)).Create(Guid.NewGuid().ToString(), code, request, now);
            List<TxnOp> ops = [.. purged.Select(id => new DeleteOp(ActivationPrefix + id)), new PutOp(ActivationPrefix + token.Activation.ActivationId, token.ToByteArray())];
            return (ops, (token, code), () => _tokens = next);
        }, cancellationToken);

    /// <summary>Spends one registration of a token (durably, before the host gets its certificate).</summary>
    public Task<StoredActivation> RedeemTokenAsync(string id, string code, string cluster, CancellationToken cancellationToken) =>
        _writer.WriteAsync<StoredActivation>(() =>
        {
            var (next, token) = _tokens.Redeem(id, code, cluster, time.GetUtcNow());
            return ([new PutOp(ActivationPrefix + id, token.ToByteArray())], token, () => _tokens = next);
        }, cancellationToken);

    public Task<string> DeleteTokenAsync(string id, CancellationToken cancellationToken) =>
        _writer.WriteAsync<string>(() =>
        {
            var next = _tokens.Delete(id);
            return ([new DeleteOp(ActivationPrefix + id)], id, () => _tokens = next);
        }, cancellationToken);

    [LoggerMessage(Level = LogLevel.Warning, Message = "First start: made the administrator (user admin, policy AdministratorAccess); its access key is in {Path} (mode 0600)")]
    private static partial void LogAdminCreated(ILogger logger, string path);
}
