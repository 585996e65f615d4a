using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using EcsLite.Security;
using EcsLite.Store.V1;
using Google.Protobuf;

namespace EcsLite.Coordinator.Secrets;

/// <summary>
/// The keys the secret store's values are encrypted with: AES-256-GCM, a random 96-bit nonce per value,
/// the value's context (what it is the value of) as associated data. Kept in DATA_DIR/secrets.key (mode
/// 0600, readable by the coordinator's user alone), one "ID BASE64" line per key, the current key
/// first. The store file alone therefore holds no readable value; back both up together.
/// Rotation writes the new key in front first and forgets the old ones only once nothing uses them.
/// </summary>
public sealed class SecretKeyring
{
    private const string Header = "# EcsLite secret store keys (AES-256-GCM). The first line is the current key. Keep this file private and back it up with the store.\n";
    private readonly string _path;
    private volatile IReadOnlyList<(string Id, byte[] Key)> _keys;

    private SecretKeyring(string path, IReadOnlyList<(string Id, byte[] Key)> keys)
    {
        _path = path;
        _keys = keys;
    }

    public string CurrentId => _keys[0].Id;

    public int Count => _keys.Count;

    /// <summary>Reads the keyring, or makes one with a new key.</summary>
    public static SecretKeyring LoadOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            var created = new SecretKeyring(path, [NewKey()]);
            created.Save();
            return created;
        }

        return new SecretKeyring(path, Read(path));
    }

    /// <summary>Reads the file again: another coordinator of the store rotated the keyring they share (<see cref="EcsLite.Coordinator.Security.SharedKeys"/>).</summary>
    public void Reload() => _keys = Read(_path);

    private static List<(string Id, byte[] Key)> Read(string path)
    {
        var keys = File.ReadAllLines(path)
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select((line, number) =>
            {
                var parts = line.Split(' ', 2, StringSplitOptions.TrimEntries);
                byte[]? key = null;
                try
                {
                    key = parts.Length == 2 ? Convert.FromBase64String(parts[1]) : null;
                }
                catch (FormatException)
                {
                }

                return key is { Length: 32 } ? (parts[0], key) : throw new InvalidDataException($"{path}: key {number + 1} is not \"ID BASE64\" of a 32-byte key.");
            })
            .ToList();
        return keys.Count > 0 ? keys : throw new InvalidDataException($"{path} holds no key.");
    }

    public EncryptedValue Seal(ReadOnlySpan<byte> plaintext, string context)
    {
        var (id, key) = _keys[0];
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var output = new byte[plaintext.Length + AesGcm.TagByteSizes.MaxSize];
        using var aes = new AesGcm(key, AesGcm.TagByteSizes.MaxSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(0, plaintext.Length), output.AsSpan(plaintext.Length), Encoding.UTF8.GetBytes(context));
        return new EncryptedValue { KeyId = id, Nonce = ByteString.CopyFrom(nonce), Ciphertext = ByteString.CopyFrom(output) };
    }

    /// <summary>Decrypts; a value altered, moved to another record, or under a key not here throws CryptographicException.</summary>
    public byte[] Open(EncryptedValue value, string context)
    {
        var key = _keys.FirstOrDefault(k => k.Id == value.KeyId).Key
            ?? throw new CryptographicException($"the value was encrypted with key {value.KeyId}, which {_path} does not hold");
        var sealedBytes = value.Ciphertext.Span;
        if (sealedBytes.Length < AesGcm.TagByteSizes.MaxSize)
        {
            throw new CryptographicException("the value is shorter than its tag");
        }

        var plaintext = new byte[sealedBytes.Length - AesGcm.TagByteSizes.MaxSize];
        using var aes = new AesGcm(key, AesGcm.TagByteSizes.MaxSize);
        aes.Decrypt(value.Nonce.Span, sealedBytes[..plaintext.Length], sealedBytes[plaintext.Length..], plaintext, Encoding.UTF8.GetBytes(context));
        return plaintext;
    }

    public bool IsStale(EncryptedValue value) => value.KeyId != CurrentId;

    /// <summary>A new current key, written in front of the others (which still open what they sealed).</summary>
    public string Rotate()
    {
        _keys = [NewKey(), .. _keys];
        Save();
        return CurrentId;
    }

    /// <summary>Forgets every key but the current one: only once no stored value uses them.</summary>
    public void Retire()
    {
        if (_keys.Count > 1)
        {
            _keys = [_keys[0]];
            Save();
        }
    }

    private static (string Id, byte[] Key) NewKey() =>
        ($"k{DateTimeOffset.UtcNow.ToString("yyyyMMddTHHmmss", CultureInfo.InvariantCulture)}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}", RandomNumberGenerator.GetBytes(32));

    private void Save() =>
        PrivateFile.Write(_path, Header + string.Concat(_keys.Select(k => $"{k.Id} {Convert.ToBase64String(k.Key)}\n")));
}
