namespace EcsLite.Agent.Tasks;

/// <summary>Paths as the kernel will see them when Docker bind-mounts them.</summary>
public static class HostPaths
{
    /// <summary>
    /// <paramref name="path"/> with every symbolic link in it resolved (realpath), for the part that
    /// exists; the rest (Docker creates missing bind sources) is kept as written.
    /// </summary>
    public static string Real(string path)
    {
        var resolved = "/";
        var parts = new Queue<string>(Path.GetFullPath(path).Split('/', StringSplitOptions.RemoveEmptyEntries));
        for (var links = 0; parts.TryDequeue(out var part);)
        {
            var next = Path.Join(resolved, part);
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                resolved = next;
                continue;
            }

            if (++links > 40)
            {
                throw new IOException($"too many levels of symbolic links in {path}");
            }

            // The link's target takes its place (relative targets from the link's directory), and is
            // walked again from / since it may hold links of its own.
            parts = new Queue<string>(Path.GetFullPath(target, resolved).Split('/', StringSplitOptions.RemoveEmptyEntries).Concat(parts));
            resolved = "/";
        }

        return resolved;
    }
}
