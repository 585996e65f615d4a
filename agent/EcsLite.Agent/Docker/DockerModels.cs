using System.Text.Json;
using System.Text.Json.Serialization;

namespace EcsLite.Agent.Docker;

// The part of Docker Engine API 1.41's container create body the agent sets, named as the API names
// it and written by System.Text.Json's source generator: no reflection, nothing compiled at run time.

public sealed class CreateContainerParameters
{
    /// <summary>The container's name: a query parameter of the create call, not part of the body.</summary>
    [JsonIgnore]
    public string? Name { get; set; }

    public string? Image { get; set; }

    public IDictionary<string, string>? Labels { get; set; }

    public IList<string>? Cmd { get; set; }

    public IList<string>? Entrypoint { get; set; }

    public IList<string>? Env { get; set; }

    public string? WorkingDir { get; set; }

    public string? User { get; set; }

    public string? Hostname { get; set; }

    public bool Tty { get; set; }

    public bool OpenStdin { get; set; }

    public bool NetworkDisabled { get; set; }

    public HealthConfig? Healthcheck { get; set; }

    public IDictionary<string, EmptyObject>? ExposedPorts { get; set; }

    public HostConfig HostConfig { get; set; } = new();

    public NetworkingConfig? NetworkingConfig { get; set; }
}

public sealed class EmptyObject;

public sealed class HealthConfig
{
    public IList<string>? Test { get; set; }

    /// <summary>Docker counts these in nanoseconds.</summary>
    [JsonIgnore]
    public TimeSpan Interval { get; set; }

    [JsonIgnore]
    public TimeSpan Timeout { get; set; }

    [JsonPropertyName("Interval")]
    public long IntervalNanoseconds => (long)Interval.TotalNanoseconds;

    [JsonPropertyName("Timeout")]
    public long TimeoutNanoseconds => (long)Timeout.TotalNanoseconds;

    public long Retries { get; set; }

    public long StartPeriod { get; set; }
}

public sealed class HostConfig
{
    [JsonPropertyName("CpuShares")]
    public long CPUShares { get; set; }

    public long Memory { get; set; }

    public long MemoryReservation { get; set; }

    public long MemorySwap { get; set; }

    public long? MemorySwappiness { get; set; }

    public string? NetworkMode { get; set; }

    public IDictionary<string, IList<PortBinding>>? PortBindings { get; set; }

    public IList<string>? Links { get; set; }

    [JsonPropertyName("Dns")]
    public IList<string>? DNS { get; set; }

    [JsonPropertyName("DnsSearch")]
    public IList<string>? DNSSearch { get; set; }

    public IList<string>? ExtraHosts { get; set; }

    public IList<Ulimit>? Ulimits { get; set; }

    public bool Privileged { get; set; }

    public bool ReadonlyRootfs { get; set; }

    public IList<string>? SecurityOpt { get; set; }

    public IDictionary<string, string>? Sysctls { get; set; }

    public IList<string>? CapAdd { get; set; }

    public IList<string>? CapDrop { get; set; }

    public bool? Init { get; set; }

    public long ShmSize { get; set; }

    public IDictionary<string, string>? Tmpfs { get; set; }

    public IList<DeviceMapping>? Devices { get; set; }

    public IList<string>? Binds { get; set; }

    public IList<string>? VolumesFrom { get; set; }

    public LogConfig? LogConfig { get; set; }

    public string? CgroupParent { get; set; }
}

public sealed class PortBinding
{
    [JsonPropertyName("HostIp")]
    public string? HostIP { get; set; }

    public string? HostPort { get; set; }
}

public sealed class Ulimit
{
    public string? Name { get; set; }

    public long Soft { get; set; }

    public long Hard { get; set; }
}

public sealed class DeviceMapping
{
    public string? PathOnHost { get; set; }

    public string? PathInContainer { get; set; }

    public string? CgroupPermissions { get; set; }
}

public sealed class LogConfig
{
    public string? Type { get; set; }

    public IDictionary<string, string>? Config { get; set; }
}

public sealed class NetworkingConfig
{
    public IDictionary<string, EndpointSettings>? EndpointsConfig { get; set; }
}

public sealed class EndpointSettings
{
    public IList<string>? Aliases { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CreateContainerParameters))]
internal sealed partial class DockerJson : JsonSerializerContext;
