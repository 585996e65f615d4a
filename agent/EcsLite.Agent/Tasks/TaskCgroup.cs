using System.Globalization;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// A cgroup per task holding the task-level cpu and memory as hard limits on all its containers together
/// (Docker's cgroup parent). With Docker's cgroupfs driver it is a directory the agent makes, on cgroup
/// v1 (a directory per controller) and v2 (one unified tree); with the systemd driver it is a slice
/// (`ecslite-TASKID.slice`, under `ecslite.slice`) whose limits systemd sets. cpu units become a CFS
/// quota (1024 units = one core) and memory a hard limit.
/// </summary>
public sealed class TaskCgroup
{
    private const string Root = "/sys/fs/cgroup";
    private const long Period = 100_000;

    private readonly string _taskId;

    private readonly bool _systemd;

    private TaskCgroup(string taskId, string parent, IReadOnlyList<string> directories, bool systemd = false)
    {
        _taskId = taskId;
        Parent = parent;
        Directories = directories;
        _systemd = systemd;
    }

    /// <summary>The cgroup parent to give Docker for every container of the task.</summary>
    public string Parent { get; }

    /// <summary>The directories made for the task (one per controller on v1), for checking and removal.</summary>
    public IReadOnlyList<string> Directories { get; }

    public static bool IsUnified => File.Exists(Path.Combine(Root, "cgroup.controllers"));

    /// <summary>Makes the task's cgroup with its limits; null when the task has no task-level cpu or memory.</summary>
    /// <param name="cgroupDriver">Docker's cgroup driver: cgroupfs or systemd.</param>
    public static TaskCgroup? Create(string taskId, int? cpuUnits, int? memoryMiB, string cgroupDriver = "cgroupfs")
    {
        if (cpuUnits is null && memoryMiB is null)
        {
            return null;
        }

        if (cgroupDriver == "systemd")
        {
            var slice = SliceName(taskId);
            var (code, output) = Systemctl(["set-property", "--runtime", slice, .. SliceProperties(cpuUnits, memoryMiB, IsUnified)]);
            return code == 0 ? new TaskCgroup(taskId, slice, [], systemd: true) : throw new IOException($"systemctl set-property {slice}: {output.Trim()}");
        }

        var parent = $"/ecslite/{taskId}";
        var directories = new List<string>();
        if (IsUnified)
        {
            Write(Path.Combine(Root, "cgroup.subtree_control"), "+cpu +memory");
            var ecslite = Directory.CreateDirectory(Path.Combine(Root, "ecslite")).FullName;
            Write(Path.Combine(ecslite, "cgroup.subtree_control"), "+cpu +memory");
            var task = Directory.CreateDirectory(Path.Combine(ecslite, taskId)).FullName;
            directories.Add(task);
            if (memoryMiB is { } memory)
            {
                Write(Path.Combine(task, "memory.max"), Bytes(memory));
            }

            if (cpuUnits is { } cpu)
            {
                Write(Path.Combine(task, "cpu.max"), $"{Quota(cpu)} {Period}");
            }
        }
        else
        {
            if (memoryMiB is { } memory)
            {
                var directory = Directory.CreateDirectory(Path.Combine(Root, "memory", "ecslite", taskId)).FullName;
                directories.Add(directory);
                Write(Path.Combine(directory, "memory.limit_in_bytes"), Bytes(memory));
            }

            if (cpuUnits is { } cpu)
            {
                var directory = Directory.CreateDirectory(Path.Combine(Root, "cpu", "ecslite", taskId)).FullName;
                directories.Add(directory);
                Write(Path.Combine(directory, "cpu.cfs_period_us"), Period.ToString(CultureInfo.InvariantCulture));
                Write(Path.Combine(directory, "cpu.cfs_quota_us"), Quota(cpu));
            }
        }

        return new TaskCgroup(taskId, parent, directories);
    }

    /// <summary>
    /// Removes the task's cgroup once its containers are gone (a cgroup with processes cannot be removed),
    /// under every controller: Docker makes the task's directory in the controllers it uses too.
    /// </summary>
    public void Remove()
    {
        if (_systemd)
        {
            Systemctl(["stop", Parent]);
            Systemctl(["revert", Parent]);
            return;
        }

        var all = IsUnified
            ? Directories
            : Directory.EnumerateDirectories(Root).Select(c => Path.Combine(c, "ecslite", _taskId)).Where(Directory.Exists).ToList();
        foreach (var directory in all)
        {
            try
            {
                foreach (var child in Directory.EnumerateDirectories(directory))
                {
                    Directory.Delete(child);
                }

                Directory.Delete(directory);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>systemd's name for the task's slice: a dash nests it under ecslite.slice.</summary>
    public static string SliceName(string taskId) => $"ecslite-{taskId}.slice";

    /// <summary>The slice's limits as systemd properties (v1 has MemoryLimit where v2 has MemoryMax).</summary>
    public static IReadOnlyList<string> SliceProperties(int? cpuUnits, int? memoryMiB, bool unified)
    {
        var properties = new List<string>();
        if (memoryMiB is { } memory)
        {
            properties.Add($"{(unified ? "MemoryMax" : "MemoryLimit")}={Bytes(memory)}");
        }

        if (cpuUnits is { } cpu)
        {
            properties.Add($"CPUQuota={Math.Max(1, cpu * 100 / 1024).ToString(CultureInfo.InvariantCulture)}%");
        }

        return properties;
    }

    private static (int Code, string Output) Systemctl(IReadOnlyList<string> arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("systemctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            using var process = System.Diagnostics.Process.Start(start)!;
            var output = process.StandardError.ReadToEnd() + process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }

    private static string Quota(int cpuUnits) => Math.Max(1000, cpuUnits * Period / 1024).ToString(CultureInfo.InvariantCulture);

    private static string Bytes(int mib) => ((long)mib * 1024 * 1024).ToString(CultureInfo.InvariantCulture);

    private static void Write(string path, string value) => File.WriteAllText(path, value);
}
