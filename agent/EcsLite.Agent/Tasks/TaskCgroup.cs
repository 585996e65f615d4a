using System.Globalization;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// A cgroup per task holding the task-level cpu and memory as hard limits on all its containers together
/// (Docker's cgroup parent, with the cgroupfs driver). Handles cgroup v1 (a directory per controller) and
/// v2 (one unified tree). cpu units become a CFS quota (1024 units = one core) and memory a hard limit.
/// </summary>
public sealed class TaskCgroup
{
    private const string Root = "/sys/fs/cgroup";
    private const long Period = 100_000;

    private readonly string _taskId;

    private TaskCgroup(string taskId, string parent, IReadOnlyList<string> directories)
    {
        _taskId = taskId;
        Parent = parent;
        Directories = directories;
    }

    /// <summary>The cgroup parent to give Docker for every container of the task.</summary>
    public string Parent { get; }

    /// <summary>The directories made for the task (one per controller on v1), for checking and removal.</summary>
    public IReadOnlyList<string> Directories { get; }

    public static bool IsUnified => File.Exists(Path.Combine(Root, "cgroup.controllers"));

    /// <summary>Makes the task's cgroup with its limits; null when the task has no task-level cpu or memory.</summary>
    public static TaskCgroup? Create(string taskId, int? cpuUnits, int? memoryMiB)
    {
        if (cpuUnits is null && memoryMiB is null)
        {
            return null;
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

    private static string Quota(int cpuUnits) => Math.Max(1000, cpuUnits * Period / 1024).ToString(CultureInfo.InvariantCulture);

    private static string Bytes(int mib) => ((long)mib * 1024 * 1024).ToString(CultureInfo.InvariantCulture);

    private static void Write(string path, string value) => File.WriteAllText(path, value);
}
