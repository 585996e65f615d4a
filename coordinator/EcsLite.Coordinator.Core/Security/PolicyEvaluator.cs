using System.Collections.Immutable;

namespace EcsLite.Coordinator.Core.Security;

/// <summary>
/// What a call asks to do: one action on one or more resources. An action without resource-level
/// permissions has no resource, and only a statement whose Resource is "*" applies to it, as in IAM.
/// </summary>
public sealed record AuthorizationRequest(string Action, ImmutableArray<string> Resources, ImmutableDictionary<string, string> Context)
{
    /// <summary>The resource IAM names for an action that has no resource-level permissions.</summary>
    public const string AnyResource = "*";
}

public enum DecisionKind
{
    Allow,

    /// <summary>No statement allows it (IAM's default deny).</summary>
    ImplicitDeny,

    /// <summary>A Deny statement matches: it wins over any Allow.</summary>
    ExplicitDeny,
}

/// <summary>The outcome, with the resource a refusal is about.</summary>
public sealed record Decision(DecisionKind Kind, string Resource)
{
    public bool Allowed => Kind == DecisionKind.Allow;
}

/// <summary>
/// IAM's evaluation logic for identity policies, as a pure function: a request is allowed only if, for
/// every resource it names, some statement allows it and no statement denies it.
/// </summary>
public static class PolicyEvaluator
{
    public static Decision Evaluate(IEnumerable<PolicyDocument> policies, AuthorizationRequest request)
    {
        var statements = policies.SelectMany(p => p.Statements).ToList();
        var resources = request.Resources.IsDefaultOrEmpty ? [AuthorizationRequest.AnyResource] : request.Resources;
        foreach (var resource in resources)
        {
            var allowed = false;
            foreach (var statement in statements)
            {
                if (!Applies(statement, request.Action, resource, request.Context))
                {
                    continue;
                }

                if (statement.Effect == Effect.Deny)
                {
                    return new Decision(DecisionKind.ExplicitDeny, resource);
                }

                allowed = true;
            }

            if (!allowed)
            {
                return new Decision(DecisionKind.ImplicitDeny, resource);
            }
        }

        return new Decision(DecisionKind.Allow, resources[^1]);
    }

    private static bool Applies(PolicyStatement statement, string action, string resource, ImmutableDictionary<string, string> context) =>
        statement.Actions.Any(pattern => Glob.Matches(pattern, action, ignoreCase: true)) != statement.NotAction
        && statement.Resources.Any(pattern => ResourceMatches(pattern, resource)) != statement.NotResource
        && statement.Conditions.All(condition => Holds(condition, context));

    private static bool ResourceMatches(string pattern, string resource) =>
        pattern == "*" || (resource != AuthorizationRequest.AnyResource && Arn.Like(pattern, resource));

    /// <summary>
    /// A condition with a key the request does not carry: false for a positive operator, true for a
    /// negated one (IAM's rule), and true for any ...IfExists.
    /// </summary>
    private static bool Holds(PolicyCondition condition, ImmutableDictionary<string, string> context)
    {
        var op = condition.Operator;
        var ifExists = op.EndsWith("IfExists", StringComparison.Ordinal);
        if (ifExists)
        {
            op = op[..^"IfExists".Length];
        }

        var negated = op.Contains("Not", StringComparison.Ordinal);
        if (!context.TryGetValue(condition.Key, out var value))
        {
            // Condition keys are case-insensitive in IAM.
            var key = context.Keys.FirstOrDefault(k => string.Equals(k, condition.Key, StringComparison.OrdinalIgnoreCase));
            if (key is null)
            {
                return ifExists || negated;
            }

            value = context[key];
        }

        var any = condition.Values.Any(expected => op switch
        {
            "StringEquals" or "StringNotEquals" => string.Equals(expected, value, StringComparison.Ordinal),
            "StringEqualsIgnoreCase" or "StringNotEqualsIgnoreCase" => string.Equals(expected, value, StringComparison.OrdinalIgnoreCase),
            "StringLike" or "StringNotLike" => Glob.Matches(expected, value, ignoreCase: false),
            "ArnEquals" or "ArnNotEquals" => string.Equals(expected, value, StringComparison.Ordinal),
            "ArnLike" or "ArnNotLike" => Arn.Like(expected, value),
            _ => false,
        });
        return any != negated;
    }
}

/// <summary>IAM's wildcards: <c>*</c> any run of characters, <c>?</c> any one.</summary>
public static class Glob
{
    /// <summary>Linear in practice, never exponential: the classic backtrack-to-last-star matcher.</summary>
    public static bool Matches(string pattern, string text, bool ignoreCase)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || Same(pattern[p], text[t], ignoreCase)))
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }

    private static bool Same(char a, char b, bool ignoreCase) =>
        a == b || (ignoreCase && char.ToUpperInvariant(a) == char.ToUpperInvariant(b));
}

/// <summary>ARN patterns as IAM matches them: each of the six colon-separated parts on its own (the last may hold colons and slashes).</summary>
public static class Arn
{
    public static bool Like(string pattern, string arn)
    {
        if (pattern == "*")
        {
            return true;
        }

        var expected = pattern.Split(':', 6);
        var actual = arn.Split(':', 6);
        if (expected.Length != 6 || actual.Length != 6)
        {
            return false;
        }

        for (var i = 0; i < 6; i++)
        {
            if (!Glob.Matches(expected[i], actual[i], ignoreCase: false))
            {
                return false;
            }
        }

        return true;
    }
}
