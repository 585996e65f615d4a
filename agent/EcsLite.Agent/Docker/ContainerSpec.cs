using System.Globalization;
using EcsLite.Api.V1;

namespace EcsLite.Agent.Docker;

/// <summary>What a container's Docker settings depend on besides its own definition: its task and this host.</summary>
public sealed record TaskContext(
    string TaskArn,
    string Family,
    int Revision,
    string Cluster,
    string ContainerInstanceArn,
    string NetworkMode,
    IReadOnlyList<Volume> Volumes,
    string HostPortAddress = "0.0.0.0",
    string? CgroupParent = null,
    string? PauseContainerId = null)
{
    /// <summary>The task id: the last part of its ARN.</summary>
    public string TaskId => TaskArn[(TaskArn.LastIndexOf('/') + 1)..];
}

/// <summary>
/// Turns an ECS container definition into Docker's create parameters: every field that means something on a
/// Linux Docker host. Pure: no Docker calls. Every container is labelled with its task, container name,
/// cluster and instance, which is how the agent finds its containers again after a restart.
/// </summary>
public static class ContainerSpec
{
    public const string TaskArnLabel = "com.amazonaws.ecs.task-arn";
    public const string ContainerNameLabel = "com.amazonaws.ecs.container-name";
    public const string ClusterLabel = "com.amazonaws.ecs.cluster";
    public const string FamilyLabel = "com.amazonaws.ecs.task-definition-family";
    public const string RevisionLabel = "com.amazonaws.ecs.task-definition-version";
    public const string InstanceLabel = "ecslite.container-instance-arn";

    /// <summary>The container name ECS gives an awsvpc task's pause container.</summary>
    public const string PauseContainerName = "~internal~ecs~pause";

    private const long MiB = 1024 * 1024;

    /// <summary>Docker's container name, as the ECS agent forms it: ecs-FAMILY-REVISION-CONTAINER-TASKID.</summary>
    public static string Name(TaskContext task, ContainerDefinition container) => Name(task, container.Name);

    private static string Name(TaskContext task, string container) => $"ecs-{task.Family}-{task.Revision}-{container}-{task.TaskId}";

    /// <summary>
    /// awsvpc: the container that holds the task's network namespace, which every container of the task
    /// joins (so they share localhost, as on ECS). It publishes the task's ports (hostPort = containerPort)
    /// and carries its DNS settings, which Docker allows only on the namespace's owner.
    /// </summary>
    public static CreateContainerParameters Pause(TaskContext task, IReadOnlyList<ContainerDefinition> containers, string image)
    {
        var mappings = containers.SelectMany(c => c.PortMappings).Where(p => p.HasContainerPort).ToList();
        var dns = containers.SelectMany(c => c.DnsServers).Distinct().ToList();
        var search = containers.SelectMany(c => c.DnsSearchDomains).Distinct().ToList();
        return new CreateContainerParameters
        {
            Name = Name(task, "internalecspause"),
            Image = image,
            Labels = Labels(task, PauseContainerName, new Dictionary<string, string>()),
            ExposedPorts = mappings.Select(PortKey).Distinct().ToDictionary(k => k, _ => new EmptyObject()),
            HostConfig = new HostConfig
            {
                NetworkMode = "bridge",
                PortBindings = mappings.GroupBy(PortKey).ToDictionary(g => g.Key, g => (IList<PortBinding>)
                    [new PortBinding { HostIP = task.HostPortAddress, HostPort = g.First().ContainerPort.ToString(CultureInfo.InvariantCulture) }]),
                DNS = dns.Count > 0 ? dns : null,
                DNSSearch = search.Count > 0 ? search : null,
                CgroupParent = task.CgroupParent,
                Memory = 16 * MiB,
                CPUShares = 2,
            },
        };
    }

    private static Dictionary<string, string> Labels(TaskContext task, string containerName, IDictionary<string, string> dockerLabels) =>
        new(dockerLabels)
        {
            [TaskArnLabel] = task.TaskArn,
            [ContainerNameLabel] = containerName,
            [ClusterLabel] = task.Cluster,
            [FamilyLabel] = task.Family,
            [RevisionLabel] = task.Revision.ToString(CultureInfo.InvariantCulture),
            [InstanceLabel] = task.ContainerInstanceArn,
        };

    /// <param name="secrets">The task's resolved secrets: this container's become environment variables and log driver options.</param>
    public static CreateContainerParameters Build(TaskContext task, ContainerDefinition container, IReadOnlyDictionary<string, string>? dockerNames = null,
        IReadOnlyList<ResolvedSecret>? secrets = null)
    {
        var own = (secrets ?? []).Where(s => s.ContainerName == container.Name).ToList();
        var labels = Labels(task, container.Name, container.DockerLabels);
        var parameters = new CreateContainerParameters
        {
            Name = Name(task, container),
            Image = container.Image,
            Labels = labels,
            Cmd = container.Command.Count > 0 ? [.. container.Command] : null,
            Entrypoint = container.EntryPoint.Count > 0 ? [.. container.EntryPoint] : null,
            Env = [.. container.Environment.Select(e => $"{e.Name}={e.Value}"), .. own.Where(s => s.Kind == SecretKinds.Environment).Select(s => $"{s.Name}={s.Value}")],
            WorkingDir = container.HasWorkingDirectory ? container.WorkingDirectory : null,
            User = container.HasUser ? container.User : null,
            Hostname = container.HasHostname ? container.Hostname : null,
            Tty = container.HasPseudoTerminal && container.PseudoTerminal,
            OpenStdin = container.HasInteractive && container.Interactive,
            NetworkDisabled = container.HasDisableNetworking && container.DisableNetworking,
            Healthcheck = HealthCheck(container.HealthCheck),
            // awsvpc: the pause container exposes the task's ports; Docker refuses them on a container joining it.
            ExposedPorts = task.NetworkMode == "awsvpc" ? null : container.PortMappings.Where(p => p.HasContainerPort)
                .ToDictionary(p => PortKey(p), _ => new EmptyObject()),
            HostConfig = HostConfig(task, container, dockerNames ?? new Dictionary<string, string>(), own.Where(s => s.Kind == SecretKinds.LogOption)),
        };
        return parameters;
    }

    private static HostConfig HostConfig(TaskContext task, ContainerDefinition container, IReadOnlyDictionary<string, string> dockerNames, IEnumerable<ResolvedSecret> logOptions)
    {
        var linux = container.LinuxParameters;
        var awsvpc = task.NetworkMode == "awsvpc";
        var host = new HostConfig
        {
            // ECS: cpu units are CPU shares; Docker's minimum is 2.
            CPUShares = Math.Max(2, container.Cpu),
            Memory = container.HasMemory ? container.Memory * MiB : 0,
            MemoryReservation = container.HasMemoryReservation ? container.MemoryReservation * MiB : 0,
            NetworkMode = task.NetworkMode switch
            {
                "awsvpc" => $"container:{task.PauseContainerId ?? throw new ArgumentException("awsvpc needs the task's pause container", nameof(task))}",
                "host" => "host",
                "none" => "none",
                _ => "bridge",
            },
            PortBindings = PortBindings(task, container),
            Links = task.NetworkMode == "bridge" ? [.. container.Links.Select(l => Link(l, dockerNames))] : null,
            DNS = container.DnsServers.Count > 0 && !awsvpc ? [.. container.DnsServers] : null,
            DNSSearch = container.DnsSearchDomains.Count > 0 && !awsvpc ? [.. container.DnsSearchDomains] : null,
            ExtraHosts = container.ExtraHosts.Count > 0 ? [.. container.ExtraHosts.Select(h => $"{h.Hostname}:{h.IpAddress}")] : null,
            Ulimits = container.Ulimits.Count > 0 ? [.. container.Ulimits.Select(u => new Ulimit { Name = u.Name, Soft = u.SoftLimit, Hard = u.HardLimit })] : null,
            Privileged = container.HasPrivileged && container.Privileged,
            ReadonlyRootfs = container.HasReadonlyRootFilesystem && container.ReadonlyRootFilesystem,
            SecurityOpt = container.DockerSecurityOptions.Count > 0 ? [.. container.DockerSecurityOptions] : null,
            Sysctls = container.SystemControls.Count > 0 ? container.SystemControls.ToDictionary(s => s.Namespace, s => s.Value) : null,
            CapAdd = linux?.Capabilities?.Add.Count > 0 ? [.. linux.Capabilities.Add] : null,
            CapDrop = linux?.Capabilities?.Drop.Count > 0 ? [.. linux.Capabilities.Drop] : null,
            Init = linux is { HasInitProcessEnabled: true, InitProcessEnabled: true } ? true : null,
            ShmSize = linux is { HasSharedMemorySize: true } ? linux.SharedMemorySize * MiB : 0,
            Tmpfs = linux?.Tmpfs.Count > 0
                ? linux.Tmpfs.ToDictionary(t => t.ContainerPath, t => string.Join(',', t.MountOptions.Append($"size={t.Size}m")))
                : null,
            Devices = linux?.Devices.Count > 0
                ? [.. linux.Devices.Select(d => new DeviceMapping
                {
                    PathOnHost = d.HostPath,
                    PathInContainer = d.HasContainerPath ? d.ContainerPath : d.HostPath,
                    CgroupPermissions = Permissions(d.Permissions),
                })]
                : null,
            MemorySwappiness = linux is { HasSwappiness: true } ? linux.Swappiness : null,
            MemorySwap = linux is { HasMaxSwap: true } && container.HasMemory ? (container.Memory * MiB) + (linux.MaxSwap * MiB) : 0,
            Binds = Binds(task, container),
            VolumesFrom = container.VolumesFrom.Count > 0
                ? [.. container.VolumesFrom.Select(v => dockerNames.GetValueOrDefault(v.SourceContainer, v.SourceContainer) + (v.HasReadOnly && v.ReadOnly ? ":ro" : ""))]
                : null,
            LogConfig = Logging(container.LogConfiguration, logOptions),
            CgroupParent = task.CgroupParent,
        };
        return host;
    }

    /// <summary>hostPort 0 or absent publishes on an ephemeral port (bridge); awsvpc publishes through the pause container.</summary>
    private static Dictionary<string, IList<PortBinding>>? PortBindings(TaskContext task, ContainerDefinition container)
    {
        if (task.NetworkMode is "host" or "none" or "awsvpc" || container.PortMappings.Count == 0)
        {
            return null;
        }

        var bindings = new Dictionary<string, IList<PortBinding>>();
        foreach (var mapping in container.PortMappings.Where(p => p.HasContainerPort))
        {
            var hostPort = mapping.HostPort;
            bindings[PortKey(mapping)] =
            [
                new PortBinding { HostIP = task.HostPortAddress, HostPort = hostPort == 0 ? "" : hostPort.ToString(CultureInfo.InvariantCulture) },
            ];
        }

        return bindings;
    }

    private static string PortKey(PortMapping mapping) =>
        $"{mapping.ContainerPort.ToString(CultureInfo.InvariantCulture)}/{(mapping.HasProtocol ? mapping.Protocol : "tcp")}";

    private static string Link(string link, IReadOnlyDictionary<string, string> dockerNames)
    {
        var parts = link.Split(':', 2);
        var alias = parts.Length == 2 ? parts[1] : parts[0];
        return $"{dockerNames.GetValueOrDefault(parts[0], parts[0])}:{alias}";
    }

    /// <summary>Host volumes as binds; task-scoped volumes as Docker volumes named after the task.</summary>
    private static List<string>? Binds(TaskContext task, ContainerDefinition container)
    {
        if (container.MountPoints.Count == 0)
        {
            return null;
        }

        var binds = new List<string>();
        foreach (var mount in container.MountPoints)
        {
            var volume = task.Volumes.First(v => v.Name == mount.SourceVolume);
            var source = volume.Host is { HasSourcePath: true } host ? host.SourcePath : VolumeName(task, volume);
            binds.Add($"{source}:{mount.ContainerPath}{(mount.HasReadOnly && mount.ReadOnly ? ":ro" : "")}");
        }

        return binds;
    }

    /// <summary>A Docker volume's name: shared ones keep the task definition's name; task-scoped ones are per task.</summary>
    public static string VolumeName(TaskContext task, Volume volume) =>
        volume.DockerVolumeConfiguration is { Scope: "shared" } ? volume.Name : $"ecs-{task.Family}-{task.Revision}-{volume.Name}-{task.TaskId}";

    private static string Permissions(IEnumerable<string> permissions)
    {
        var letters = string.Concat(permissions.Select(p => p switch { "read" => "r", "write" => "w", "mknod" => "m", _ => "" }));
        return letters.Length > 0 ? letters : "rwm";
    }

    private static HealthConfig? HealthCheck(Api.V1.HealthCheck? check) => check is null
        ? null
        : new HealthConfig
        {
            Test = [.. check.Command],
            Interval = TimeSpan.FromSeconds(check.HasInterval ? check.Interval : 30),
            Timeout = TimeSpan.FromSeconds(check.HasTimeout ? check.Timeout : 5),
            Retries = check.HasRetries ? check.Retries : 3,
            StartPeriod = (long)TimeSpan.FromSeconds(check.HasStartPeriod ? check.StartPeriod : 0).TotalNanoseconds,
        };

    /// <summary>
    /// Docker's own log drivers pass through. awslogs (and awsfirelens) have no CloudWatch here: the
    /// container logs to json-file with size-bounded rotation, and the agent serves those logs itself.
    /// </summary>
    private static LogConfig? Logging(LogConfiguration? configuration, IEnumerable<ResolvedSecret> secretOptions)
    {
        if (configuration is null)
        {
            return null;
        }

        if (configuration.LogDriver is "awslogs" or "awsfirelens")
        {
            return new LogConfig { Type = "json-file", Config = new Dictionary<string, string> { ["max-size"] = "10m", ["max-file"] = "3" } };
        }

        var options = new Dictionary<string, string>(configuration.Options);
        foreach (var option in secretOptions)
        {
            options[option.Name] = option.Value;
        }

        return new LogConfig { Type = configuration.LogDriver, Config = options };
    }
}
