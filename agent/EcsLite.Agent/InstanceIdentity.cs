using System.Text.Json;

namespace EcsLite.Agent;

/// <summary>
/// The container instance this agent is, kept in its data directory (instance.json) so a restarted
/// agent is the same instance. Written atomically: a crash leaves the old file or the new, never half.
/// </summary>
public sealed class InstanceIdentity(string dataDir)
{
    public const string FileName = "instance.json";

    public string Path { get; } = System.IO.Path.Combine(dataDir, FileName);

    public string? ContainerInstanceArn { get; private set; }

    public string? Cluster { get; private set; }

    public void Load()
    {
        if (!File.Exists(Path))
        {
            return;
        }

        var saved = JsonSerializer.Deserialize(File.ReadAllText(Path), IdentityJson.Default.Saved);
        ContainerInstanceArn = saved?.ContainerInstanceArn;
        Cluster = saved?.Cluster;
    }

    public void Save(string containerInstanceArn, string cluster)
    {
        if (containerInstanceArn == ContainerInstanceArn && cluster == Cluster)
        {
            return;
        }

        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var temporary = Path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(file, new Saved(containerInstanceArn, cluster), IdentityJson.Default.Saved);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, Path, overwrite: true);
        ContainerInstanceArn = containerInstanceArn;
        Cluster = cluster;
    }

    internal sealed record Saved(string ContainerInstanceArn, string Cluster);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(InstanceIdentity.Saved))]
internal sealed partial class IdentityJson : System.Text.Json.Serialization.JsonSerializerContext;
