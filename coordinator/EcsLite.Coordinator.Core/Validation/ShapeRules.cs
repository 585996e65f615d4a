using System.Collections;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace EcsLite.Coordinator.Core.Validation;

/// <summary>One member's rule from the ECS model: required, enum words, bounds (length, count or value) and pattern.</summary>
internal sealed record MemberRule(bool Required, string[]? Enum = null, long? Min = null, long? Max = null, string? Pattern = null)
{
    public Regex? CompiledPattern { get; } = Pattern is null ? null : new Regex(Pattern, RegexOptions.CultureInvariant);
}

/// <summary>
/// Checks a request against the ECS model's own member rules (generated into <see cref="Table"/>),
/// walking every nested message, so every enum in every shape is checked with the field's JSON path.
/// </summary>
internal static partial class ShapeRules
{
    public static void Validate(IMessage message) => Walk(message, prefix: "");

    /// <summary>The model's rule for "Shape.member", if it has one.</summary>
    public static MemberRule? Rule(string shapeMember) => Table.GetValueOrDefault(shapeMember);

    private static void Walk(IMessage message, string prefix)
    {
        var descriptor = message.Descriptor;
        foreach (var field in descriptor.Fields.InDeclarationOrder())
        {
            var path = prefix + field.JsonName;
            Table.TryGetValue($"{descriptor.Name}.{field.JsonName}", out var rule);
            var value = field.Accessor.GetValue(message);

            if (field.IsMap)
            {
                continue;
            }

            if (field.IsRepeated)
            {
                var list = (IList)value;
                if (rule is not null)
                {
                    if (rule.Required && list.Count == 0)
                    {
                        throw Missing(path);
                    }

                    if (rule.Max is { } max && list.Count > max)
                    {
                        throw EcsException.InvalidParameter(path, $"at most {max} items are allowed (got {list.Count}).");
                    }
                }

                for (var i = 0; i < list.Count; i++)
                {
                    CheckValue(field, rule, list[i], $"{path}[{i}]");
                }

                continue;
            }

            var present = field.HasPresence ? field.Accessor.HasValue(message) : value is not null;
            if (!present)
            {
                if (rule?.Required == true)
                {
                    throw Missing(path);
                }

                continue;
            }

            CheckValue(field, rule, value, path);
        }
    }

    private static void CheckValue(FieldDescriptor field, MemberRule? rule, object? value, string path)
    {
        switch (value)
        {
            case IMessage nested when field.FieldType == FieldType.Message && field.MessageType.File.Package == "ecslite.v1":
                Walk(nested, path + ".");
                break;
            case string text when rule is not null:
                CheckString(rule, text, path);
                break;
            case int or long when rule is not null:
                var number = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                if (number < rule.Min || number > rule.Max)
                {
                    throw EcsException.InvalidParameter(path, $"must be between {rule.Min} and {rule.Max} (got {number}).");
                }

                break;
        }
    }

    private static void CheckString(MemberRule rule, string text, string path)
    {
        if (rule.Required && text.Length == 0)
        {
            throw Missing(path);
        }

        if (rule.Enum is { } words && Array.IndexOf(words, text) < 0)
        {
            throw EcsException.InvalidParameter(path, $"'{text}' is not valid; expected one of: {string.Join(", ", words)}.");
        }

        if (text.Length < rule.Min || text.Length > rule.Max)
        {
            throw EcsException.InvalidParameter(path, $"length must be between {rule.Min} and {rule.Max} characters (got {text.Length}).");
        }

        if (rule.CompiledPattern is { } pattern && !pattern.IsMatch(text))
        {
            throw EcsException.InvalidParameter(path, $"'{text}' contains characters that are not allowed.");
        }
    }

    private static EcsException Missing(string path) => EcsException.InvalidParameter(path, "is required.");
}
