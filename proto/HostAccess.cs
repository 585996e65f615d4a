namespace EcsLite.Api.V1;

/// <summary>
/// What a host lets its tasks reach, shared by the agent (which enforces it and reports it) and the
/// coordinator (which places tasks only where they are allowed). A host that restricts bind mounts
/// reports the attribute <see cref="AllowedHostPathsAttribute"/> with its allowed directories,
/// comma-separated; without the attribute every path is allowed, as on ECS.
/// </summary>
public static class HostAccess
{
    public const string AllowedHostPathsAttribute = "ecslite.allowed-host-paths";

    /// <summary>The ECS agent's capability for privileged containers; a host with ECS_DISABLE_PRIVILEGED does not report it.</summary>
    public const string PrivilegedCapability = "com.amazonaws.ecs.capability.privileged-container";

    /// <summary>Every host path a task definition reaches: the source paths of the host volumes its containers mount, and their devices.</summary>
    public static IEnumerable<string> HostPaths(TaskDefinition definition) =>
        definition.ContainerDefinitions.SelectMany(c => HostPaths(definition, c));

    /// <summary>The host paths one container reaches.</summary>
    public static IEnumerable<string> HostPaths(TaskDefinition definition, ContainerDefinition container) =>
        container.MountPoints.Select(m => definition.Volumes.FirstOrDefault(v => v.Name == m.SourceVolume))
            .Where(v => v?.Host is { HasSourcePath: true } host && host.SourcePath.Length > 0)
            .Select(v => v!.Host.SourcePath)
            .Concat(container.LinuxParameters?.Devices.Where(d => d.HasHostPath).Select(d => d.HostPath) ?? []);

    public static IReadOnlyList<string> ParseAllowed(string attributeValue) =>
        attributeValue.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// Whether <paramref name="path"/> is one of <paramref name="allowed"/> or under one, lexically,
    /// after "." and ".." are resolved (the agent also resolves symbolic links before asking).
    /// </summary>
    public static bool Allows(IReadOnlyList<string> allowed, string path)
    {
        if (!path.StartsWith('/'))
        {
            return false;
        }

        var full = Path.GetFullPath(path).TrimEnd('/');
        return allowed.Any(a => Path.GetFullPath(a).TrimEnd('/') is var root
            && (root.Length == 0 || full == root || full.StartsWith(root + "/", StringComparison.Ordinal)));
    }
}
