using EcsLite.Api.V1;

namespace EcsLite.Agent.Docker;

/// <summary>A private registry's user name and password (a task's repositoryCredentials, resolved).</summary>
public sealed record RegistryAuth(string Username, string Password)
{
    public override string ToString() => $"RegistryAuth {{ Username = {Username} }}"; // never the password
}

/// <summary>
/// What the agent asks of a container engine. <see cref="DockerRuntime"/> is the real one; tests put a
/// runtime that fails in every way a real engine can behind the same task supervisor.
/// </summary>
public interface IContainerRuntime : IDisposable
{
    /// <summary>cgroupfs or systemd: how the engine names the cgroups it makes (and so a cgroup parent).</summary>
    Task<string> CgroupDriverAsync(CancellationToken cancellationToken);

    /// <summary>Pulls per ECS_IMAGE_PULL_BEHAVIOR (default, always, once, prefer-cached), with the registry's credentials if given.</summary>
    Task PullAsync(string image, string behavior, CancellationToken cancellationToken, RegistryAuth? auth = null);

    Task<bool> ExistsAsync(string image, CancellationToken cancellationToken);

    /// <summary>docker import: an image from a tar of its root file system, with Dockerfile-style changes.</summary>
    Task ImportImageAsync(string repository, string tag, byte[] rootFileSystemTar, IEnumerable<string> changes, CancellationToken cancellationToken);

    /// <summary>Every image a container on the host refers to, by the name it was created with and by id.</summary>
    Task<IReadOnlySet<string>> ImagesInUseAsync(CancellationToken cancellationToken);

    /// <summary>Removes an image; false if it was already gone.</summary>
    Task<bool> RemoveImageAsync(string image, CancellationToken cancellationToken);

    /// <summary>Creates a container and returns its id.</summary>
    Task<string> CreateAsync(CreateContainerParameters parameters, CancellationToken cancellationToken);

    Task StartAsync(string id, CancellationToken cancellationToken);

    /// <summary>SIGTERM, then SIGKILL once <paramref name="timeout"/> has passed.</summary>
    Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Removes a container, killing it if it runs; a container already gone is not an error.</summary>
    Task RemoveAsync(string id, CancellationToken cancellationToken);

    /// <summary>A container's state, by id or name.</summary>
    Task<ContainerFacts> InspectAsync(string id, CancellationToken cancellationToken);

    /// <summary>The containers this container instance owns, found by their labels (after a restart too).</summary>
    Task<IReadOnlyList<OwnedContainer>> ListOwnedAsync(string containerInstanceArn, CancellationToken cancellationToken);

    /// <summary>The containers of one task, its pause container too.</summary>
    Task<IReadOnlyList<OwnedContainer>> ListTaskContainersAsync(string taskArn, CancellationToken cancellationToken);

    /// <summary>The driver of a volume, or null when there is no volume of that name.</summary>
    Task<string?> VolumeDriverAsync(string name, CancellationToken cancellationToken);

    Task CreateVolumeAsync(string name, string driver, IDictionary<string, string> options, IDictionary<string, string> labels, CancellationToken cancellationToken);

    Task RemoveVolumeAsync(string name, CancellationToken cancellationToken);

    /// <summary>The engine's events about this instance's containers, from <paramref name="since"/>; returns when the stream ends.</summary>
    Task WatchAsync(string containerInstanceArn, Action<ContainerEvent> changed, CancellationToken cancellationToken, DateTimeOffset? since = null);

    /// <summary>Opens a container's logs; once this returns, a follow is in place.</summary>
    Task<LogStream> OpenLogsAsync(string id, bool tty, int? tail, bool follow, DateTimeOffset? since, CancellationToken cancellationToken);
}
