using EcsLite.Api.V1;
using Google.Protobuf;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// The tasks this host has containers for, one file per task in the data directory (tasks/TASKID.pb,
/// the desired task with its definition). Written before the task's first container is created and
/// removed after its containers are, so after a restart the agent knows which tasks to adopt from
/// Docker without asking Docker when it has none.
/// </summary>
public sealed class TaskStore(string dataDir)
{
    private readonly string _directory = Path.Combine(dataDir, "tasks");

    public bool IsEmpty => !Directory.Exists(_directory) || !Directory.EnumerateFiles(_directory, "*.pb").Any();

    /// <summary>Writes the task without its secrets' values: those are kept in memory only, and come again with the next full set.</summary>
    public void Save(DesiredTask task)
    {
        if (task.Secrets.Count > 0 || task.SecretsError.Length > 0)
        {
            task = new DesiredTask { TaskArn = task.TaskArn, DesiredStatus = task.DesiredStatus, TaskDefinition = task.TaskDefinition };
        }

        Directory.CreateDirectory(_directory);
        var path = PathOf(task.TaskArn);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            task.WriteTo(file);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    public void Remove(string taskArn) => File.Delete(PathOf(taskArn));

    public IReadOnlyList<DesiredTask> LoadAll() => IsEmpty
        ? []
        : [.. Directory.EnumerateFiles(_directory, "*.pb").Select(f => DesiredTask.Parser.ParseFrom(File.ReadAllBytes(f)))];

    private string PathOf(string taskArn) => Path.Combine(_directory, taskArn[(taskArn.LastIndexOf('/') + 1)..] + ".pb");
}
