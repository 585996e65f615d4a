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
/// Checks a request against the ECS model's own member rules (generated into <see cref="Table"/>) and
/// the <see cref="Limits"/> on every string, list and map, walking every nested message, so every enum
/// and every size in every shape is checked with the field's JSON path. Nesting is the schema's, not
/// the input's: a message type cannot contain itself here, so the walk's depth is fixed.
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
            var member = $"{descriptor.Name}.{field.JsonName}";
            Table.TryGetValue(member, out var rule);
            var value = field.Accessor.GetValue(message);

            if (field.IsMap)
            {
                var map = (IDictionary)value;
                if (map.Count > Limits.For(member, list: true))
                {
                    throw EcsException.InvalidParameter(path, $"at most {Limits.For(member, list: true)} entries are allowed (got {map.Count}).");
                }

                foreach (DictionaryEntry entry in map)
                {
                    CheckLength(entry.Key as string, Limits.MaxString, $"{path}.key");
                    CheckLength(entry.Value as string, Limits.MaxString, $"{path}[{CallerText.Quote(entry.Key as string ?? "")}]");
                }

                continue;
            }

            if (field.IsRepeated)
            {
                var list = (IList)value;
                var maxItems = rule?.Max ?? Limits.For(member, list: true);
                if (list.Count > maxItems)
                {
                    throw EcsException.InvalidParameter(path, $"at most {maxItems} items are allowed (got {list.Count}).");
                }

                if (rule is { Required: true } && list.Count == 0)
                {
                    throw Missing(path);
                }

                for (var i = 0; i < list.Count; i++)
                {
                    CheckValue(field, rule, list[i], $"{path}[{i}]", member);
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

            CheckValue(field, rule, value, path, member);
        }
    }

    private static void CheckValue(FieldDescriptor field, MemberRule? rule, object? value, string path, string member)
    {
        switch (value)
        {
            case IMessage nested when field.FieldType == FieldType.Message && field.MessageType.File.Package == "ecslite.v1":
                Walk(nested, path + ".");
                break;
            case string text:
                // The size first: nothing below may echo or match a string of unbounded length.
                // (A list's bound is on its count; its strings get the default.)
                CheckLength(text, field.IsRepeated ? Limits.MaxString : Math.Min(rule?.Max ?? long.MaxValue, Limits.For(member, list: false)), path);
                if (rule is not null)
                {
                    CheckString(rule, text, path);
                }

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
            throw EcsException.InvalidParameter(path, $"'{CallerText.Quote(text)}' is not valid; expected one of: {string.Join(", ", words)}.");
        }

        if (text.Length < rule.Min || text.Length > rule.Max)
        {
            throw EcsException.InvalidParameter(path, $"length must be between {rule.Min} and {rule.Max} characters (got {text.Length}).");
        }

        if (rule.CompiledPattern is { } pattern && !pattern.IsMatch(text))
        {
            throw EcsException.InvalidParameter(path, $"'{CallerText.Quote(text)}' contains characters that are not allowed.");
        }
    }

    private static void CheckLength(string? text, long max, string path)
    {
        if (text is not null && text.Length > max)
        {
            throw EcsException.InvalidParameter(path, $"is {text.Length} characters long; at most {max} are allowed.");
        }
    }


    private static EcsException Missing(string path) => EcsException.InvalidParameter(path, "is required.");
}
