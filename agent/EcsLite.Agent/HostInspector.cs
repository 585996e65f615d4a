using System.Reflection;
using System.Runtime.InteropServices;
using EcsLite.Agent.Core;
using EcsLite.Api.V1;

namespace EcsLite.Agent;

/// <summary>Reads the host: CPUs, memory, usage and identity, from /proc, /sys and a few system calls.</summary>
public sealed class HostInspector(AgentSettings settings)
{
    private const int SysconfOnlineProcessors = 84; // _SC_NPROCESSORS_ONLN on Linux
    private (ulong Busy, ulong Total) _lastCpu = ReadCpuTimes();

    public static string AgentVersion { get; } =
        typeof(HostInspector).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public string Hostname { get; } = Environment.MachineName;

    /// <summary>The hello this host sends: identity, resources, attributes and the tasks it knows.</summary>
    public AgentHello Hello(string? containerInstanceArn, IEnumerable<TaskStateChange> tasks)
    {
        var (totalKiB, _) = HostFacts.ParseMemInfo(File.ReadAllText("/proc/meminfo"));
        var hello = new AgentHello
        {
            ContainerInstanceArn = containerInstanceArn ?? "",
            Cluster = settings.Cluster,
            Hostname = Hostname,
            VersionInfo = new VersionInfo { AgentVersion = AgentVersion, AgentHash = "", DockerVersion = "" },
        };
        hello.RegisteredResources.Add(HostFacts.RegisteredResources(OnlineCpus(), totalKiB, settings));
        var architecture = HostFacts.CpuArchitecture(RuntimeInformation.OSArchitecture.ToString());
        var instanceType = HostFacts.InstanceType(ReadOrNull("/sys/firmware/devicetree/base/model"), ReadOrNull("/sys/class/dmi/id/product_name"));
        hello.Attributes.Add(HostFacts.Attributes(architecture, instanceType, Hostname, settings));
        hello.Tasks.Add(tasks);
        return hello;
    }

    /// <summary>Whether task memory limits can hold here (the kernel's memory cgroup controller is on).</summary>
    public static bool MemoryCgroupEnabled() =>
        HostFacts.MemoryCgroupEnabled(ReadOrNull("/sys/fs/cgroup/cgroup.controllers"), ReadOrNull("/proc/cgroups"));

    /// <summary>Usage since the previous sample: CPU busy share, memory, load and the data directory's free space.</summary>
    public HostUsage Usage()
    {
        var cpu = ReadCpuTimes();
        var percent = HostFacts.CpuPercent(_lastCpu, cpu);
        _lastCpu = cpu;
        var (totalKiB, availableKiB) = HostFacts.ParseMemInfo(File.ReadAllText("/proc/meminfo"));
        return new HostUsage
        {
            CpuPercent = Math.Round(percent, 1),
            MemoryUsedMiB = (totalKiB - availableKiB) / 1024,
            MemoryAvailableMiB = availableKiB / 1024,
            LoadAverage1M = HostFacts.ParseLoadAverage(File.ReadAllText("/proc/loadavg")),
            DataDiskAvailableMiB = AvailableMiB(settings.DataDir),
        };
    }

    /// <summary>Online CPUs as the kernel counts them (not the process's affinity or cgroup share).</summary>
    public static int OnlineCpus()
    {
        var count = (long)Tmds.Linux.LibC.sysconf(SysconfOnlineProcessors);
        return count > 0 ? (int)count : HostFacts.CountCpuList(File.ReadAllText("/sys/devices/system/cpu/online"));
    }

    private static unsafe long AvailableMiB(string path)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        Tmds.Linux.statvfs info;
        fixed (byte* p = bytes)
        {
            if (Tmds.Linux.LibC.statvfs(p, &info) != 0)
            {
                return -1;
            }
        }

        return (long)((ulong)info.f_bavail * (ulong)info.f_frsize / (1024 * 1024));
    }

    private static (ulong Busy, ulong Total) ReadCpuTimes() => HostFacts.ParseCpuTimes(File.ReadAllText("/proc/stat"));

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
