using System.Collections.Immutable;
using System.Text.Json;

namespace EcsLite.Coordinator.Core.Security;

public enum Effect
{
    Allow,
    Deny,
}

/// <summary>One condition test: an IAM operator (ArnLike, StringEquals, ...) on a context key, true if any value matches.</summary>
public sealed record PolicyCondition(string Operator, string Key, ImmutableArray<string> Values);

/// <summary>
/// One statement. Exactly one of Action / NotAction and one of Resource / NotResource is set, as IAM
/// requires; the "Not" forms are kept as a flag over the same list.
/// </summary>
public sealed record PolicyStatement(
    string? Sid,
    Effect Effect,
    ImmutableArray<string> Actions,
    bool NotAction,
    ImmutableArray<string> Resources,
    bool NotResource,
    ImmutableArray<PolicyCondition> Conditions);

/// <summary>
/// An IAM identity policy: <c>{"Version": "2012-10-17", "Statement": [...]}</c>. Parsing is strict
/// (unknown elements, a Principal, an unknown operator are refused, naming the element at fault) and
/// bounded: IAM's 6,144-character limit for a managed policy applies to the document.
/// </summary>
public sealed record PolicyDocument(string Version, ImmutableArray<PolicyStatement> Statements)
{
    public const int MaxCharacters = 6144;

    /// <summary>The condition operators understood here; each also has an ...IfExists form.</summary>
    public static readonly ImmutableHashSet<string> Operators = ImmutableHashSet.Create(StringComparer.Ordinal,
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
        "StringLike", "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike");

    private static readonly string[] Versions = ["2012-10-17", "2008-10-17"];

    /// <summary>Parses a policy document, or throws InvalidParameterException naming <paramref name="field"/> and the element at fault.</summary>
    public static PolicyDocument Parse(string json, string field = "policyDocument")
    {
        if (json.Length > MaxCharacters)
        {
            throw EcsException.InvalidParameter(field, $"A policy document is at most {MaxCharacters} characters; this one has {json.Length}.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw EcsException.InvalidParameter(field, $"Malformed policy document: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw EcsException.InvalidParameter(field, "A policy document is a JSON object.");
            }

            string? version = null;
            var statements = ImmutableArray<PolicyStatement>.Empty;
            var sawStatement = false;
            foreach (var element in root.EnumerateObject())
            {
                switch (element.Name)
                {
                    case "Version":
                        version = element.Value.ValueKind == JsonValueKind.String ? element.Value.GetString() : null;
                        if (version is null || !Versions.Contains(version))
                        {
                            throw EcsException.InvalidParameter($"{field}.Version", "Version is \"2012-10-17\" (or the older \"2008-10-17\").");
                        }

                        break;
                    case "Id":
                        break;
                    case "Statement":
                        sawStatement = true;
                        statements = ParseStatements(element.Value, $"{field}.Statement");
                        break;
                    default:
                        throw EcsException.InvalidParameter($"{field}.{element.Name}", "Unknown policy element.");
                }
            }

            if (!sawStatement)
            {
                throw EcsException.InvalidParameter($"{field}.Statement", "A policy needs at least one statement.");
            }

            return new PolicyDocument(version ?? "2008-10-17", statements);
        }
    }

    private static ImmutableArray<PolicyStatement> ParseStatements(JsonElement value, string path)
    {
        if (value.ValueKind == JsonValueKind.Object)
        {
            return [ParseStatement(value, path)];
        }

        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() == 0)
        {
            throw EcsException.InvalidParameter(path, "Statement is a statement or a non-empty list of them.");
        }

        var statements = ImmutableArray.CreateBuilder<PolicyStatement>();
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            statements.Add(ParseStatement(item, $"{path}[{i++}]"));
        }

        return statements.ToImmutable();
    }

    private static PolicyStatement ParseStatement(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw EcsException.InvalidParameter(path, "A statement is a JSON object.");
        }

        string? sid = null;
        Effect? effect = null;
        (ImmutableArray<string> Items, bool Not)? actions = null, resources = null;
        var conditions = ImmutableArray<PolicyCondition>.Empty;
        foreach (var element in value.EnumerateObject())
        {
            var at = $"{path}.{element.Name}";
            switch (element.Name)
            {
                case "Sid":
                    sid = element.Value.ValueKind == JsonValueKind.String ? element.Value.GetString()
                        : throw EcsException.InvalidParameter(at, "Sid is a string.");
                    break;
                case "Effect":
                    effect = element.Value.ValueKind == JsonValueKind.String ? element.Value.GetString() switch
                    {
                        "Allow" => Effect.Allow,
                        "Deny" => Effect.Deny,
                        _ => null,
                    } : null;
                    if (effect is null)
                    {
                        throw EcsException.InvalidParameter(at, "Effect is \"Allow\" or \"Deny\".");
                    }

                    break;
                case "Action" or "NotAction":
                    actions = actions is null ? (Strings(element.Value, at), element.Name == "NotAction")
                        : throw EcsException.InvalidParameter(at, "A statement has one of Action and NotAction.");
                    foreach (var action in actions.Value.Items)
                    {
                        if (action != "*" && (action.IndexOf(':') is <= 0 || action.EndsWith(':')))
                        {
                            throw EcsException.InvalidParameter(at, $"'{action}' is not an action (service:Action, e.g. ecs:RunTask).");
                        }
                    }

                    break;
                case "Resource" or "NotResource":
                    resources = resources is null ? (Strings(element.Value, at), element.Name == "NotResource")
                        : throw EcsException.InvalidParameter(at, "A statement has one of Resource and NotResource.");
                    foreach (var resource in resources.Value.Items)
                    {
                        if (resource != "*" && !resource.StartsWith("arn:", StringComparison.Ordinal))
                        {
                            throw EcsException.InvalidParameter(at, $"'{resource}' is not \"*\" or an ARN.");
                        }
                    }

                    break;
                case "Condition":
                    conditions = ParseConditions(element.Value, at);
                    break;
                case "Principal" or "NotPrincipal":
                    throw EcsException.InvalidParameter(at, "An identity policy has no Principal: it applies to the principal it is attached to.");
                default:
                    throw EcsException.InvalidParameter(at, "Unknown statement element.");
            }
        }

        return new PolicyStatement(
            sid,
            effect ?? throw EcsException.InvalidParameter($"{path}.Effect", "A statement needs an Effect."),
            actions?.Items ?? throw EcsException.InvalidParameter($"{path}.Action", "A statement needs an Action or NotAction."),
            actions.Value.Not,
            resources?.Items ?? throw EcsException.InvalidParameter($"{path}.Resource", "A statement needs a Resource or NotResource."),
            resources.Value.Not,
            conditions);
    }

    private static ImmutableArray<PolicyCondition> ParseConditions(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw EcsException.InvalidParameter(path, "Condition is an object of operators.");
        }

        var conditions = ImmutableArray.CreateBuilder<PolicyCondition>();
        foreach (var op in value.EnumerateObject())
        {
            var at = $"{path}.{op.Name}";
            var name = op.Name.EndsWith("IfExists", StringComparison.Ordinal) ? op.Name[..^"IfExists".Length] : op.Name;
            if (!Operators.Contains(name))
            {
                throw EcsException.InvalidParameter(at, $"Unknown condition operator; these are understood: {string.Join(", ", Operators.Order(StringComparer.Ordinal))}, each also as ...IfExists.");
            }

            if (op.Value.ValueKind != JsonValueKind.Object)
            {
                throw EcsException.InvalidParameter(at, "An operator takes an object of condition keys.");
            }

            foreach (var key in op.Value.EnumerateObject())
            {
                conditions.Add(new PolicyCondition(op.Name, key.Name, Strings(key.Value, $"{at}.{key.Name}")));
            }
        }

        return conditions.ToImmutable();
    }

    private static ImmutableArray<string> Strings(JsonElement value, string path)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            return [value.GetString()!];
        }

        if (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0
            && value.EnumerateArray().All(item => item.ValueKind == JsonValueKind.String))
        {
            return [.. value.EnumerateArray().Select(item => item.GetString()!)];
        }

        throw EcsException.InvalidParameter(path, "Expected a string or a non-empty list of strings.");
    }
}
