using System.Security.Cryptography;
using EcsLite.Coordinator.Secrets;
using EcsLite.Coordinator.Store;
using EcsLite.Security;
using EcsLite.Store.V1;
using Google.Protobuf;

namespace EcsLite.Coordinator.Security;

/// <summary>
/// What the coordinators of one etcd store must hold alike: the cluster CA (tls/ca.crt, tls/ca.key) and
/// the secret store's keyring (secrets.key). They are kept in the store sealed with the server token, as
/// k3s keeps its bootstrap data: the first coordinator seals its own, one given the token takes them at
/// start, and the keyring is sealed again whenever it changes (a rotation), which the others follow.
/// etcd, its snapshots and whoever reads its keys hold nothing usable without the token.
/// </summary>
public sealed class SharedKeys
{
    public const string Key = "coordinators/shared-keys";

    /// <summary>The token's file in the data directory (mode 0600): made by the first coordinator, kept by the others.</summary>
    public const string TokenFileName = "server-token";

    /// <summary>PBKDF2-SHA256 rounds: a token typed by a person should not be cheap to guess from a stolen snapshot.</summary>
    private const int Iterations = 600_000;

    private const string TokenPrefix = "ecslite-server-";

    private readonly IKeyValueStore _store;
    private readonly string _dataDirectory;
    private readonly string _token;

    /// <summary>The store shared no keys at start: this coordinator's own are to be sealed.</summary>
    private readonly bool _first;

    private SharedKeys(IKeyValueStore store, string dataDirectory, string token, bool first, bool tokenMade)
    {
        _store = store;
        _dataDirectory = dataDirectory;
        _token = token;
        _first = first;
        TokenMade = tokenMade;
    }

    /// <summary>Whether this start made the server token (this is the store's first coordinator).</summary>
    public bool TokenMade { get; }

    public string TokenPath => Path.Combine(_dataDirectory, TokenFileName);

    private string CaCertificatePath => Path.Combine(_dataDirectory, "tls", "ca.crt");

    private string CaKeyPath => Path.Combine(_dataDirectory, "tls", "ca.key");

    private string SecretKeysPath => Path.Combine(_dataDirectory, "secrets.key");

    /// <summary>Seals <paramref name="files"/> under <paramref name="token"/>: a fresh salt and nonce each time.</summary>
    public static SealedSharedKeys Seal(SharedKeyFiles files, string token, int iterations = Iterations)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var plaintext = files.ToByteArray();
        var output = new byte[plaintext.Length + AesGcm.TagByteSizes.MaxSize];
        using var aes = new AesGcm(KeyOf(token, salt, iterations), AesGcm.TagByteSizes.MaxSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(0, plaintext.Length), output.AsSpan(plaintext.Length), System.Text.Encoding.UTF8.GetBytes(Key));
        return new SealedSharedKeys { Iterations = iterations, Salt = ByteString.CopyFrom(salt), Nonce = ByteString.CopyFrom(nonce), Ciphertext = ByteString.CopyFrom(output) };
    }

    /// <summary>The files, if <paramref name="token"/> is the one they were sealed with; else CryptographicException.</summary>
    public static SharedKeyFiles Open(SealedSharedKeys sealedKeys, string token)
    {
        var ciphertext = sealedKeys.Ciphertext.Span;
        if (ciphertext.Length < AesGcm.TagByteSizes.MaxSize || sealedKeys.Nonce.Length != AesGcm.NonceByteSizes.MaxSize || sealedKeys.Iterations is < 1 or > 10_000_000)
        {
            throw new CryptographicException("the shared keys' record is malformed");
        }

        var plaintext = new byte[ciphertext.Length - AesGcm.TagByteSizes.MaxSize];
        using var aes = new AesGcm(KeyOf(token, sealedKeys.Salt.ToByteArray(), sealedKeys.Iterations), AesGcm.TagByteSizes.MaxSize);
        aes.Decrypt(sealedKeys.Nonce.Span, ciphertext[..plaintext.Length], ciphertext[plaintext.Length..], plaintext, System.Text.Encoding.UTF8.GetBytes(Key));
        return SharedKeyFiles.Parser.ParseFrom(plaintext);
    }

    private static byte[] KeyOf(string token, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(token.Trim(), salt, iterations, HashAlgorithmName.SHA256, 32);

    /// <summary>
    /// At start, before the CA and the keyring are loaded. If the store shares keys: opens them with the
    /// token (<paramref name="configuredToken"/>, else the data directory's token file) and writes them into
    /// the data directory, refusing a data directory that holds another CA. If not, this is the store's first
    /// coordinator: its token is made unless given, and <see cref="SealFirstAsync"/> seals what it then has.
    /// </summary>
    public static async Task<SharedKeys> TakeAsync(IKeyValueStore store, string dataDirectory, string configuredToken, CancellationToken cancellationToken)
    {
        var tokenPath = Path.Combine(dataDirectory, TokenFileName);
        var token = configuredToken.Trim() is { Length: > 0 } given ? given
            : File.Exists(tokenPath) ? File.ReadAllText(tokenPath).Trim() : null;
        var record = await ReadAsync(store, cancellationToken);
        if (record is null)
        {
            var made = token is null;
            token ??= TokenPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            var first = new SharedKeys(store, dataDirectory, token, first: true, tokenMade: made);
            first.KeepToken();
            return first;
        }

        if (token is null)
        {
            throw new SharedKeysException($"The coordinators of this store share their CA and secret keys, sealed with a server token: give this one the first coordinator's token (its {TokenFileName} file) as ServerToken (ECSLITE_ServerToken).");
        }

        SharedKeyFiles files;
        try
        {
            files = Open(record, token);
        }
        catch (Exception e) when (e is CryptographicException or InvalidProtocolBufferException)
        {
            throw new SharedKeysException($"ServerToken does not open the keys this store's coordinators share: it is not the token of the first coordinator (its {TokenFileName} file).");
        }

        var taking = new SharedKeys(store, dataDirectory, token, first: false, tokenMade: false);
        taking.Write(files);
        taking.KeepToken();
        return taking;
    }

    /// <summary>The first coordinator, once its CA and keyring exist: sealed into the store, unless another coordinator was quicker.</summary>
    public async Task SealFirstAsync(CancellationToken cancellationToken)
    {
        if (!_first)
        {
            return;
        }

        var result = await _store.TxnAsync(new Txn(
            [new Compare(Key, CompareTarget.Version, CompareResult.Equal, 0)],
            [new PutOp(Key, Seal(ReadFiles(), _token).ToByteArray())]), cancellationToken);
        if (!result.Succeeded)
        {
            if (TokenMade)
            {
                File.Delete(TokenPath); // not the store's token: the next start must be given that one
            }

            throw new SharedKeysException($"Another coordinator of this store sealed its CA and keys first: start this one with that coordinator's {TokenFileName} as ServerToken (a CA of its own in this data directory must be moved away first; a copy of the shared one is fine).");
        }
    }

    /// <summary>Seals the data directory's files again (the keyring changed): the other coordinators take them from the store.</summary>
    public async Task SealAsync(CancellationToken cancellationToken) =>
        await _store.TxnAsync(new Txn([], [new PutOp(Key, Seal(ReadFiles(), _token).ToByteArray())]), cancellationToken);

    /// <summary>
    /// Follows the sealed keys while this coordinator follows: when the leader seals a rotated keyring, this
    /// coordinator's keyring (file and memory) becomes that one, so it opens what is sealed under the new key.
    /// The leader, the one writer of the record, never takes it back from the store.
    /// </summary>
    public async Task FollowAsync(SecretKeyring keyring, Func<bool> leading, CancellationToken cancellationToken)
    {
        void Take(byte[] record)
        {
            var files = Open(SealedSharedKeys.Parser.ParseFrom(record), _token);
            if (!leading() && files.SecretKeys != File.ReadAllText(SecretKeysPath))
            {
                PrivateFile.Write(SecretKeysPath, files.SecretKeys);
                keyring.Reload();
            }
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                // The record as it is now (a rotation while the watch was broken is not missed), then its changes.
                var current = await _store.RangeAsync(Key, cancellationToken);
                foreach (var kv in current.Kvs.Where(kv => kv.Key == Key))
                {
                    Take(kv.Value);
                }

                await foreach (var response in _store.WatchAsync(Key, current.Revision + 1, cancellationToken))
                {
                    foreach (var change in response.Events.Where(e => e.Type == WatchEventType.Put && e.Kv.Key == Key))
                    {
                        Take(change.Kv.Value);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                // The store's watch broke (etcd restarting, a compaction): read the record again in a second.
                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
            }
        }
    }

    private static async Task<SealedSharedKeys?> ReadAsync(IKeyValueStore store, CancellationToken cancellationToken)
    {
        var range = await store.RangeAsync(Key, cancellationToken);
        return range.Kvs.FirstOrDefault(kv => kv.Key == Key) is { } kv ? SealedSharedKeys.Parser.ParseFrom(kv.Value) : null;
    }

    private SharedKeyFiles ReadFiles() => new()
    {
        CaCertificate = File.ReadAllText(CaCertificatePath),
        CaKey = File.ReadAllText(CaKeyPath),
        SecretKeys = File.ReadAllText(SecretKeysPath),
    };

    /// <summary>The shared files into the data directory; a CA of its own is refused, the keyring is always the store's (the newest).</summary>
    private void Write(SharedKeyFiles files)
    {
        if (File.Exists(CaCertificatePath) && File.ReadAllText(CaCertificatePath).Trim() != files.CaCertificate.Trim())
        {
            throw new SharedKeysException($"{CaCertificatePath} is another CA than the one this store's coordinators share: move tls/ca.crt and tls/ca.key away to take the shared one (agents joined with this one's tokens would have to join again).");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(CaKeyPath)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        PrivateFile.Write(CaKeyPath, files.CaKey);
        PrivateFile.Write(CaCertificatePath, files.CaCertificate, secret: false);
        PrivateFile.Write(SecretKeysPath, files.SecretKeys);
    }

    private void KeepToken()
    {
        if (!File.Exists(TokenPath) || File.ReadAllText(TokenPath).Trim() != _token)
        {
            PrivateFile.Write(TokenPath, _token + "\n");
        }
    }
}

/// <summary>The shared keys cannot be taken or sealed: said in one line at start.</summary>
public sealed class SharedKeysException(string message) : Exception(message);
