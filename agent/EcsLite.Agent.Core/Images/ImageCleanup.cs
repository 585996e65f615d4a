namespace EcsLite.Agent.Core.Images;

/// <summary>
/// Which images a cleanup pass removes, as the ECS agent decides it: only images this agent pulled for
/// tasks (never the host's other images), none that a container still uses, none used more recently
/// than the minimum age, least recently used first, at most so many per pass.
/// </summary>
public static class ImageCleanup
{
    /// <param name="lastUsed">Each image the agent used for a task, and when a task last used it.</param>
    /// <param name="inUse">Images that containers on the host (running or not) still refer to.</param>
    public static IReadOnlyList<string> Select(IReadOnlyDictionary<string, DateTimeOffset> lastUsed, IReadOnlySet<string> inUse,
        DateTimeOffset now, TimeSpan minimumAge, int maximum) =>
        [.. lastUsed
            .Where(image => !inUse.Contains(image.Key) && now - image.Value >= minimumAge)
            .OrderBy(image => image.Value)
            .ThenBy(image => image.Key, StringComparer.Ordinal)
            .Take(maximum)
            .Select(image => image.Key)];
}
