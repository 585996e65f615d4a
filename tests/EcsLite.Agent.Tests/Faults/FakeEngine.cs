using System.Collections.Concurrent;
using System.Net;
using System.Threading.Channels;
using EcsLite.Agent.Docker;

namespace EcsLite.Agent.Tests.Faults;

/// <summary>
/// An in-memory container engine for fault-injection runs: images, containers with Docker's states and
/// rules (names unique, a container joining another's namespace needs it running, stop is SIGTERM and
/// exit 143), volumes, and an event stream. A container whose command is ["exit-after", MS, CODE] exits
/// by itself; any other runs until stopped. Only what the supervisor and the task engine ask is here.
/// </summary>
public sealed class FakeEngine : IContainerRuntime
{
    private readonly ConcurrentDictionary<string, byte> _images = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Container> _containers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _volumes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Channel<ContainerEvent>, byte> _watchers = new();
    private readonly Lock _lock = new();
    private int _nextId;

    public FakeEngine(params string[] images)
    {
        foreach (var image in images)
        {
            _images[image] = 0;
        }
    }

    public sealed class Container
    {
        public required string Id { get; init; }

        public required string Name { get; init; }

        public required IReadOnlyDictionary<string, string> Labels { get; init; }

        public required string NetworkMode { get; init; }

        public required IList<string> Command { get; init; }

        public string Status { get; set; } = "created";

        public int? ExitCode { get; set; }

        public DateTimeOffset? StartedAt { get; set; }

        public int Starts { get; set; }

        public bool Running => Status == "running";
    }

    public IReadOnlyCollection<Container> Containers => [.. _containers.Values];

    public Task<string> CgroupDriverAsync(CancellationToken cancellationToken) => Task.FromResult("cgroupfs");

    public Task PullAsync(string image, string behavior, CancellationToken cancellationToken, RegistryAuth? auth = null)
    {
        if (image.StartsWith("missing/", StringComparison.Ordinal))
        {
            throw new DockerApiException(HttpStatusCode.NotFound, $"pull access denied for {image}, repository does not exist");
        }

        _images[image] = 0;
        return Task.CompletedTask;
    }

    public Task<bool> ExistsAsync(string image, CancellationToken cancellationToken) => Task.FromResult(_images.ContainsKey(image));

    public Task ImportImageAsync(string repository, string tag, byte[] rootFileSystemTar, IEnumerable<string> changes, CancellationToken cancellationToken)
    {
        _images[$"{repository}:{tag}"] = 0;
        return Task.CompletedTask;
    }

    public Task<IReadOnlySet<string>> ImagesInUseAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlySet<string>>(new HashSet<string>());

    public Task<bool> RemoveImageAsync(string image, CancellationToken cancellationToken) => Task.FromResult(_images.TryRemove(image, out _));

    public Task<string> CreateAsync(CreateContainerParameters parameters, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_images.ContainsKey(parameters.Image!))
            {
                throw new DockerApiException(HttpStatusCode.NotFound, $"No such image: {parameters.Image}");
            }

            if (_containers.Values.Any(c => c.Name == parameters.Name))
            {
                throw new DockerApiException(HttpStatusCode.Conflict, $"Conflict. The container name \"/{parameters.Name}\" is already in use");
            }

            foreach (var source in parameters.HostConfig.VolumesFrom ?? [])
            {
                if (!_containers.Values.Any(c => c.Name == source.Split(':')[0]))
                {
                    throw new DockerApiException(HttpStatusCode.NotFound, $"No such container: {source}");
                }
            }

            var id = $"{Interlocked.Increment(ref _nextId):x8}{Guid.NewGuid():N}";
            _containers[id] = new Container
            {
                Id = id,
                Name = parameters.Name ?? id,
                Labels = new Dictionary<string, string>(parameters.Labels ?? new Dictionary<string, string>()),
                NetworkMode = parameters.HostConfig.NetworkMode ?? "bridge",
                Command = parameters.Cmd ?? [],
            };
            return Task.FromResult(id);
        }
    }

    public Task StartAsync(string id, CancellationToken cancellationToken)
    {
        Container container;
        lock (_lock)
        {
            container = Find(id);
            if (container.Running)
            {
                return Task.CompletedTask; // 304
            }

            if (container.NetworkMode.StartsWith("container:", StringComparison.Ordinal))
            {
                _containers.TryGetValue(container.NetworkMode["container:".Length..], out var owner);
                if (owner is not { Running: true })
                {
                    throw new DockerApiException(HttpStatusCode.InternalServerError, "cannot join network of a non running container");
                }
            }

            container.Status = "running";
            container.ExitCode = null;
            container.StartedAt = DateTimeOffset.UtcNow;
            container.Starts++;
        }

        Emit(container, "start");
        if (container.Command is ["exit-after", var ms, var code])
        {
            var starts = container.Starts;
            _ = Task.Delay(int.Parse(ms, System.Globalization.CultureInfo.InvariantCulture), CancellationToken.None).ContinueWith(_ =>
            {
                lock (_lock)
                {
                    if (!container.Running || container.Starts != starts)
                    {
                        return;
                    }

                    container.Status = "exited";
                    container.ExitCode = int.Parse(code, System.Globalization.CultureInfo.InvariantCulture);
                }

                Emit(container, "die");
            }, TaskScheduler.Default);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Container container;
        lock (_lock)
        {
            container = Find(id);
            if (!container.Running)
            {
                return Task.CompletedTask; // 304
            }

            container.Status = "exited";
            container.ExitCode = timeout == TimeSpan.Zero ? 137 : 143;
        }

        Emit(container, "die");
        return Task.CompletedTask;
    }

    public Task RemoveAsync(string id, CancellationToken cancellationToken)
    {
        _containers.TryRemove(id, out _);
        return Task.CompletedTask;
    }

    public Task<ContainerFacts> InspectAsync(string id, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var c = Find(id);
            return Task.FromResult(new ContainerFacts(c.Id, c.Status, c.Running, c.Running || c.Status == "created" ? null : c.ExitCode, false, null,
                c.StartedAt, null, "sha256:fake", [], c.NetworkMode == "bridge" ? new Dictionary<string, string> { ["bridge"] = "172.17.0.9" } : new Dictionary<string, string>()));
        }
    }

    public Task<IReadOnlyList<OwnedContainer>> ListOwnedAsync(string containerInstanceArn, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<OwnedContainer>>([.. _containers.Values
            .Where(c => c.Labels.GetValueOrDefault(ContainerSpec.InstanceLabel) == containerInstanceArn)
            .Select(c => new OwnedContainer(c.Id, c.Labels))]);

    public Task<IReadOnlyList<OwnedContainer>> ListTaskContainersAsync(string taskArn, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<OwnedContainer>>([.. _containers.Values
            .Where(c => c.Labels.GetValueOrDefault(ContainerSpec.TaskArnLabel) == taskArn)
            .Select(c => new OwnedContainer(c.Id, c.Labels))]);

    public Task<string?> VolumeDriverAsync(string name, CancellationToken cancellationToken) => Task.FromResult(_volumes.GetValueOrDefault(name));

    public Task CreateVolumeAsync(string name, string driver, IDictionary<string, string> options, IDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        _volumes[name] = driver;
        return Task.CompletedTask;
    }

    public Task RemoveVolumeAsync(string name, CancellationToken cancellationToken)
    {
        _volumes.TryRemove(name, out _);
        return Task.CompletedTask;
    }

    public async Task WatchAsync(string containerInstanceArn, Action<ContainerEvent> changed, CancellationToken cancellationToken, DateTimeOffset? since = null)
    {
        var events = Channel.CreateUnbounded<ContainerEvent>();
        _watchers[events] = 0;
        try
        {
            await foreach (var change in events.Reader.ReadAllAsync(cancellationToken))
            {
                changed(change);
            }
        }
        finally
        {
            _watchers.TryRemove(events, out _);
        }
    }

    public Task<LogStream> OpenLogsAsync(string id, bool tty, int? tail, bool follow, DateTimeOffset? since, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the fake engine keeps no logs");

    public void Dispose()
    {
    }

    private Container Find(string idOrName) =>
        _containers.TryGetValue(idOrName, out var byId) ? byId
            : _containers.Values.FirstOrDefault(c => c.Name == idOrName) ?? throw new DockerApiException(HttpStatusCode.NotFound, $"No such container: {idOrName}");

    private void Emit(Container container, string action)
    {
        var change = new ContainerEvent(container.Labels.GetValueOrDefault(ContainerSpec.TaskArnLabel, ""), container.Id, action, DateTimeOffset.UtcNow);
        foreach (var watcher in _watchers.Keys)
        {
            watcher.Writer.TryWrite(change);
        }
    }
}
