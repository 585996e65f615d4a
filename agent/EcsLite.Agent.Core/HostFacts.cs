using System.Globalization;
using EcsLite.Api.V1;

namespace EcsLite.Agent.Core;

/// <summary>Parses what the kernel says about the host (/proc, /sys) into ECS's resources and attributes.</summary>
public static class HostFacts
{
    /// <summary>MemTotal and MemAvailable in KiB from /proc/meminfo.</summary>
    public static (long TotalKiB, long AvailableKiB) ParseMemInfo(string meminfo)
    {
        long total = -1, available = -1;
        foreach (var line in meminfo.Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2)
            {
                continue;
            }

            if (parts[0] == "MemTotal:")
            {
                total = long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
            else if (parts[0] == "MemAvailable:")
            {
                available = long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
        }

        return total < 0 ? throw new FormatException("/proc/meminfo has no MemTotal") : (total, available < 0 ? 0 : available);
    }

    /// <summary>The number of CPUs in a kernel CPU list such as "0-3,6,8-9" (/sys/devices/system/cpu/online).</summary>
    public static int CountCpuList(string list)
    {
        var count = 0;
        foreach (var range in list.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var bounds = range.Split('-');
            count += bounds.Length == 2
                ? int.Parse(bounds[1], CultureInfo.InvariantCulture) - int.Parse(bounds[0], CultureInfo.InvariantCulture) + 1
                : 1;
        }

        return count;
    }

    /// <summary>Busy and total jiffies of all CPUs from the first line of /proc/stat.</summary>
    public static (ulong Busy, ulong Total) ParseCpuTimes(string stat)
    {
        var line = stat.AsSpan(0, stat.IndexOf('\n') is var end and >= 0 ? end : stat.Length).ToString();
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 5 || fields[0] != "cpu")
        {
            throw new FormatException("/proc/stat does not start with the cpu line");
        }

        var values = fields.Skip(1).Take(8).Select(f => ulong.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var idle = values[3] + (values.Length > 4 ? values[4] : 0); // idle + iowait
        var total = values.Aggregate(0UL, (sum, v) => sum + v);
        return (total - idle, total);
    }

    public static double CpuPercent((ulong Busy, ulong Total) before, (ulong Busy, ulong Total) after) =>
        after.Total <= before.Total ? 0 : 100.0 * (after.Busy - before.Busy) / (after.Total - before.Total);

    /// <summary>The 1-minute load average from /proc/loadavg.</summary>
    public static double ParseLoadAverage(string loadavg) =>
        double.Parse(loadavg.Split(' ', 2)[0], CultureInfo.InvariantCulture);

    /// <summary>ECS's cpu-architecture words: x86_64 and arm64.</summary>
    public static string CpuArchitecture(string machine) => machine switch
    {
        "aarch64" or "arm64" or "Arm64" => "arm64",
        "x86_64" or "amd64" or "X64" => "x86_64",
        _ => machine.ToLowerInvariant(),
    };

    /// <summary>A board or VM model ("Raspberry Pi 4 Model B Rev 1.4") from device tree or DMI text, tidied.</summary>
    public static string? InstanceType(string? deviceTreeModel, string? dmiProductName)
    {
        foreach (var candidate in new[] { deviceTreeModel, dmiProductName })
        {
            var text = candidate?.Replace("\0", "", StringComparison.Ordinal).Trim();
            if (!string.IsNullOrEmpty(text) && text is not ("None" or "To be filled by O.E.M." or "System Product Name"))
            {
                return text.Length > 128 ? text[..128] : text;
            }
        }

        return null;
    }

    /// <summary>
    /// Whether the kernel's memory cgroup controller is on, without which no task's memory limit holds:
    /// with cgroup v2 it is listed in /sys/fs/cgroup/cgroup.controllers; with v1, /proc/cgroups has its
    /// row with "enabled" 1. Raspberry Pi OS kernels leave it off unless cmdline.txt turns it on.
    /// </summary>
    public static bool MemoryCgroupEnabled(string? unifiedControllers, string? procCgroups)
    {
        if (unifiedControllers is not null)
        {
            return unifiedControllers.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Contains("memory");
        }

        // "#subsys_name hierarchy num_cgroups enabled"
        return procCgroups?.Split('\n').Select(line => line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            .Any(fields => fields is ["memory", _, _, "1", ..]) ?? false;
    }

    /// <summary>What the host offers, as ECS's RegisterContainerInstance reports it.</summary>
    public static List<Resource> RegisteredResources(int cpus, long memTotalKiB, AgentSettings settings) =>
    [
        new() { Name = "CPU", Type = "INTEGER", IntegerValue = cpus * 1024 },
        new() { Name = "MEMORY", Type = "INTEGER", IntegerValue = (int)Math.Max(0, (memTotalKiB / 1024) - settings.ReservedMemoryMiB) },
        Ports("PORTS", settings.HostReservedPorts),
        Ports("PORTS_UDP", settings.ReservedPortsUdp),
    ];

    /// <summary>
    /// What this agent can run, named as the ECS agent names its capabilities, so a task definition's
    /// requiresAttributes (computed at registration, as ECS does) place it here. Not claimed: Docker
    /// volume plugins. IAM roles are accepted (there is no IAM
    /// here: the task runs without AWS credentials); awslogs is kept locally by the agent.
    /// </summary>
    public static readonly IReadOnlyList<string> Capabilities =
    [
        "com.amazonaws.ecs.capability.docker-remote-api.1.41",
        .. new[] { "awslogs", "json-file", "local", "syslog", "journald", "gelf", "fluentd", "splunk", "none" }.Select(d => $"com.amazonaws.ecs.capability.logging-driver.{d}"),
        Api.V1.HostAccess.PrivilegedCapability,
        "com.amazonaws.ecs.capability.task-iam-role",
        "ecs.capability.execution-role-awslogs",
        "ecs.capability.task-eni",
        "ecs.capability.task-cpu-mem-limit",
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "ecs.capability.container-restart-policy",
        // Secrets, from the coordinator's store (delivered with the task, kept in memory only).
        "ecs.capability.secrets.ssm.environment-variables",
        "ecs.capability.secrets.asm.environment-variables",
        "ecs.capability.secrets.ssm.bootstrap.log-driver",
        "ecs.capability.secrets.asm.bootstrap.log-driver",
        "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager",
    ];

    /// <summary>The attributes ECS agents report, plus the hostname and the configured custom ones.</summary>
    public static List<Api.V1.Attribute> Attributes(string cpuArchitecture, string? instanceType, string hostname, AgentSettings settings)
    {
        var attributes = new List<Api.V1.Attribute>
        {
            new() { Name = "ecs.os-type", Value = "linux" },
            new() { Name = "ecs.os-family", Value = "LINUX" },
            new() { Name = "ecs.cpu-architecture", Value = cpuArchitecture },
            new() { Name = "hostname", Value = hostname },
        };
        if (instanceType is not null)
        {
            attributes.Add(new() { Name = "ecs.instance-type", Value = instanceType });
        }

        attributes.AddRange(Capabilities.Where(name => !(settings.PrivilegedDisabled && name == Api.V1.HostAccess.PrivilegedCapability))
            .Select(name => new Api.V1.Attribute { Name = name }));
        if (settings.AllowedHostPaths is { } allowed)
        {
            attributes.Add(new() { Name = Api.V1.HostAccess.AllowedHostPathsAttribute, Value = string.Join(',', allowed) });
        }

        foreach (var (name, value) in settings.InstanceAttributes.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            attributes.RemoveAll(a => a.Name == name);
            attributes.Add(new() { Name = name, Value = value });
        }

        return attributes;
    }

    private static Resource Ports(string name, IEnumerable<int> ports)
    {
        var resource = new Resource { Name = name, Type = "STRINGSET" };
        resource.StringSetValue.Add(ports.Select(p => p.ToString(CultureInfo.InvariantCulture)));
        return resource;
    }
}

/// <summary>Reconnect delays: exponential from 250 ms, capped, with jitter so agents do not reconnect in step.</summary>
public static class Backoff
{
    public static readonly TimeSpan Initial = TimeSpan.FromMilliseconds(250);
    public static readonly TimeSpan Cap = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The delay before reconnect attempt <paramref name="attempt"/> (0-based) when the attempts go to
    /// <paramref name="coordinators"/> coordinators in turn: it grows once per round of them, so after one
    /// dies the next is tried as soon as the last was.
    /// </summary>
    public static TimeSpan Delay(int attempt, double random01, int coordinators) => Delay(attempt / Math.Max(1, coordinators), random01);

    /// <summary>The delay before reconnect attempt <paramref name="attempt"/> (0-based); <paramref name="random01"/> in [0, 1).</summary>
    public static TimeSpan Delay(int attempt, double random01)
    {
        var ceiling = Math.Min(Cap.TotalMilliseconds, Initial.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 20)));
        return TimeSpan.FromMilliseconds(ceiling * (0.5 + (random01 / 2)));
    }
}
