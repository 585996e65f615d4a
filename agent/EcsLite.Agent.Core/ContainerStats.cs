using System.Globalization;

namespace EcsLite.Agent.Core;

/// <summary>A container's resource use, as its cgroups and network namespace count it since it started.</summary>
public sealed record ContainerUsage(
    double CpuSeconds,
    long MemoryBytes,
    long NetworkReceiveBytes,
    long NetworkTransmitBytes,
    long BlockReadBytes,
    long BlockWriteBytes);

/// <summary>
/// Reads a container's usage from the kernel's own files, found from one of its processes: its cgroups
/// (<c>/proc/PID/cgroup</c>, cgroup v1 or v2, whichever cgroup driver Docker uses) and its network
/// namespace (<c>/proc/PID/net/dev</c>). Memory is the working set as <c>docker stats</c> shows it: usage
/// less the inactive page cache, which the kernel reclaims first. The parsers are pure; <see cref="Read"/>
/// is the edge that opens the files.
/// </summary>
public static class ContainerStats
{
    /// <summary>The usage of the container whose process is <paramref name="pid"/>; null once that process is gone.</summary>
    public static ContainerUsage? Read(int pid, string cgroupRoot = "/sys/fs/cgroup", string proc = "/proc")
    {
        try
        {
            var paths = CgroupPaths(File.ReadAllText($"{proc}/{pid}/cgroup"));
            var (receive, transmit) = NetworkBytes(File.ReadAllText($"{proc}/{pid}/net/dev"));
            string? Text(string controller, string file)
            {
                // v2's one tree is the root itself; each v1 controller is mounted under its name.
                var full = paths.TryGetValue(controller, out var path) ? $"{cgroupRoot}{(controller.Length == 0 ? "" : "/" + controller)}{path}/{file}" : null;
                return full is not null && File.Exists(full) ? File.ReadAllText(full) : null;
            }

            if (paths.ContainsKey(""))
            {
                // cgroup v2: one tree.
                var (read, write) = IoStatBytes(Text("", "io.stat") ?? "");
                return new ContainerUsage(
                    CpuStatUsageMicroseconds(Text("", "cpu.stat") ?? "") / 1e6,
                    WorkingSet(Text("", "memory.current"), Text("", "memory.stat"), "inactive_file"),
                    receive, transmit, read, write);
            }

            var (blockRead, blockWrite) = BlkioBytes(Text("blkio", "blkio.throttle.io_service_bytes") ?? "");
            return new ContainerUsage(
                Number(Text("cpuacct", "cpuacct.usage")) / 1e9,
                WorkingSet(Text("memory", "memory.usage_in_bytes"), Text("memory", "memory.stat"), "total_inactive_file"),
                receive, transmit, blockRead, blockWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // the container stopped between the look and the read
        }
    }

    /// <summary>/proc/PID/cgroup: controller to path ("" for the v2 tree; v1's joined controllers each named).</summary>
    public static IReadOnlyDictionary<string, string> CgroupPaths(string text)
    {
        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3)
            {
                continue;
            }

            if (parts[0] == "0" && parts[1].Length == 0)
            {
                paths[""] = parts[2];
            }

            foreach (var controller in parts[1].Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                paths[controller] = parts[2];
            }
        }

        // A hybrid host lists the v2 tree beside v1's controllers: the controllers win.
        if (paths.ContainsKey("memory"))
        {
            paths.Remove("");
        }

        return paths;
    }

    /// <summary>/proc/PID/net/dev: bytes received and sent on every interface but loopback.</summary>
    public static (long Receive, long Transmit) NetworkBytes(string text)
    {
        long receive = 0, transmit = 0;
        foreach (var line in text.Split('\n').Skip(2))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || line[..colon].Trim() == "lo")
            {
                continue;
            }

            var fields = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 9)
            {
                receive += Number(fields[0]);
                transmit += Number(fields[8]);
            }
        }

        return (receive, transmit);
    }

    /// <summary>cgroup v2 cpu.stat's usage_usec.</summary>
    public static long CpuStatUsageMicroseconds(string text) => Field(text, "usage_usec");

    /// <summary>cgroup v2 io.stat: rbytes and wbytes summed over devices.</summary>
    public static (long Read, long Write) IoStatBytes(string text)
    {
        long read = 0, write = 0;
        foreach (var pair in text.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (pair.StartsWith("rbytes=", StringComparison.Ordinal))
            {
                read += Number(pair["rbytes=".Length..]);
            }
            else if (pair.StartsWith("wbytes=", StringComparison.Ordinal))
            {
                write += Number(pair["wbytes=".Length..]);
            }
        }

        return (read, write);
    }

    /// <summary>cgroup v1 blkio.throttle.io_service_bytes: "MAJ:MIN Read N" and "MAJ:MIN Write N" summed over devices.</summary>
    public static (long Read, long Write) BlkioBytes(string text)
    {
        long read = 0, write = 0;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 3 && fields[1] == "Read")
            {
                read += Number(fields[2]);
            }
            else if (fields.Length == 3 && fields[1] == "Write")
            {
                write += Number(fields[2]);
            }
        }

        return (read, write);
    }

    /// <summary>Usage less the inactive file cache (never below zero).</summary>
    public static long WorkingSet(string? usage, string? stat, string inactiveField) =>
        Math.Max(0, Number(usage) - (stat is null ? 0 : Field(stat, inactiveField)));

    /// <summary>The value of "NAME VALUE" in a flat keyed file such as memory.stat or cpu.stat; 0 when absent.</summary>
    public static long Field(string text, string name)
    {
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && line.AsSpan(0, space).SequenceEqual(name))
            {
                return Number(line[(space + 1)..]);
            }
        }

        return 0;
    }

    private static long Number(string? text) =>
        long.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 0;
}
