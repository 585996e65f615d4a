using System.Text;

namespace EcsLite.Coordinator.Core;

/// <summary>ECS's maxResults/nextToken paging over a sorted sequence; the token is the last key returned.</summary>
public static class Paging
{
    public const int DefaultMaxResults = 100;

    public static (List<T> Page, string? NextToken) Take<T>(
        IEnumerable<T> sorted, Func<T, string> key, bool hasMaxResults, int maxResults, string? nextToken, StringComparer? order = null)
    {
        if (hasMaxResults && maxResults is < 1 or > 100)
        {
            throw EcsException.InvalidParameter("maxResults", $"must be between 1 and 100 (got {maxResults}).");
        }

        var limit = hasMaxResults ? maxResults : DefaultMaxResults;
        var comparer = order ?? StringComparer.Ordinal;
        var after = string.IsNullOrEmpty(nextToken) ? null : Decode(nextToken);
        var page = new List<T>(Math.Min(limit, 64));
        string? last = null;
        foreach (var item in sorted)
        {
            var itemKey = key(item);
            if (after is not null && comparer.Compare(itemKey, after) <= 0)
            {
                continue;
            }

            if (page.Count == limit)
            {
                return (page, Encode(last!));
            }

            page.Add(item);
            last = itemKey;
        }

        return (page, null);
    }

    private static string Encode(string key) => Convert.ToBase64String(Encoding.UTF8.GetBytes("v1:" + key));

    private static string Decode(string token)
    {
        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(token));
            if (text.StartsWith("v1:", StringComparison.Ordinal))
            {
                return text[3..];
            }
        }
        catch (FormatException)
        {
        }

        throw EcsException.InvalidParameter("nextToken", "is not a token this API returned.");
    }
}
