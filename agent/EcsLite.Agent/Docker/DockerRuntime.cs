using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using EcsLite.Api.V1;
using Google.Protobuf.WellKnownTypes;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace EcsLite.Agent.Docker;

/// <summary>An image could not be pulled; the message starts as ECS's does (CannotPullContainerError:).</summary>
public sealed class CannotPullContainerException(string image, string detail)
    : Exception($"CannotPullContainerError: pull image {image}: {detail}");

/// <summary>What the agent needs to know of a container, read from Docker.</summary>
public sealed record ContainerFacts(
    string Id,
    string Status,
    bool Running,
    int? ExitCode,
    bool OomKilled,
    string? Health,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    string ImageId,
    IReadOnlyList<(int ContainerPort, int HostPort, string Protocol, string BindIp)> Bindings,
    IReadOnlyDictionary<string, string> Addresses);

/// <summary>
/// The local Docker engine (unix socket, engine API 1.41 or later) through Docker.DotNet: the only place
/// the agent talks to Docker. Image pulls follow ECS_IMAGE_PULL_BEHAVIOR.
/// </summary>
public sealed class DockerRuntime(IDockerClient client) : IDisposable
{
    public const string DefaultEndpoint = "unix:///var/run/docker.sock";

    public static DockerRuntime Connect(string endpoint = DefaultEndpoint) =>
        new(new DockerClientConfiguration(new Uri(endpoint)).CreateClient(new System.Version(1, 41)));

    /// <summary>cgroupfs or systemd: how the engine names the cgroups it makes (and so a cgroup parent).</summary>
    public async Task<string> CgroupDriverAsync(CancellationToken cancellationToken) =>
        (await client.System.GetSystemInfoAsync(cancellationToken)).CgroupDriver ?? "cgroupfs";

    public async Task<string> VersionAsync(CancellationToken cancellationToken) =>
        (await client.System.GetVersionAsync(cancellationToken)).Version;

    /// <summary>
    /// Pulls per ECS_IMAGE_PULL_BEHAVIOR: default pulls and falls back to a cached copy, always pulls,
    /// once and prefer-cached use a cached copy when there is one.
    /// </summary>
    public async Task PullAsync(string image, string behavior, CancellationToken cancellationToken)
    {
        var cached = await ExistsAsync(image, cancellationToken);
        if (cached && behavior is "once" or "prefer-cached")
        {
            return;
        }

        try
        {
            var (name, tag) = SplitTag(image);
            await client.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = name, Tag = tag }, null, new Progress<JSONMessage>(), cancellationToken);
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException)
        {
            if (cached && behavior == "default")
            {
                return;
            }

            throw new CannotPullContainerException(image, e is DockerApiException api ? api.ResponseBody.Trim() : e.Message);
        }
    }

    public async Task<bool> ExistsAsync(string image, CancellationToken cancellationToken)
    {
        try
        {
            await client.Images.InspectImageAsync(image, cancellationToken);
            return true;
        }
        catch (DockerImageNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Every image a container on the host refers to, by the name it was created with and by id.</summary>
    public async Task<IReadOnlySet<string>> ImagesInUseAsync(CancellationToken cancellationToken)
    {
        var containers = await client.Containers.ListContainersAsync(new ContainersListParameters { All = true }, cancellationToken);
        return containers.SelectMany(c => new[] { c.Image, c.ImageID }).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Removes an image (a tag that other tags share only loses the tag); false if it was already gone.</summary>
    public async Task<bool> RemoveImageAsync(string image, CancellationToken cancellationToken)
    {
        try
        {
            await client.Images.DeleteImageAsync(image, new ImageDeleteParameters(), cancellationToken);
            return true;
        }
        catch (DockerImageNotFoundException)
        {
            return false;
        }
    }

    public async Task<string> CreateAsync(CreateContainerParameters parameters, CancellationToken cancellationToken) =>
        (await client.Containers.CreateContainerAsync(parameters, cancellationToken)).ID;

    public Task StartAsync(string id, CancellationToken cancellationToken) =>
        client.Containers.StartContainerAsync(id, new ContainerStartParameters(), cancellationToken);

    /// <summary>SIGTERM, then SIGKILL once <paramref name="timeout"/> has passed.</summary>
    public Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken) =>
        client.Containers.StopContainerAsync(id, new ContainerStopParameters { WaitBeforeKillSeconds = (uint)Math.Ceiling(timeout.TotalSeconds) }, cancellationToken);

    public Task RemoveAsync(string id, CancellationToken cancellationToken) =>
        client.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken);

    public async Task<ContainerFacts> InspectAsync(string id, CancellationToken cancellationToken)
    {
        var inspected = await client.Containers.InspectContainerAsync(id, cancellationToken);
        var state = inspected.State;
        var bindings = new List<(int, int, string, string)>();
        foreach (var (key, ports) in inspected.NetworkSettings?.Ports ?? new Dictionary<string, IList<PortBinding>>())
        {
            var parts = key.Split('/');
            foreach (var port in ports ?? [])
            {
                if (int.TryParse(port.HostPort, CultureInfo.InvariantCulture, out var hostPort))
                {
                    bindings.Add((int.Parse(parts[0], CultureInfo.InvariantCulture), hostPort, parts.Length > 1 ? parts[1] : "tcp", port.HostIP));
                }
            }
        }

        return new ContainerFacts(
            inspected.ID,
            state.Status,
            state.Running,
            state.Running || state.Status == "created" ? null : (int)state.ExitCode,
            state.OOMKilled,
            state.Health?.Status,
            Time(state.StartedAt),
            Time(state.FinishedAt),
            inspected.Image,
            bindings,
            (inspected.NetworkSettings?.Networks ?? new Dictionary<string, EndpointSettings>())
                .Where(n => !string.IsNullOrEmpty(n.Value?.IPAddress)).ToDictionary(n => n.Key, n => n.Value.IPAddress, StringComparer.Ordinal));
    }

    /// <summary>The containers this container instance owns, found by their labels (after a restart too).</summary>
    public Task<IList<ContainerListResponse>> ListOwnedAsync(string containerInstanceArn, CancellationToken cancellationToken) =>
        client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool> { [$"{ContainerSpec.InstanceLabel}={containerInstanceArn}"] = true },
            },
        }, cancellationToken);

    /// <summary>The driver of a Docker volume, or null when there is no volume of that name.</summary>
    public async Task<string?> VolumeDriverAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return (await client.Volumes.InspectAsync(name, cancellationToken)).Driver;
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public Task CreateVolumeAsync(string name, string driver, IDictionary<string, string> options, IDictionary<string, string> labels, CancellationToken cancellationToken) =>
        client.Volumes.CreateAsync(new VolumesCreateParameters { Name = name, Driver = driver, DriverOpts = options, Labels = labels }, cancellationToken);

    public async Task RemoveVolumeAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await client.Volumes.RemoveAsync(name, force: true, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>A bridge network of the task's own (awsvpc), labelled with the task.</summary>
    public async Task EnsureNetworkAsync(string name, string taskArn, CancellationToken cancellationToken)
    {
        var existing = await client.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["name"] = new Dictionary<string, bool> { [name] = true } },
        }, cancellationToken);
        if (existing.All(n => n.Name != name))
        {
            await client.Networks.CreateNetworkAsync(new NetworksCreateParameters
            {
                Name = name,
                Driver = "bridge",
                Labels = new Dictionary<string, string> { [ContainerSpec.TaskArnLabel] = taskArn },
            }, cancellationToken);
        }
    }

    /// <summary>Disconnects the given containers (they may stay, stopped) and removes the network.</summary>
    public async Task RemoveNetworkAsync(string name, IEnumerable<string> containers, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var id in containers)
            {
                await client.Networks.DisconnectNetworkAsync(name, new NetworkDisconnectParameters { Container = id, Force = true }, cancellationToken);
            }

            await client.Networks.DeleteNetworkAsync(name, cancellationToken);
        }
        catch (DockerNetworkNotFoundException)
        {
        }
    }

    /// <summary>
    /// Docker's events for this instance's containers (start, die, oom, health_status, ...) as they
    /// happen, each passed on with the container's task ARN; returns when the stream ends.
    /// </summary>
    public Task WatchAsync(string containerInstanceArn, Action<string> taskChanged, CancellationToken cancellationToken) =>
        client.System.MonitorEventsAsync(new ContainerEventsParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["type"] = new Dictionary<string, bool> { ["container"] = true },
                ["label"] = new Dictionary<string, bool> { [$"{ContainerSpec.InstanceLabel}={containerInstanceArn}"] = true },
            },
        }, new Inline<Message>(message =>
        {
            if (message.Actor?.Attributes?.TryGetValue(ContainerSpec.TaskArnLabel, out var taskArn) == true)
            {
                taskChanged(taskArn);
            }
        }), cancellationToken);

    /// <summary>
    /// Opens a container's logs in Docker (which keeps them size-bounded); once this returns, a follow
    /// is in place, so no line written from now on is missed. Read the lines with <see cref="ReadLogsAsync"/>.
    /// </summary>
    public Task<MultiplexedStream> OpenLogsAsync(string id, bool tty, int? tail, bool follow, DateTimeOffset? since, CancellationToken cancellationToken) =>
        client.Containers.GetContainerLogsAsync(id, tty, new ContainerLogsParameters
        {
            ShowStdout = true,
            ShowStderr = true,
            Timestamps = true,
            Follow = follow,
            Tail = tail is { } lines ? Math.Max(lines, 0).ToString(CultureInfo.InvariantCulture) : "all",
            Since = since is { } from ? (from.ToUnixTimeMilliseconds() / 1000.0).ToString("0.000", CultureInfo.InvariantCulture) : null,
        }, cancellationToken);

    /// <summary>An open log stream's lines (the caller disposes the stream) in batches of whatever has arrived, oldest first; with follow, until the container stops.</summary>
    public static async IAsyncEnumerable<IReadOnlyList<LogEvent>> ReadLogsAsync(MultiplexedStream stream, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var events = Channel.CreateBounded<LogEvent>(new BoundedChannelOptions(1024) { SingleReader = true, SingleWriter = true });
        var reading = ReadLinesAsync(stream, events.Writer, cancellationToken);
        while (await events.Reader.WaitToReadAsync(cancellationToken))
        {
            var batch = new List<LogEvent>();
            while (batch.Count < 500 && events.Reader.TryRead(out var logEvent))
            {
                batch.Add(logEvent);
            }

            yield return batch;
        }

        await reading;
    }

    /// <summary>Splits Docker's frames into lines ("&lt;RFC 3339 time&gt; &lt;text&gt;"), per stream.</summary>
    private static async Task ReadLinesAsync(MultiplexedStream stream, ChannelWriter<LogEvent> events, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        var partial = new Dictionary<MultiplexedStream.TargetStream, StringBuilder>();
        try
        {
            while (true)
            {
                var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, cancellationToken);
                if (read.EOF)
                {
                    break;
                }

                var text = Encoding.UTF8.GetString(buffer, 0, read.Count);
                var line = partial.TryGetValue(read.Target, out var pending) ? pending : partial[read.Target] = new StringBuilder();
                foreach (var c in text)
                {
                    if (c != '\n')
                    {
                        line.Append(c);
                        continue;
                    }

                    await events.WriteAsync(LogLine(line.ToString(), read.Target), cancellationToken);
                    line.Clear();
                }
            }

            foreach (var (target, rest) in partial.Where(p => p.Value.Length > 0))
            {
                await events.WriteAsync(LogLine(rest.ToString(), target), cancellationToken);
            }

            events.TryComplete();
        }
        catch (Exception e)
        {
            events.TryComplete(e);
        }
    }

    private static LogEvent LogLine(string line, MultiplexedStream.TargetStream target)
    {
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        var time = space > 0 ? Rfc3339(line[..space]) : null;
        return new LogEvent
        {
            Timestamp = time,
            Message = (time is null ? line : line[(space + 1)..]).TrimEnd('\r'),
            Source = target == MultiplexedStream.TargetStream.StandardError ? "stderr" : "stdout",
        };
    }

    /// <summary>Docker's timestamps have nanoseconds, more than DateTimeOffset parses.</summary>
    private static Timestamp? Rfc3339(string text)
    {
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        var seconds = dot > 0 ? text[..dot] + "Z" : text;
        if (!DateTimeOffset.TryParseExact(seconds, "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var whole))
        {
            return null;
        }

        var fraction = dot > 0 ? new string([.. text[(dot + 1)..].TakeWhile(char.IsAsciiDigit)]) : "";
        var nanos = fraction.Length == 0 ? 0 : int.Parse(fraction.PadRight(9, '0')[..9], CultureInfo.InvariantCulture);
        return new Timestamp { Seconds = whole.ToUnixTimeSeconds(), Nanos = nanos };
    }

    public void Dispose() => client.Dispose();

    /// <summary>Reports on the reading thread, in order (Progress would post each to the thread pool).</summary>
    private sealed class Inline<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    private static (string Name, string Tag) SplitTag(string image)
    {
        var at = image.IndexOf('@');
        if (at >= 0)
        {
            return (image[..at], image[(at + 1)..]);
        }

        var colon = image.LastIndexOf(':');
        return colon > image.LastIndexOf('/') ? (image[..colon], image[(colon + 1)..]) : (image, "latest");
    }

    private static DateTimeOffset? Time(string? text) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time) && time.Year > 1
            ? time
            : null;
}
