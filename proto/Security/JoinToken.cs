using System.Text.RegularExpressions;

namespace EcsLite.Security;

/// <summary>
/// A join token as an operator copies it to a new host (k3s's idea): it names the cluster CA by its
/// SHA-256 fingerprint, so the agent can check the coordinator before it sends anything, and carries
/// an activation's id and code (its secret), presented once with the agent's certificate request.
/// Text form: <c>ECSLITE1:&lt;ca-sha256-hex&gt;:&lt;id&gt;.&lt;code&gt;</c>.
/// </summary>
public sealed partial record JoinToken(string CaSha256, string Id, string Secret)
{
    public const string Prefix = "ECSLITE1";

    public override string ToString() => $"{Prefix}:{CaSha256}:{Id}.{Secret}";

    /// <summary>Reads a token, or throws FormatException; the secret is never quoted.</summary>
    public static JoinToken Parse(string text)
    {
        var match = Shape().Match(text.Trim());
        return match.Success
            ? new JoinToken(match.Groups["ca"].Value.ToLowerInvariant(), match.Groups["id"].Value, match.Groups["secret"].Value)
            : throw new FormatException($"A join token looks like {Prefix}:<64 hex digits>:<activation id>.<code>, as `ecslite-coordinator token create` prints it.");
    }

    [GeneratedRegex("^ECSLITE1:(?<ca>[0-9a-fA-F]{64}):(?<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\\.(?<secret>[A-Za-z0-9]{20,64})$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();
}
