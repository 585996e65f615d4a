using System.Collections.Concurrent;
using System.Globalization;
using EcsLite.Agent.Core;
using EcsLite.Agent.Core.Images;
using EcsLite.Agent.Docker;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// Removes images the agent pulled for tasks once no container uses them (ECS_IMAGE_CLEANUP_INTERVAL,
/// ECS_IMAGE_MINIMUM_CLEANUP_AGE, ECS_NUM_IMAGES_DELETE_PER_CYCLE). What it tracks is kept in the data
/// directory (images.tsv: last use in Unix ms, a tab, the image), so a restart forgets nothing.
/// </summary>
/// <param name="tasksImages">The images of the tasks the agent holds now, containers made or not yet.</param>
public sealed partial class ImageCleaner(IContainerRuntime docker, AgentSettings settings, TimeProvider time, ILogger logger, Func<IEnumerable<string>> tasksImages)
{
    private readonly string _path = Path.Combine(settings.DataDir, "images.tsv");
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastUsed = Load(Path.Combine(settings.DataDir, "images.tsv"));
    private readonly Lock _saving = new();

    /// <summary>A task uses the image now.</summary>
    public void Used(string image)
    {
        var added = !_lastUsed.ContainsKey(image);
        _lastUsed[image] = time.GetUtcNow();
        if (added)
        {
            Save();
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (settings.ImageCleanupDisabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(settings.ImageCleanupInterval, time);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            try
            {
                await CleanAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogCleanupFailed(logger, e.Message);
            }
        }
    }

    private async Task CleanAsync(CancellationToken cancellationToken)
    {
        // In use: what containers refer to, and what the agent's tasks will pull or create next.
        var inUse = new HashSet<string>(await docker.ImagesInUseAsync(cancellationToken), StringComparer.Ordinal);
        inUse.UnionWith(tasksImages());
        var now = time.GetUtcNow();
        foreach (var image in _lastUsed.Keys.Where(inUse.Contains))
        {
            _lastUsed[image] = now;
        }

        foreach (var image in ImageCleanup.Select(_lastUsed, inUse, now, settings.ImageMinimumCleanupAge, settings.ImagesDeletedPerCycle))
        {
            if (await docker.RemoveImageAsync(image, cancellationToken))
            {
                LogRemoved(logger, image);
            }

            _lastUsed.TryRemove(image, out _);
        }

        Save();
    }

    private void Save()
    {
        lock (_saving)
        {
            Directory.CreateDirectory(settings.DataDir);
            File.WriteAllLines(_path + ".tmp", _lastUsed.Select(i => $"{i.Value.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}\t{i.Key}"));
            File.Move(_path + ".tmp", _path, overwrite: true);
        }
    }

    private static ConcurrentDictionary<string, DateTimeOffset> Load(string path)
    {
        var images = new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var line in File.Exists(path) ? File.ReadAllLines(path) : [])
        {
            var tab = line.IndexOf('\t', StringComparison.Ordinal);
            if (tab > 0 && long.TryParse(line[..tab], CultureInfo.InvariantCulture, out var ms))
            {
                images[line[(tab + 1)..]] = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            }
        }

        return images;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed unused image {Image}")]
    private static partial void LogRemoved(ILogger logger, string image);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Image cleanup failed: {Reason}")]
    private static partial void LogCleanupFailed(ILogger logger, string reason);
}
