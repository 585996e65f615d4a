using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using EcsLite.Api.V1;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Agent.Docker;

/// <summary>The Docker engine refused a call; <see cref="ResponseBody"/> is its message.</summary>
public sealed class DockerApiException(HttpStatusCode statusCode, string responseBody)
    : Exception($"Docker API responded with status code={statusCode}, response={responseBody}")
{
    public HttpStatusCode StatusCode { get; } = statusCode;

    public string ResponseBody { get; } = responseBody;
}

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
    IReadOnlyDictionary<string, string> Addresses,
    int Pid = 0);

/// <summary>One Docker event about a container of a task ("die", "oom", "health_status: healthy", ...), with when Docker logged it.</summary>
public sealed record ContainerEvent(string TaskArn, string ContainerId, string Action, DateTimeOffset Time);

/// <summary>A container found by its labels.</summary>
public sealed record OwnedContainer(string ID, IReadOnlyDictionary<string, string> Labels);

/// <summary>
/// The agent's edge to the Docker engine: Engine API 1.41 over its unix socket, with HTTP/1.1 and
/// System.Text.Json (documents for answers, source-generated writing for the create body). A client
/// library that maps every API type by reflection cost the agent about 12 MB of memory once it ran a
/// task; these are the dozen calls the agent makes. Errors come out as the engine gave them
/// (<see cref="DockerApiException"/>, or the socket's); the task supervisor decides what they mean.
/// </summary>
public sealed class DockerRuntime(HttpClient http) : IContainerRuntime
{
    public const string DefaultEndpoint = "unix:///var/run/docker.sock";

    /// <param name="endpoint">DOCKER_HOST's form: unix:///path/to/docker.sock, or tcp://host:port.</param>
    /// <param name="observe">Told of every call's method, API path (after the version) and time to its response headers.</param>
    public static DockerRuntime Connect(string endpoint = DefaultEndpoint, Action<HttpMethod, string, TimeSpan>? observe = null)
    {
        var uri = new Uri(endpoint);
        HttpMessageHandler Timed(HttpMessageHandler inner) => observe is null ? inner : new TimingHandler(inner, observe);
        if (uri.Scheme is "tcp" or "http")
        {
            return new(new HttpClient(Timed(new SocketsHttpHandler())) { BaseAddress = new Uri($"http://{uri.Authority}/v1.41/"), Timeout = Timeout.InfiniteTimeSpan });
        }

        var socket = uri.LocalPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await unix.ConnectAsync(new UnixDomainSocketEndPoint(socket), cancellationToken);
                    return new NetworkStream(unix, ownsSocket: true);
                }
                catch
                {
                    unix.Dispose();
                    throw;
                }
            },
            // A connection per call, never reused: an engine shutting down closes its socket to new
            // connections at once but goes on serving old ones, and a container restarted through one of
            // those would be killed again by the same shutdown. (A local connect costs microseconds.)
            PooledConnectionLifetime = TimeSpan.Zero,
        };
        return new(new HttpClient(Timed(handler)) { BaseAddress = new Uri("http://docker/v1.41/"), Timeout = Timeout.InfiniteTimeSpan });
    }

    private sealed class TimingHandler(HttpMessageHandler inner, Action<HttpMethod, string, TimeSpan> observe) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                var path = request.RequestUri!.AbsolutePath;
                observe(request.Method, path.StartsWith("/v1.41/", StringComparison.Ordinal) ? path["/v1.41/".Length..] : path, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            }
        }
    }

    /// <summary>cgroupfs or systemd: how the engine names the cgroups it makes (and so a cgroup parent).</summary>
    public async Task<string> CgroupDriverAsync(CancellationToken cancellationToken) =>
        (await GetJsonAsync("info", cancellationToken)).RootElement.TryGetProperty("CgroupDriver", out var driver) ? driver.GetString() ?? "cgroupfs" : "cgroupfs";

    /// <summary>
    /// Pulls per ECS_IMAGE_PULL_BEHAVIOR: default pulls and falls back to a cached copy, always pulls,
    /// once and prefer-cached use a cached copy when there is one.
    /// </summary>
    public async Task PullAsync(string image, string behavior, CancellationToken cancellationToken, RegistryAuth? auth = null)
    {
        // An invalid reference ("invalid reference format", 400) fails here, before any pull.
        var cached = await ExistsAsync(image, cancellationToken);
        if (cached && behavior is "once" or "prefer-cached")
        {
            return;
        }

        try
        {
            var (name, tag) = SplitTag(image);
            using var response = await SendAsync(HttpMethod.Post, $"images/create?fromImage={Uri.EscapeDataString(name)}&tag={Uri.EscapeDataString(tag)}", null,
                HttpCompletionOption.ResponseHeadersRead, cancellationToken, auth is null ? null : ("X-Registry-Auth", RegistryAuthHeader(auth, name)));

            // Progress lines until the pull ends; a failure during the pull is a line with "error".
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (line.Length > 0 && JsonDocument.Parse(line).RootElement.TryGetProperty("error", out var error))
                {
                    throw new DockerApiException(HttpStatusCode.InternalServerError, error.GetString() ?? line);
                }
            }
        }
        catch (Exception e) when (cached && behavior == "default" && e is DockerApiException or HttpRequestException or IOException or JsonException)
        {
            // ECS's default: a failed pull falls back to the cached copy.
        }
    }

    public async Task<bool> ExistsAsync(string image, CancellationToken cancellationToken) =>
        await TryAsync(() => GetJsonAsync($"images/{PathPart(image)}/json", cancellationToken)) is not null;

    /// <summary>Every image a container on the host refers to, by the name it was created with and by id.</summary>
    public async Task<IReadOnlySet<string>> ImagesInUseAsync(CancellationToken cancellationToken)
    {
        using var list = await GetJsonAsync("containers/json?all=true", cancellationToken);
        return list.RootElement.EnumerateArray()
            .SelectMany(c => new[] { c.GetProperty("Image").GetString(), c.GetProperty("ImageID").GetString() })
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Removes an image (a tag that other tags share only loses the tag); false if it was already gone.</summary>
    public async Task<bool> RemoveImageAsync(string image, CancellationToken cancellationToken)
    {
        try
        {
            (await SendAsync(HttpMethod.Delete, $"images/{PathPart(image)}", null, HttpCompletionOption.ResponseContentRead, cancellationToken)).Dispose();
            return true;
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    public async Task<string> CreateAsync(CreateContainerParameters parameters, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(parameters, DockerJson.Default.CreateContainerParameters);
        var path = parameters.Name is { } name ? $"containers/create?name={Uri.EscapeDataString(name)}" : "containers/create";
        using var response = await SendAsync(HttpMethod.Post, path, body, HttpCompletionOption.ResponseContentRead, cancellationToken);
        using var created = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken));
        return created.RootElement.GetProperty("Id").GetString()!;
    }

    public async Task StartAsync(string id, CancellationToken cancellationToken) =>
        (await SendAsync(HttpMethod.Post, $"containers/{id}/start", null, HttpCompletionOption.ResponseContentRead, cancellationToken)).Dispose();

    /// <summary>SIGTERM, then SIGKILL once <paramref name="timeout"/> has passed.</summary>
    public async Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken) =>
        (await SendAsync(HttpMethod.Post, $"containers/{id}/stop?t={(int)Math.Ceiling(timeout.TotalSeconds)}", null, HttpCompletionOption.ResponseContentRead, cancellationToken)).Dispose();

    public async Task RemoveAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            (await SendAsync(HttpMethod.Delete, $"containers/{id}?force=true&v=true", null, HttpCompletionOption.ResponseContentRead, cancellationToken)).Dispose();
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }

    public async Task<ContainerFacts> InspectAsync(string id, CancellationToken cancellationToken)
    {
        using var inspected = await GetJsonAsync($"containers/{id}/json", cancellationToken);
        var root = inspected.RootElement;
        var state = root.GetProperty("State");
        var bindings = new List<(int, int, string, string)>();
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root.TryGetProperty("NetworkSettings", out var network) && network.ValueKind == JsonValueKind.Object)
        {
            if (network.TryGetProperty("Ports", out var ports) && ports.ValueKind == JsonValueKind.Object)
            {
                foreach (var port in ports.EnumerateObject())
                {
                    var parts = port.Name.Split('/');
                    foreach (var binding in port.Value.ValueKind == JsonValueKind.Array ? port.Value.EnumerateArray() : default)
                    {
                        if (int.TryParse(Text(binding, "HostPort"), CultureInfo.InvariantCulture, out var hostPort))
                        {
                            bindings.Add((int.Parse(parts[0], CultureInfo.InvariantCulture), hostPort, parts.Length > 1 ? parts[1] : "tcp", Text(binding, "HostIp") ?? ""));
                        }
                    }
                }
            }

            if (network.TryGetProperty("Networks", out var networks) && networks.ValueKind == JsonValueKind.Object)
            {
                foreach (var attached in networks.EnumerateObject())
                {
                    if (Text(attached.Value, "IPAddress") is { Length: > 0 } address)
                    {
                        addresses[attached.Name] = address;
                    }
                }
            }
        }

        var status = Text(state, "Status") ?? "";
        var running = state.GetProperty("Running").GetBoolean();
        return new ContainerFacts(
            root.GetProperty("Id").GetString()!,
            status,
            running,
            running || status == "created" ? null : state.GetProperty("ExitCode").GetInt32(),
            state.TryGetProperty("OOMKilled", out var oom) && oom.GetBoolean(),
            state.TryGetProperty("Health", out var health) && health.ValueKind == JsonValueKind.Object ? Text(health, "Status") : null,
            Time(Text(state, "StartedAt")),
            Time(Text(state, "FinishedAt")),
            Text(root, "Image") ?? "",
            bindings,
            addresses,
            running && state.TryGetProperty("Pid", out var pid) && pid.TryGetInt32(out var number) ? number : 0);
    }

    /// <summary>The containers this container instance owns, found by their labels (after a restart too).</summary>
    public async Task<IReadOnlyList<OwnedContainer>> ListOwnedAsync(string containerInstanceArn, CancellationToken cancellationToken)
    {
        using var list = await GetJsonAsync($"containers/json?all=true&filters={Filters(("label", $"{ContainerSpec.InstanceLabel}={containerInstanceArn}"))}", cancellationToken);
        return [.. list.RootElement.EnumerateArray().Select(Owned)];
    }

    private static OwnedContainer Owned(JsonElement container) => new(
        container.GetProperty("Id").GetString()!,
        container.TryGetProperty("Labels", out var labels) && labels.ValueKind == JsonValueKind.Object
            ? labels.EnumerateObject().ToDictionary(l => l.Name, l => l.Value.GetString() ?? "", StringComparer.Ordinal)
            : new Dictionary<string, string>());

    /// <summary>The containers of one task (every container it ever had here, its pause container too).</summary>
    public async Task<IReadOnlyList<OwnedContainer>> ListTaskContainersAsync(string taskArn, CancellationToken cancellationToken)
    {
        using var list = await GetJsonAsync($"containers/json?all=true&filters={Filters(("label", $"{ContainerSpec.TaskArnLabel}={taskArn}"))}", cancellationToken);
        return [.. list.RootElement.EnumerateArray().Select(Owned)];
    }

    /// <summary>docker import: an image from a tar of its root file system, with Dockerfile-style changes (CMD, LABEL, ...).</summary>
    public async Task ImportImageAsync(string repository, string tag, byte[] rootFileSystemTar, IEnumerable<string> changes, CancellationToken cancellationToken)
    {
        var query = new StringBuilder($"images/create?fromSrc=-&repo={Uri.EscapeDataString(repository)}&tag={Uri.EscapeDataString(tag)}");
        foreach (var change in changes)
        {
            query.Append("&changes=").Append(Uri.EscapeDataString(change));
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, query.ToString()) { Content = new ByteArrayContent(rootFileSystemTar) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-tar");
        using var response = await http.SendAsync(request, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode || body.Contains("\"error\"", StringComparison.Ordinal))
        {
            throw new DockerApiException(response.IsSuccessStatusCode ? HttpStatusCode.InternalServerError : response.StatusCode, body.Trim());
        }
    }

    /// <summary>The driver of a Docker volume, or null when there is no volume of that name.</summary>
    public async Task<string?> VolumeDriverAsync(string name, CancellationToken cancellationToken)
    {
        using var volume = await TryAsync(() => GetJsonAsync($"volumes/{name}", cancellationToken));
        return volume is null ? null : Text(volume.RootElement, "Driver");
    }

    public async Task CreateVolumeAsync(string name, string driver, IDictionary<string, string> options, IDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var body = Json(writer =>
        {
            writer.WriteString("Name", name);
            writer.WriteString("Driver", driver);
            WriteMap(writer, "DriverOpts", options);
            WriteMap(writer, "Labels", labels);
        });
        (await SendAsync(HttpMethod.Post, "volumes/create", body, HttpCompletionOption.ResponseContentRead, cancellationToken)).Dispose();
    }

    public async Task RemoveVolumeAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            (await SendAsync(HttpMethod.Delete, $"volumes/{name}?force=true", null, HttpCompletionOption.ResponseContentRead, cancellationToken)).Dispose();
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>
    /// Docker's events for this instance's containers (start, die, oom, health_status, ...) as they
    /// happen (and, with <paramref name="since"/>, those Docker still holds from that moment on), each
    /// passed on with the container's task ARN; returns when the stream ends.
    /// </summary>
    public async Task WatchAsync(string containerInstanceArn, Action<ContainerEvent> changed, CancellationToken cancellationToken, DateTimeOffset? since = null)
    {
        var from = since is { } at ? $"&since={Timestamp(at)}" : "";
        using var response = await SendAsync(HttpMethod.Get, $"events?filters={Filters(("type", "container"), ("label", $"{ContainerSpec.InstanceLabel}={containerInstanceArn}"))}{from}",
            null, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            using var message = JsonDocument.Parse(line);
            if (message.RootElement.TryGetProperty("Actor", out var actor) && actor.TryGetProperty("Attributes", out var attributes)
                && Text(attributes, ContainerSpec.TaskArnLabel) is { } taskArn)
            {
                var time = message.RootElement.TryGetProperty("timeNano", out var nanos) && nanos.TryGetInt64(out var n)
                    ? DateTimeOffset.UnixEpoch.AddTicks(n / 100)
                    : DateTimeOffset.UtcNow;
                changed(new ContainerEvent(taskArn, Text(message.RootElement, "id") ?? "", Text(message.RootElement, "Action") ?? "", time));
            }
        }
    }

    /// <summary>
    /// Opens a container's logs in Docker (which keeps them size-bounded); once this returns, a follow
    /// is in place, so no line written from now on is missed. Read the lines with <see cref="ReadLogsAsync"/>.
    /// </summary>
    public async Task<LogStream> OpenLogsAsync(string id, bool tty, int? tail, bool follow, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var query = new StringBuilder($"containers/{id}/logs?stdout=true&stderr=true&timestamps=true&follow={(follow ? "true" : "false")}");
        query.Append(CultureInfo.InvariantCulture, $"&tail={(tail is { } lines ? Math.Max(lines, 0).ToString(CultureInfo.InvariantCulture) : "all")}");
        if (since is { } from)
        {
            query.Append(CultureInfo.InvariantCulture, $"&since={Timestamp(from)}");
        }

        var response = await SendAsync(HttpMethod.Get, query.ToString(), null, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        return new LogStream(response, await response.Content.ReadAsStreamAsync(cancellationToken), tty);
    }

    /// <summary>An open log stream's lines (the caller disposes the stream) in batches of whatever has arrived, oldest first; with follow, until the container stops.</summary>
    public static async IAsyncEnumerable<IReadOnlyList<LogEvent>> ReadLogsAsync(LogStream stream, [EnumeratorCancellation] CancellationToken cancellationToken)
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

    public void Dispose() => http.Dispose();

    /// <summary>
    /// Splits Docker's output into lines ("&lt;RFC 3339 time&gt; &lt;text&gt;"), per stream. Without a TTY
    /// the output is multiplexed: frames of an 8-byte header (stream 1 stdout, 2 stderr; big-endian length) and payload.
    /// </summary>
    private static async Task ReadLinesAsync(LogStream stream, ChannelWriter<LogEvent> events, CancellationToken cancellationToken)
    {
        var partial = new Dictionary<int, StringBuilder>();
        var header = new byte[8];
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int target, length;
                if (stream.Tty)
                {
                    (target, length) = (1, await stream.Body.ReadAsync(buffer, cancellationToken));
                    if (length == 0)
                    {
                        break;
                    }
                }
                else
                {
                    if (!await ReadExactlyAsync(stream.Body, header, cancellationToken))
                    {
                        break;
                    }

                    (target, length) = (header[0], (header[4] << 24) | (header[5] << 16) | (header[6] << 8) | header[7]);
                    if (length > buffer.Length)
                    {
                        buffer = new byte[length];
                    }

                    if (!await ReadExactlyAsync(stream.Body, buffer.AsMemory(0, length), cancellationToken))
                    {
                        break;
                    }
                }

                var line = partial.TryGetValue(target, out var pending) ? pending : partial[target] = new StringBuilder();
                foreach (var c in Encoding.UTF8.GetString(buffer, 0, length))
                {
                    if (c != '\n')
                    {
                        line.Append(c);
                        continue;
                    }

                    await events.WriteAsync(LogLine(line.ToString(), target), cancellationToken);
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

    private static async Task<bool> ReadExactlyAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await stream.ReadExactlyAsync(buffer, cancellationToken);
            return true;
        }
        catch (EndOfStreamException)
        {
            return false;
        }
    }

    private static LogEvent LogLine(string line, int target)
    {
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        var time = space > 0 ? Rfc3339(line[..space]) : null;
        return new LogEvent
        {
            Timestamp = time,
            Message = (time is null ? line : line[(space + 1)..]).TrimEnd('\r'),
            Source = target == 2 ? "stderr" : "stdout",
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

    /// <summary>
    /// The Engine API's X-Registry-Auth: base64url of {"username","password","serveraddress"}, the server
    /// being the image's registry (its first part, when that has a dot, a colon or is localhost).
    /// </summary>
    public static string RegistryAuthHeader(RegistryAuth auth, string image)
    {
        var first = image.Split('/')[0];
        var server = image.Contains('/', StringComparison.Ordinal) && (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost")
            ? first : "docker.io";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("username", auth.Username);
            writer.WriteString("password", auth.Password);
            writer.WriteString("serveraddress", server);
            writer.WriteEndObject();
        }

        return Convert.ToBase64String(buffer.ToArray()).Replace('+', '-').Replace('/', '_');
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, byte[]? json, HttpCompletionOption completion, CancellationToken cancellationToken,
        (string Name, string Value)? header = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (header is { } h)
        {
            request.Headers.TryAddWithoutValidation(h.Name, h.Value);
        }

        if (json is not null)
        {
            request.Content = new ByteArrayContent(json);
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        }

        var response = await http.SendAsync(request, completion, cancellationToken);
        if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.NotModified)
        {
            return response;
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            var message = body;
            try
            {
                using var error = JsonDocument.Parse(body);
                message = Text(error.RootElement, "message") ?? body;
            }
            catch (JsonException)
            {
            }

            throw new DockerApiException(response.StatusCode, message);
        }
    }

    private async Task<JsonDocument> GetJsonAsync(string path, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Get, path, null, HttpCompletionOption.ResponseContentRead, cancellationToken);
        return await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), cancellationToken: cancellationToken);
    }

    private static async Task<JsonDocument?> TryAsync(Func<Task<JsonDocument>> get)
    {
        try
        {
            return await get();
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>An image reference in a path: '#', '?', '%' and spaces escaped; '/', ':' and '@' kept, as the engine routes them.</summary>
    private static string PathPart(string reference) =>
        Uri.EscapeDataString(reference).Replace("%2F", "/", StringComparison.Ordinal).Replace("%3A", ":", StringComparison.Ordinal).Replace("%40", "@", StringComparison.Ordinal);

    /// <summary>Docker's filters query parameter: a JSON map of name to list of values.</summary>
    private static string Filters(params (string Name, string Value)[] filters) => Uri.EscapeDataString(Encoding.UTF8.GetString(Json(writer =>
    {
        foreach (var (name, value) in filters)
        {
            writer.WriteStartArray(name);
            writer.WriteStringValue(value);
            writer.WriteEndArray();
        }
    })));

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static void WriteMap(Utf8JsonWriter writer, string name, IDictionary<string, string> values)
    {
        writer.WriteStartObject(name);
        foreach (var (key, value) in values)
        {
            writer.WriteString(key, value);
        }

        writer.WriteEndObject();
    }

    private static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>A moment as Docker's since parameters read it: seconds.nanoseconds since the epoch.</summary>
    private static string Timestamp(DateTimeOffset time) =>
        string.Create(CultureInfo.InvariantCulture, $"{time.ToUnixTimeSeconds()}.{time.UtcTicks % TimeSpan.TicksPerSecond * 100:D9}");

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

/// <summary>An open stream of a container's output; TTY output is raw, otherwise multiplexed.</summary>
public sealed class LogStream(HttpResponseMessage response, Stream body, bool tty) : IDisposable
{
    public Stream Body { get; } = body;

    public bool Tty { get; } = tty;

    public void Dispose()
    {
        Body.Dispose();
        response.Dispose();
    }
}
