using System.Globalization;
using System.Text.Json;

namespace EcsLite.Agent.Core;

/// <summary>
/// The agent's settings, named as the ECS agent names them where the meaning is the same.
/// Sources, later ones winning: defaults, the config file (ECS's ecs.config format: KEY=VALUE lines),
/// the environment, the command line (--coordinator URL (repeatable), --cluster, --data-dir).
/// </summary>
public sealed record AgentSettings
{
    public static readonly int[] DefaultReservedPorts = [22, 2375, 2376, 51678, 51679];

    /// <summary>
    /// ECSLITE_COORDINATOR (comma-separated) or --coordinator: tried in turn until one answers. TLS
    /// (https://, the default scheme); http:// only to this host's loopback, for a coordinator in its insecure test mode.
    /// </summary>
    public IReadOnlyList<Uri> Coordinators { get; init; } = [new("https://127.0.0.1:7430")];

    /// <summary>
    /// ECSLITE_JOIN_TOKEN or --join-token: presented once, to get this host's client certificate
    /// (kept in DATA_DIR/tls); not needed after that. Never logged.
    /// </summary>
    public string? JoinToken { get; init; }

    /// <summary>ECS_CLUSTER.</summary>
    public string Cluster { get; init; } = "default";

    /// <summary>ECS_DATADIR: where the agent keeps its identity and, later, task state.</summary>
    public string DataDir { get; init; } = "/var/lib/ecslite/agent";

    /// <summary>ECS_RESERVED_MEMORY: MiB kept back from tasks.</summary>
    public int ReservedMemoryMiB { get; init; }

    /// <summary>ECS's default reserved ports plus ECS_RESERVED_PORTS.</summary>
    public IReadOnlyList<int> ReservedPorts { get; init; } = DefaultReservedPorts;

    /// <summary>The TCP ports no task may have: <see cref="ReservedPorts"/> and the metrics endpoint's.</summary>
    public IEnumerable<int> HostReservedPorts => MetricsListen is { } metrics ? ReservedPorts.Union([metrics.Port]).Order() : ReservedPorts;

    /// <summary>ECS_RESERVED_PORTS_UDP.</summary>
    public IReadOnlyList<int> ReservedPortsUdp { get; init; } = [];

    /// <summary>ECS_INSTANCE_ATTRIBUTES: custom attributes as a JSON object.</summary>
    public IReadOnlyDictionary<string, string> InstanceAttributes { get; init; } = new Dictionary<string, string>();

    /// <summary>ECS_DISABLE_PRIVILEGED: refuse privileged containers (and do not offer the capability, so none are placed here).</summary>
    public bool PrivilegedDisabled { get; init; }

    /// <summary>
    /// ECSLITE_ALLOWED_HOST_PATHS: the host directories tasks may bind-mount or use as devices
    /// (comma-separated absolute paths; empty: none). Unset, every path is allowed, as on ECS.
    /// </summary>
    public IReadOnlyList<string>? AllowedHostPaths { get; init; }

    /// <summary>ECS_LOGLEVEL: debug, info, warn, error or crit.</summary>
    public string LogLevel { get; init; } = "info";

    /// <summary>ECS_CONTAINER_STOP_TIMEOUT: SIGTERM to SIGKILL when a task stops.</summary>
    public TimeSpan ContainerStopTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION: how long a stopped task's containers are kept.</summary>
    public TimeSpan TaskCleanupWaitDuration { get; init; } = TimeSpan.FromHours(3);

    /// <summary>ECS_IMAGE_PULL_BEHAVIOR: default, always, once or prefer-cached.</summary>
    public string ImagePullBehavior { get; init; } = "default";

    /// <summary>ECS_DISABLE_IMAGE_CLEANUP: keep every image the agent pulled.</summary>
    public bool ImageCleanupDisabled { get; init; }

    /// <summary>ECS_IMAGE_CLEANUP_INTERVAL: how often unused images are looked for.</summary>
    public TimeSpan ImageCleanupInterval { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>ECS_IMAGE_MINIMUM_CLEANUP_AGE: how long an image must have been unused before it goes.</summary>
    public TimeSpan ImageMinimumCleanupAge { get; init; } = TimeSpan.FromHours(1);

    /// <summary>ECS_NUM_IMAGES_DELETE_PER_CYCLE: at most this many images go per cleanup.</summary>
    public int ImagesDeletedPerCycle { get; init; } = 5;

    /// <summary>ECS_IMAGE_PULL_TIMEOUT: how long one pull may take before it is tried again (ECS: 2h).</summary>
    public TimeSpan ImagePullTimeout { get; init; } = TimeSpan.FromHours(2);

    /// <summary>ECS_CONTAINER_CREATE_TIMEOUT: how long the engine may take to create a container (ECS: 4m).</summary>
    public TimeSpan ContainerCreateTimeout { get; init; } = TimeSpan.FromMinutes(4);

    /// <summary>ECS_CONTAINER_START_TIMEOUT: how long the engine may take to start a container (ECS: 3m).</summary>
    public TimeSpan ContainerStartTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>DOCKER_HOST: the engine's API endpoint (unix:///var/run/docker.sock).</summary>
    public string DockerEndpoint { get; init; } = "unix:///var/run/docker.sock";

    /// <summary>ECSLITE_HOST_PORT_ADDRESS: the host address tasks' ports are published on (ECS: all addresses).</summary>
    public string HostPortAddress { get; init; } = "0.0.0.0";

    /// <summary>The default of ECSLITE_METRICS_LISTEN: beside the ECS agent's own ports (51678, 51679), on loopback only.</summary>
    public static readonly System.Net.IPEndPoint DefaultMetricsListen = new(System.Net.IPAddress.Loopback, 51680);

    /// <summary>
    /// ECSLITE_METRICS_LISTEN: where Prometheus's text format is served (GET /metrics), as ADDRESS:PORT;
    /// "off" for nowhere. Its port is reserved from tasks (<see cref="HostReservedPorts"/>).
    /// </summary>
    public System.Net.IPEndPoint? MetricsListen { get; init; } = DefaultMetricsListen;

    private static readonly string[] LogLevels = ["debug", "info", "warn", "error", "crit"];
    private static readonly string[] PullBehaviors = ["default", "always", "once", "prefer-cached"];

    /// <summary>Builds the settings; a bad value is a <see cref="FormatException"/> naming the variable.</summary>
    /// <param name="file">KEY=VALUE pairs from the config file.</param>
    /// <param name="environment">The process environment.</param>
    /// <param name="args">Command-line arguments.</param>
    public static AgentSettings From(IReadOnlyDictionary<string, string> file, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>(file, StringComparer.Ordinal);
        foreach (var (key, value) in environment)
        {
            if (key.StartsWith("ECS_", StringComparison.Ordinal) || key.StartsWith("ECSLITE_", StringComparison.Ordinal) || key == "DOCKER_HOST")
            {
                values[key] = value;
            }
        }

        var coordinators = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new FormatException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--coordinator":
                    coordinators.Add(Value());
                    break;
                case "--cluster":
                    values["ECS_CLUSTER"] = Value();
                    break;
                case "--join-token":
                    values["ECSLITE_JOIN_TOKEN"] = Value();
                    break;
                case "--data-dir":
                    values["ECS_DATADIR"] = Value();
                    break;
                case "--config":
                    i++;
                    break;
                default:
                    throw new FormatException($"unknown option '{args[i]}' (see --help)");
            }
        }

        if (coordinators.Count > 0)
        {
            values["ECSLITE_COORDINATOR"] = string.Join(',', coordinators);
        }

        var settings = new AgentSettings();
        if (values.TryGetValue("ECSLITE_COORDINATOR", out var urls))
        {
            settings = settings with { Coordinators = [.. urls.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(CoordinatorUri)] };
        }

        if (values.TryGetValue("ECSLITE_JOIN_TOKEN", out var token) && token.Length > 0)
        {
            try
            {
                settings = settings with { JoinToken = Security.JoinToken.Parse(token).ToString() };
            }
            catch (FormatException e)
            {
                throw new FormatException($"ECSLITE_JOIN_TOKEN: {e.Message}");
            }
        }

        if (values.TryGetValue("ECS_CLUSTER", out var cluster))
        {
            settings = settings with { Cluster = IsClusterName(cluster) ? cluster : throw new FormatException($"ECS_CLUSTER '{cluster}' is not a cluster name (1-255 letters, digits, _ and -)") };
        }

        if (values.TryGetValue("ECS_DATADIR", out var dataDir))
        {
            settings = settings with { DataDir = dataDir.Length > 0 ? dataDir : throw new FormatException("ECS_DATADIR is empty") };
        }

        if (values.TryGetValue("ECS_RESERVED_MEMORY", out var memory))
        {
            settings = settings with { ReservedMemoryMiB = int.TryParse(memory, CultureInfo.InvariantCulture, out var mib) && mib >= 0 ? mib : throw new FormatException($"ECS_RESERVED_MEMORY '{memory}' is not a number of MiB") };
        }

        if (values.TryGetValue("ECS_RESERVED_PORTS", out var ports))
        {
            settings = settings with { ReservedPorts = [.. DefaultReservedPorts.Union(Ports("ECS_RESERVED_PORTS", ports)).Order()] };
        }

        if (values.TryGetValue("ECS_RESERVED_PORTS_UDP", out var udp))
        {
            settings = settings with { ReservedPortsUdp = [.. Ports("ECS_RESERVED_PORTS_UDP", udp).Distinct().Order()] };
        }

        if (values.TryGetValue("ECS_INSTANCE_ATTRIBUTES", out var attributes))
        {
            settings = settings with { InstanceAttributes = Attributes(attributes) };
        }

        if (values.TryGetValue("ECS_LOGLEVEL", out var level))
        {
            settings = settings with { LogLevel = LogLevels.Contains(level.ToLowerInvariant()) ? level.ToLowerInvariant() : throw new FormatException($"ECS_LOGLEVEL '{level}' is not one of {string.Join(", ", LogLevels)}") };
        }

        if (values.TryGetValue("ECS_CONTAINER_STOP_TIMEOUT", out var stop))
        {
            settings = settings with { ContainerStopTimeout = GoDuration.Parse(stop, "ECS_CONTAINER_STOP_TIMEOUT") };
        }

        if (values.TryGetValue("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", out var cleanup))
        {
            settings = settings with { TaskCleanupWaitDuration = GoDuration.Parse(cleanup, "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION") };
        }

        if (values.TryGetValue("ECS_IMAGE_PULL_BEHAVIOR", out var pull))
        {
            settings = settings with { ImagePullBehavior = PullBehaviors.Contains(pull) ? pull : throw new FormatException($"ECS_IMAGE_PULL_BEHAVIOR '{pull}' is not one of {string.Join(", ", PullBehaviors)}") };
        }

        if (values.TryGetValue("ECS_DISABLE_IMAGE_CLEANUP", out var disabled))
        {
            settings = settings with { ImageCleanupDisabled = bool.TryParse(disabled, out var flag) ? flag : throw new FormatException($"ECS_DISABLE_IMAGE_CLEANUP '{disabled}' is not true or false") };
        }

        if (values.TryGetValue("ECS_DISABLE_PRIVILEGED", out var privileged))
        {
            settings = settings with { PrivilegedDisabled = bool.TryParse(privileged, out var flag) ? flag : throw new FormatException($"ECS_DISABLE_PRIVILEGED '{privileged}' is not true or false") };
        }

        if (values.TryGetValue("ECSLITE_ALLOWED_HOST_PATHS", out var hostPaths))
        {
            var paths = Api.V1.HostAccess.ParseAllowed(hostPaths);
            settings = settings with
            {
                // Reported as an attribute, whose value ECS bounds at 128 characters.
                AllowedHostPaths = paths.All(p => p.StartsWith('/')) && string.Join(',', paths).Length <= 128
                    ? paths
                    : throw new FormatException($"ECSLITE_ALLOWED_HOST_PATHS '{hostPaths}' must be absolute paths, comma-separated, 128 characters at most"),
            };
        }

        if (values.TryGetValue("ECS_IMAGE_CLEANUP_INTERVAL", out var interval))
        {
            settings = settings with { ImageCleanupInterval = GoDuration.Parse(interval, "ECS_IMAGE_CLEANUP_INTERVAL") };
        }

        if (values.TryGetValue("ECS_IMAGE_MINIMUM_CLEANUP_AGE", out var age))
        {
            settings = settings with { ImageMinimumCleanupAge = GoDuration.Parse(age, "ECS_IMAGE_MINIMUM_CLEANUP_AGE") };
        }

        if (values.TryGetValue("ECS_NUM_IMAGES_DELETE_PER_CYCLE", out var perCycle))
        {
            settings = settings with
            {
                ImagesDeletedPerCycle = int.TryParse(perCycle, System.Globalization.CultureInfo.InvariantCulture, out var count) && count >= 1
                    ? count
                    : throw new FormatException($"ECS_NUM_IMAGES_DELETE_PER_CYCLE '{perCycle}' is not a whole number of at least 1"),
            };
        }

        if (values.TryGetValue("ECS_IMAGE_PULL_TIMEOUT", out var pullTimeout))
        {
            settings = settings with { ImagePullTimeout = Positive(GoDuration.Parse(pullTimeout, "ECS_IMAGE_PULL_TIMEOUT"), "ECS_IMAGE_PULL_TIMEOUT") };
        }

        if (values.TryGetValue("ECS_CONTAINER_CREATE_TIMEOUT", out var createTimeout))
        {
            settings = settings with { ContainerCreateTimeout = Positive(GoDuration.Parse(createTimeout, "ECS_CONTAINER_CREATE_TIMEOUT"), "ECS_CONTAINER_CREATE_TIMEOUT") };
        }

        if (values.TryGetValue("ECS_CONTAINER_START_TIMEOUT", out var startTimeout))
        {
            settings = settings with { ContainerStartTimeout = Positive(GoDuration.Parse(startTimeout, "ECS_CONTAINER_START_TIMEOUT"), "ECS_CONTAINER_START_TIMEOUT") };
        }

        if (values.TryGetValue("DOCKER_HOST", out var dockerHost))
        {
            settings = settings with
            {
                DockerEndpoint = Uri.TryCreate(dockerHost, UriKind.Absolute, out var endpoint) && endpoint.Scheme is "unix" or "tcp" or "http"
                    ? dockerHost
                    : throw new FormatException($"DOCKER_HOST '{dockerHost}' is not unix:///path/to/docker.sock or tcp://host:port"),
            };
        }

        if (values.TryGetValue("ECSLITE_HOST_PORT_ADDRESS", out var address))
        {
            settings = settings with { HostPortAddress = System.Net.IPAddress.TryParse(address, out _) ? address : throw new FormatException($"ECSLITE_HOST_PORT_ADDRESS '{address}' is not an IP address") };
        }

        if (values.TryGetValue("ECSLITE_METRICS_LISTEN", out var metrics))
        {
            settings = settings with
            {
                MetricsListen = metrics is "" or "off" ? null
                    : System.Net.IPEndPoint.TryParse(metrics, out var endpoint) && endpoint.Port > 0 ? endpoint
                    : throw new FormatException($"ECSLITE_METRICS_LISTEN '{metrics}' is not ADDRESS:PORT (e.g. 127.0.0.1:51680) or off"),
            };
        }

        return settings;
    }

    private static TimeSpan Positive(TimeSpan value, string name) =>
        value > TimeSpan.Zero ? value : throw new FormatException($"{name} must be longer than 0");

    /// <summary>KEY=VALUE lines as in ECS's /etc/ecs/ecs.config; '#' starts a comment; values may be quoted.</summary>
    public static Dictionary<string, string> ParseConfigFile(string text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var equals = line.IndexOf('=');
            if (equals <= 0)
            {
                throw new FormatException($"line {number}: expected KEY=VALUE, got '{line}'");
            }

            var value = line[(equals + 1)..].Trim();
            if (value.Length >= 2 && value[0] is '"' or '\'' && value[^1] == value[0])
            {
                value = value[1..^1];
            }

            values[line[..equals].Trim()] = value;
        }

        return values;
    }

    private static Uri CoordinatorUri(string text)
    {
        var withScheme = text.Contains("://", StringComparison.Ordinal) ? text : "https://" + text;
        if (!Uri.TryCreate(withScheme, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Port <= 0)
        {
            throw new FormatException($"coordinator '{text}' is not a URL such as https://192.0.2.10:7430");
        }

        return uri.Scheme == "https" || uri.IsLoopback
            ? uri
            : throw new FormatException($"coordinator '{text}': the agent talks to coordinators over TLS only (https://); http:// is for a coordinator's insecure test mode on this host");
    }

    private static bool IsClusterName(string name) =>
        name.Length is > 0 and <= 255 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    /// <summary>A JSON list of port numbers, e.g. [80, 8080].</summary>
    private static List<int> Ports(string name, string text)
    {
        var trimmed = text.Trim();
        var ports = new List<int>();
        if (trimmed.Length >= 2 && trimmed[0] == '[' && trimmed[^1] == ']')
        {
            foreach (var item in trimmed[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
                {
                    ports = null;
                    break;
                }

                ports.Add(port);
            }

            if (ports is not null)
            {
                return ports;
            }
        }

        throw new FormatException($"{name} '{text}' must be a JSON list of ports, e.g. [80, 8080]");
    }

    private static Dictionary<string, string> Attributes(string text)
    {
        try
        {
            return JsonSerializer.Deserialize(text, SettingsJson.Default.DictionaryStringString) ?? [];
        }
        catch (JsonException)
        {
        }

        throw new FormatException($"ECS_INSTANCE_ATTRIBUTES '{text}' must be a JSON object of strings, e.g. {{\"stack\": \"prod\"}}");
    }
}

/// <summary>Source-generated JSON, so a trimmed agent needs no reflection for it.</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class SettingsJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>Durations as the ECS agent writes them (Go's format): 30s, 1m30s, 500ms, 3h.</summary>
public static class GoDuration
{
    public static TimeSpan Parse(string text, string name)
    {
        var total = TimeSpan.Zero;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            var unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.')
            {
                i++;
            }

            if (unitStart == start || !double.TryParse(text.AsSpan(start, unitStart - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
            {
                throw Invalid(text, name);
            }

            total += text[unitStart..i] switch
            {
                "h" => TimeSpan.FromHours(n),
                "m" => TimeSpan.FromMinutes(n),
                "s" => TimeSpan.FromSeconds(n),
                "ms" => TimeSpan.FromMilliseconds(n),
                "us" or "µs" => TimeSpan.FromMicroseconds(n),
                "ns" => TimeSpan.FromMicroseconds(n / 1000),
                _ => throw Invalid(text, name),
            };
        }

        return text.Length > 0 ? total : throw Invalid(text, name);
    }

    private static FormatException Invalid(string text, string name) => new($"{name} '{text}' is not a duration such as 30s, 1m30s or 3h");
}
