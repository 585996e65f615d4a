using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Secrets;
using EcsLite.Coordinator.Store;
using EcsLite.Coordinator.Security;
using EcsLite.Store.V1;
using Google.Protobuf;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Secrets;

/// <summary>
/// The parameters and secrets: <see cref="SecretState"/> in memory (ciphertext only), one writer at a
/// time, each change durable in the cluster store before it is visible. Keys: secrets/parameters/NAME
/// and secrets/secrets/NAME (outside the cluster state's "/" prefix, so no event or task record holds
/// them). Values are sealed with <see cref="SecretKeyring"/>; plaintext exists only inside a call.
/// </summary>
public sealed partial class SecretStore(IKeyValueStore store, IOptions<CoordinatorOptions> options, SecretKeyring keyring, IamStore iam, TimeProvider time, ILogger<SecretStore> logger,
    SharedKeys? shared = null)
{
    private const string ParameterPrefix = "secrets/parameters/";
    private const string SecretPrefix = "secrets/secrets/";
    private readonly StoreWriter _writer = new(store);
    private volatile SecretState _state = SecretState.Empty;
    private readonly Lock _loading = new();
    private long _loadedRevision;

    public SecretState State => _state;

    public ArnFormat Arns { get; } = new(options.Value.Region, options.Value.AccountId);

    public SecretState.Sealer Seal => (plaintext, context) => keyring.Seal(plaintext, context);

    public SecretState.Opener Open => (value, context) => keyring.Open(value, context);

    /// <summary>Loads the records and forgets secrets whose scheduled deletion has come (the leader; a follower only reads).</summary>
    public async Task LoadAsync(CancellationToken cancellationToken, bool following = false)
    {
        var parameters = await store.RangeAsync(ParameterPrefix, cancellationToken);
        var secrets = await store.RangeAsync(SecretPrefix, cancellationToken);
        var loaded = SecretState.Load(
            parameters.Kvs.Select(kv => StoredParameter.Parser.ParseFrom(kv.Value)),
            secrets.Kvs.Select(kv => StoredSecret.Parser.ParseFrom(kv.Value)));
        lock (_loading)
        {
            // Reads may overlap on a follower (its watch of the secrets, and a task's dispatch): never an older one last.
            if (parameters.Revision >= _loadedRevision)
            {
                _loadedRevision = parameters.Revision;
                _state = loaded;
            }
        }

        if (following)
        {
            return;
        }

        await ChangeAsync<int>(s => (s, [], 0), cancellationToken); // a write of nothing: the purge alone
    }

    /// <summary>
    /// At start, once the access keys are loaded too: a rotation a crash cut short is finished (values
    /// still under an old key are sealed again, then the old keys are forgotten).
    /// </summary>
    public async Task FinishRotationAsync(CancellationToken cancellationToken)
    {
        if (keyring.Count > 1)
        {
            LogResealed(logger, await ResealAsync(rotate: false, cancellationToken), keyring.CurrentId);
        }
    }

    /// <summary>A new key; every value and access key secret sealed again under it; then the old key is forgotten.</summary>
    public async Task<(string KeyId, int Resealed)> RotateAsync(CancellationToken cancellationToken)
    {
        var count = await ResealAsync(rotate: true, cancellationToken);
        return (keyring.CurrentId, count);
    }

    private Task<int> ResealAsync(bool rotate, CancellationToken cancellationToken) =>
        _writer.ExclusiveAsync(async () =>
        {
            if (rotate)
            {
                keyring.Rotate();
                await SealSharedAsync(); // the other coordinators have the new key before anything is sealed under it
            }

            var (next, parameters, secrets) = _state.Reseal(keyring.IsStale, Open, Seal);
            await _writer.CommitAsync([.. parameters.Select(p => Put(p)), .. secrets.Select(s => Put(s))]);
            _state = next;
            var keys = await iam.ResealAsync(CancellationToken.None);
            keyring.Retire(); // only now: nothing is sealed under the old key any more
            await SealSharedAsync();
            return parameters.Count + secrets.Sum(s => s.Versions.Count) + keys;
        }, cancellationToken);

    private Task SealSharedAsync() => shared?.SealAsync(CancellationToken.None) ?? Task.CompletedTask;

    /// <summary>A command on the current state; secrets whose scheduled deletion has come are forgotten first, in a write of their own.</summary>
    public Task<T> ChangeAsync<T>(Func<SecretState, (SecretState State, IReadOnlyList<TxnOp> Ops, T Result)> command, CancellationToken cancellationToken) =>
        _writer.ExclusiveAsync(async () =>
        {
            var due = _state.DueForDeletion(time.GetUtcNow()).ToList();
            if (due.Count > 0)
            {
                await _writer.CommitAsync([.. due.Select(DeleteSecret)]);
                _state = _state.Without(due);
            }

            var (next, ops, result) = command(_state);
            await _writer.CommitAsync(ops);
            _state = next;
            return result;
        }, cancellationToken);

    public static TxnOp Put(StoredParameter parameter) => new PutOp(ParameterPrefix + parameter.Metadata.Name, parameter.ToByteArray());

    public static TxnOp Put(StoredSecret secret) => new PutOp(SecretPrefix + secret.Name, secret.ToByteArray());

    public static TxnOp DeleteParameter(string name) => new DeleteOp(ParameterPrefix + name);

    public static TxnOp DeleteSecret(string name) => new DeleteOp(SecretPrefix + name);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Secret store: {Count} values sealed again under key {KeyId}; the older keys are forgotten")]
    private static partial void LogResealed(ILogger logger, int count, string keyId);
}
