using EcsLite.Api.V1;

namespace EcsLite.Coordinator.Core;

/// <summary>ECS's tag rules beyond the model's lengths and pattern: unique keys, the reserved aws: prefix, 50 per resource.</summary>
public static class TagRules
{
    public const int MaxTagsPerResource = 50;

    public static void Validate(IEnumerable<Tag> tags, string field)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var tag in tags)
        {
            if (!tag.HasKey || tag.Key.Length == 0)
            {
                throw EcsException.InvalidParameter($"{field}[{i}].key", "is required.");
            }

            if (tag.Key.StartsWith("aws:", StringComparison.OrdinalIgnoreCase))
            {
                throw EcsException.InvalidParameter($"{field}[{i}].key", "keys starting with 'aws:' are reserved.");
            }

            if (!keys.Add(tag.Key))
            {
                throw EcsException.InvalidParameter($"{field}[{i}].key", $"'{tag.Key}' appears more than once.");
            }

            i++;
        }
    }

    /// <summary>Existing tags with the given ones added or overwritten, key order kept.</summary>
    public static List<Tag> Merge(IEnumerable<Tag> existing, IEnumerable<Tag> added, string field)
    {
        var merged = existing.Select(t => t.Clone()).ToList();
        foreach (var tag in added)
        {
            var index = merged.FindIndex(t => t.Key == tag.Key);
            if (index >= 0)
            {
                merged[index] = tag.Clone();
            }
            else
            {
                merged.Add(tag.Clone());
            }
        }

        if (merged.Count > MaxTagsPerResource)
        {
            throw EcsException.InvalidParameter(field, $"a resource can have at most {MaxTagsPerResource} tags (this would make {merged.Count}).");
        }

        return merged;
    }
}
