using System.Security.Cryptography;
using EcsLite.Coordinator.Security;
using EcsLite.Store.V1;
using Google.Protobuf;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The sealing of what an etcd store's coordinators share (the CA and the secret keyring), with the real
/// crypto library; the coordinators taking them from a real etcd store are in HighAvailabilityTests.
/// </summary>
public sealed class SharedKeysTests
{
    private static readonly SharedKeyFiles Files = new()
    {
        CaCertificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        CaKey = "-----BEGIN PRIVATE KEY-----\nsecret-ca-key\n-----END PRIVATE KEY-----\n",
        SecretKeys = "k1 c2VjcmV0LWtleXJpbmc=\n",
    };

    [Fact]
    public void Sealed_files_open_with_the_token_they_were_sealed_with_and_hold_nothing_readable()
    {
        var sealedKeys = SharedKeys.Seal(Files, "ecslite-server-abc", iterations: 1000);
        Assert.Equal(Files, SharedKeys.Open(SealedSharedKeys.Parser.ParseFrom(sealedKeys.ToByteArray()), " ecslite-server-abc\n"));

        var stored = sealedKeys.ToByteArray();
        Assert.Equal(-1, stored.AsSpan().IndexOf("secret-ca-key"u8));
        Assert.Equal(-1, stored.AsSpan().IndexOf("c2VjcmV0LWtleXJpbmc="u8));
        Assert.Equal(-1, stored.AsSpan().IndexOf("PRIVATE KEY"u8));
    }

    [Fact]
    public void Each_sealing_has_its_own_salt_and_nonce()
    {
        var first = SharedKeys.Seal(Files, "token", iterations: 1000);
        var second = SharedKeys.Seal(Files, "token", iterations: 1000);
        Assert.NotEqual(first.Salt, second.Salt);
        Assert.NotEqual(first.Nonce, second.Nonce);
        Assert.NotEqual(first.Ciphertext, second.Ciphertext);
    }

    [Fact]
    public void Another_token_an_altered_record_or_a_malformed_one_opens_nothing()
    {
        var sealedKeys = SharedKeys.Seal(Files, "the-token", iterations: 1000);
        Assert.ThrowsAny<CryptographicException>(() => SharedKeys.Open(sealedKeys, "another-token"));

        var altered = sealedKeys.Clone();
        var bytes = altered.Ciphertext.ToByteArray();
        bytes[3] ^= 1;
        altered.Ciphertext = ByteString.CopyFrom(bytes);
        Assert.ThrowsAny<CryptographicException>(() => SharedKeys.Open(altered, "the-token"));

        var fewerRounds = sealedKeys.Clone();
        fewerRounds.Iterations = 999; // the key derived differs: the tag does not hold
        Assert.ThrowsAny<CryptographicException>(() => SharedKeys.Open(fewerRounds, "the-token"));

        Assert.ThrowsAny<CryptographicException>(() => SharedKeys.Open(new SealedSharedKeys { Iterations = 1000 }, "the-token"));
        Assert.ThrowsAny<CryptographicException>(() => SharedKeys.Open(new SealedSharedKeys { Iterations = 1000, Nonce = ByteString.CopyFrom(1, 2, 3), Ciphertext = sealedKeys.Ciphertext }, "the-token"));
        Assert.ThrowsAny<CryptographicException>(() => SharedKeys.Open(new SealedSharedKeys { Iterations = int.MaxValue, Ciphertext = sealedKeys.Ciphertext }, "the-token"));
    }
}
