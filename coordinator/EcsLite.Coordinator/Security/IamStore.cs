using System.Security.Cryptography;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Store;
using EcsLite.Store.V1;
using Google.Protobuf;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Security;

/// <summary>
/// The API's users, keys and policies: <see cref="IamState"/> in memory (read without locks by every
/// call's authentication), one writer at a time, each change durable in the cluster store before it
/// is visible. Keys: iam/users/NAME (outside the cluster state's "/" prefix).
/// </summary>
public sealed partial class IamStore(IKeyValueStore store, IOptions<CoordinatorOptions> options, TimeProvider time, ILogger<IamStore> logger)
{
    private const string Prefix = "iam/users/";
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly ArnFormat _arns = new(options.Value.Region, options.Value.AccountId);
    private volatile IamState _state = IamState.Empty;

    public IamState State => _state;

    public ArnFormat Arns => _arns;

    /// <summary>
    /// Loads the users; at the first start makes the administrator (policy AdministratorAccess) with one
    /// key, written to DATA_DIR/admin-credentials (0600) in the AWS shared-credentials format.
    /// </summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var range = await store.RangeAsync(Prefix, cancellationToken);
        _state = IamState.Load(range.Kvs.Select(kv => StoredUser.Parser.ParseFrom(kv.Value)));
        if (_state.Users.ContainsKey(IamState.AdminUser))
        {
            return;
        }

        // The file first, then the store: a crash in between leaves no administrator, and the next
        // start makes one again (and a new file), rather than a key that nobody has.
        var (id, secret) = NewAccessKey();
        var path = Path.Combine(options.Value.DataDir, "admin-credentials");
        await WritePrivateAsync(path, $"""
            # The EcsLite administrator's access key (user "{IamState.AdminUser}"), in the AWS shared-credentials format.
            # gRPC callers send it as "authorization: Bearer {id}:SECRET". Keep this file private.
            [default]
            aws_access_key_id = {id}
            aws_secret_access_key = {secret}

            """, cancellationToken);
        await ChangeAsync(
            s => s.CreateUser(IamState.AdminUser, NewUserId(), Context()).State
                .PutUserPolicy(IamState.AdminUser, IamState.AdminPolicyName, IamState.AdminPolicy).State
                .CreateAccessKey(IamState.AdminUser, id, secret, Context()),
            cancellationToken);
        LogAdminCreated(logger, path);
    }

    /// <summary>A new key for a user: the secret is returned once and stored only hashed.</summary>
    public async Task<(string AccessKeyId, string Secret)> CreateAccessKeyAsync(string user, CancellationToken cancellationToken)
    {
        var (id, secret) = NewAccessKey();
        await ChangeAsync(s => s.CreateAccessKey(user, id, secret, Context()), cancellationToken);
        return (id, secret);
    }

    /// <summary>An id as AWS spells them (AKIA and 16 of base32's letters) and a 40-character random secret (240 bits).</summary>
    private static (string AccessKeyId, string Secret) NewAccessKey() => (
        "AKIA" + RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40));

    public static string NewUserId() => "AIDA" + RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 17);

    public CommandContext Context() => new(time.GetUtcNow(), _arns);

    /// <summary>Applies a command that changes one user: stored first, then visible.</summary>
    public Task<StoredUser> ChangeAsync(Func<IamState, (IamState State, StoredUser User)> command, CancellationToken cancellationToken) =>
        WriteAsync(state =>
        {
            var (next, user) = command(state);
            return (next, new PutOp(Prefix + user.User.UserName, user.ToByteArray()), user);
        }, cancellationToken);

    public Task<string> RemoveAsync(Func<IamState, (IamState State, string Removed)> command, CancellationToken cancellationToken) =>
        WriteAsync(state =>
        {
            var (next, name) = command(state);
            return (next, new DeleteOp(Prefix + name), name);
        }, cancellationToken);

    private async Task<T> WriteAsync<T>(Func<IamState, (IamState Next, TxnOp Op, T Result)> command, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken);
        try
        {
            var (next, op, result) = command(_state);
            await store.TxnAsync(Txn.Unconditional([op]), CancellationToken.None);
            _state = next;
            return result;
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>Creates a file readable by its owner only, before anything is written into it.</summary>
    public static async Task WritePrivateAsync(string path, string text, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        await using (var file = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), cancellationToken);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "First start: made the administrator (user admin, policy AdministratorAccess); its access key is in {Path} (mode 0600)")]
    private static partial void LogAdminCreated(ILogger logger, string path);
}
