using System.Text.RegularExpressions;
using EcsLite.Coordinator.Core.Query;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Validation;

namespace EcsLite.Coordinator.Core.TaskDefinitions;

/// <summary>Task-level cpu (units) and memory (MiB) after ECS's unit conversion; null where not given.</summary>
public readonly record struct TaskSizeValue(int? Cpu, int? Memory);

/// <summary>
/// RegisterTaskDefinition's rules as ECS applies them. The first rule broken is thrown as an
/// <see cref="EcsException"/> whose message starts with the JSON path of the field at fault.
/// Shape rules from the ECS model (required members, enum words, bounds) come first, then ECS's
/// semantic rules, which are ClientExceptions as in ECS.
/// </summary>
public static partial class TaskDefinitionValidator
{
    public const int MaxContainers = 10;
    public const int MinContainerMemoryMiB = 6;
    public const int MaxStopTimeoutSeconds = 120;

    [GeneratedRegex("^[A-Za-z0-9_-]{1,255}$")]
    public static partial Regex NamePattern();

    /// <summary>ECS's image rule: letters, numbers, hyphens, underscores, colons, periods, forward slashes and number signs.</summary>
    [GeneratedRegex("^[A-Za-z0-9_:./#-]+$")]
    private static partial Regex ImagePattern();

    [GeneratedRegex("^sha256:[A-Fa-f0-9]{64}$")]
    private static partial Regex DigestPattern();

    [GeneratedRegex(@"^(?=.{1,255}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex HostnamePattern();

    /// <summary>
    /// An image as ECS takes it: REPOSITORY[:TAG] of at most 255 allowed characters, or REPOSITORY@sha256:DIGEST
    /// (the 255 then counts the part before the @). A placeholder left in a template (${IMAGE_URL}) is refused
    /// here, as ECS refuses it, rather than failing on the host.
    /// </summary>
    private static void ValidateImage(ContainerDefinition container, string path)
    {
        var field = $"{path}.image";
        if (!container.HasImage || container.Image.Length == 0)
        {
            throw EcsException.Client(field, "is required: an image reference such as httpd:2.4 or registry/name@sha256:digest.");
        }

        var image = container.Image;
        var at = image.IndexOf('@');
        var name = at < 0 ? image : image[..at];
        if (name.Length > 255)
        {
            throw EcsException.Client(field, $"Container.image should not be longer than 255 characters before its digest (got {name.Length}).");
        }

        if (!ImagePattern().IsMatch(name))
        {
            var bad = string.Concat(name.Where(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or ':' or '.' or '/' or '#')).Distinct().Take(10));
            throw EcsException.Client(field, $"Container.image contains invalid characters: '{CallerText.Quote(image)}' has {CallerText.Quote(bad)}; "
                + "up to 255 letters, numbers, hyphens, underscores, colons, periods, forward slashes and number signs are allowed, then optionally @sha256:DIGEST.");
        }

        if (at >= 0 && !DigestPattern().IsMatch(image[(at + 1)..]))
        {
            throw EcsException.Client(field, $"Container.image has an invalid digest: '{CallerText.Quote(image[(at + 1)..])}' is not sha256: followed by 64 hexadecimal digits.");
        }
    }

    private static readonly string[] HealthCheckCommandKinds = ["CMD", "CMD-SHELL", "NONE"];

    public static TaskSizeValue Validate(RegisterTaskDefinitionRequest request)
    {
        ShapeRules.Validate(request);
        var bytes = System.Text.Encoding.UTF8.GetByteCount(Google.Protobuf.JsonFormatter.Default.Format(request));
        if (bytes > Limits.TaskDefinitionBytes)
        {
            throw EcsException.Client("containerDefinitions", $"the task definition is {bytes} bytes of JSON; ECS allows at most {Limits.TaskDefinitionBytes} (64 KiB).");
        }

        if (!NamePattern().IsMatch(request.Family))
        {
            throw EcsException.Client("family", "up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens are allowed.");
        }

        var containers = request.ContainerDefinitions;
        if (containers.Count > MaxContainers)
        {
            throw EcsException.Client("containerDefinitions", $"a task definition can have at most {MaxContainers} containers (got {containers.Count}).");
        }

        var networkMode = request.HasNetworkMode ? request.NetworkMode : "bridge";
        var fargate = request.RequiresCompatibilities.Contains("FARGATE");
        var size = ValidateSize(request, networkMode, fargate);
        var names = ValidateContainerNames(containers);
        var volumes = ValidateVolumes(request, fargate);

        if (!containers.Any(c => !c.HasEssential || c.Essential))
        {
            throw EcsException.Client("containerDefinitions", "at least one container must be essential.");
        }

        var usedHostPorts = new Dictionary<(string Protocol, int Port), string>();
        long cpuSum = 0;
        for (var i = 0; i < containers.Count; i++)
        {
            var path = $"containerDefinitions[{i}]";
            var container = containers[i];
            ValidateContainer(container, path, networkMode, fargate, size, names, volumes, containers);
            ValidatePortMappings(container, path, networkMode, usedHostPorts);
            cpuSum += container.Cpu;
        }

        ValidateStartOrder(containers);

        if (size.Cpu is { } taskCpu && cpuSum > taskCpu)
        {
            throw EcsException.Client("containerDefinitions", $"the containers' cpu adds up to {cpuSum} units, more than the task's cpu ({taskCpu}).");
        }

        if (request.ProxyConfiguration is { } proxy && !names.Contains(proxy.ContainerName))
        {
            throw EcsException.Client("proxyConfiguration.containerName", $"'{proxy.ContainerName}' is not a container of this task definition.");
        }

        for (var i = 0; i < request.PlacementConstraints.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(request.PlacementConstraints[i].Expression))
            {
                throw EcsException.Client($"placementConstraints[{i}].expression", "a memberOf constraint needs an expression.");
            }

            // Parsed now, so that a stored definition's expression is known to be sound when it is used.
            ClusterQuery.Parse(request.PlacementConstraints[i].Expression, $"placementConstraints[{i}].expression");
        }

        if (request.EphemeralStorage is { } storage && storage.SizeInGiB is < 21 or > 200)
        {
            throw EcsException.Client("ephemeralStorage.sizeInGiB", $"must be between 21 and 200 GiB (got {storage.SizeInGiB}).");
        }

        TagRules.Validate(request.Tags, "tags");
        return size;
    }

    private static TaskSizeValue ValidateSize(RegisterTaskDefinitionRequest request, string networkMode, bool fargate)
    {
        int? cpu = null, memory = null;
        if (request.HasCpu)
        {
            cpu = TaskSize.ParseCpu(request.Cpu)
                ?? throw EcsException.Client("cpu", $"'{request.Cpu}' is not a CPU value; use CPU units (e.g. 256) or vCPUs (e.g. 0.25 vCPU).");
            if (cpu is < 128 or > 196608)
            {
                throw EcsException.Client("cpu", $"must be between 128 and 196608 CPU units (0.125 to 192 vCPU) (got {cpu}).");
            }
        }

        if (request.HasMemory)
        {
            memory = TaskSize.ParseMemory(request.Memory)
                ?? throw EcsException.Client("memory", $"'{request.Memory}' is not a memory value; use MiB (e.g. 512) or GB (e.g. 2 GB).");
            if (memory < MinContainerMemoryMiB)
            {
                throw EcsException.Client("memory", $"must be at least {MinContainerMemoryMiB} MiB (got {memory}).");
            }
        }

        if (fargate)
        {
            if (networkMode != "awsvpc")
            {
                throw EcsException.Client("networkMode", "tasks that require FARGATE must use networkMode awsvpc.");
            }

            if (cpu is null)
            {
                throw EcsException.Client("cpu", "tasks that require FARGATE need a task-level cpu.");
            }

            if (memory is null)
            {
                throw EcsException.Client("memory", "tasks that require FARGATE need a task-level memory.");
            }

            if (!TaskSize.IsFargateSize(cpu.Value, memory.Value))
            {
                throw EcsException.Client("memory", $"no Fargate configuration exists for cpu {cpu} and memory {memory}; valid pairs: {TaskSize.FargateSizes}.");
            }

            if (request.PidMode == "host")
            {
                throw EcsException.Client("pidMode", "pidMode host is not supported for tasks that require FARGATE.");
            }

            if (request.HasIpcMode)
            {
                throw EcsException.Client("ipcMode", "ipcMode is not supported for tasks that require FARGATE.");
            }
        }

        return new TaskSizeValue(cpu, memory);
    }

    private static HashSet<string> ValidateContainerNames(IList<ContainerDefinition> containers)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < containers.Count; i++)
        {
            var container = containers[i];
            if (!container.HasName || container.Name.Length == 0)
            {
                throw EcsException.Client($"containerDefinitions[{i}].name", "is required.");
            }

            if (!NamePattern().IsMatch(container.Name))
            {
                throw EcsException.Client($"containerDefinitions[{i}].name", "up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens are allowed.");
            }

            if (!names.Add(container.Name))
            {
                throw EcsException.Client($"containerDefinitions[{i}].name", $"'{container.Name}' is used by more than one container; container names must be unique.");
            }
        }

        return names;
    }

    private static HashSet<string> ValidateVolumes(RegisterTaskDefinitionRequest request, bool fargate)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < request.Volumes.Count; i++)
        {
            var path = $"volumes[{i}]";
            var volume = request.Volumes[i];
            if (!volume.HasName || !NamePattern().IsMatch(volume.Name))
            {
                throw EcsException.Client($"{path}.name", "is required: up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens.");
            }

            if (!names.Add(volume.Name))
            {
                throw EcsException.Client($"{path}.name", $"'{volume.Name}' is declared more than once; volume names must be unique.");
            }

            var kinds = new[] { volume.Host is not null, volume.DockerVolumeConfiguration is not null, volume.EfsVolumeConfiguration is not null, volume.FsxWindowsFileServerVolumeConfiguration is not null }.Count(k => k);
            if (kinds > 1)
            {
                throw EcsException.Client(path, "a volume can have only one of host, dockerVolumeConfiguration, efsVolumeConfiguration and fsxWindowsFileServerVolumeConfiguration.");
            }

            if (volume.Host is { HasSourcePath: true } host)
            {
                if (!host.SourcePath.StartsWith('/'))
                {
                    throw EcsException.Client($"{path}.host.sourcePath", $"'{host.SourcePath}' must be an absolute path.");
                }

                if (fargate)
                {
                    throw EcsException.Client($"{path}.host.sourcePath", "host paths are not supported for tasks that require FARGATE.");
                }
            }

            if (volume.DockerVolumeConfiguration is { } docker)
            {
                if (fargate)
                {
                    throw EcsException.Client($"{path}.dockerVolumeConfiguration", "Docker volumes are not supported for tasks that require FARGATE.");
                }

                if (docker.HasAutoprovision && docker.Autoprovision && docker.Scope != "shared")
                {
                    throw EcsException.Client($"{path}.dockerVolumeConfiguration.autoprovision", "autoprovision is only allowed with scope shared.");
                }
            }
        }

        return names;
    }

    private static void ValidateContainer(
        ContainerDefinition container, string path, string networkMode, bool fargate, TaskSizeValue size,
        HashSet<string> names, HashSet<string> volumes, IList<ContainerDefinition> all)
    {
        ValidateImage(container, path);
        if (container.HasHostname && !HostnamePattern().IsMatch(container.Hostname))
        {
            throw EcsException.Client($"{path}.hostname", $"Container.hostname contains invalid characters: '{CallerText.Quote(container.Hostname)}' is not a host name (letters, numbers and hyphens in labels of at most 63, separated by periods; at most 255 in all).");
        }

        if (container.Cpu < 0)
        {
            throw EcsException.Client($"{path}.cpu", $"must not be negative (got {container.Cpu}).");
        }

        if (container.HasMemory && container.Memory < MinContainerMemoryMiB)
        {
            throw EcsException.Client($"{path}.memory", $"must be at least {MinContainerMemoryMiB} MiB (got {container.Memory}).");
        }

        if (container.HasMemoryReservation && container.MemoryReservation < MinContainerMemoryMiB)
        {
            throw EcsException.Client($"{path}.memoryReservation", $"must be at least {MinContainerMemoryMiB} MiB (got {container.MemoryReservation}).");
        }

        if (container.HasMemory && container.HasMemoryReservation && container.MemoryReservation > container.Memory)
        {
            throw EcsException.Client($"{path}.memoryReservation", $"must not be greater than memory ({container.MemoryReservation} > {container.Memory}).");
        }

        if (size.Memory is null && !fargate && !container.HasMemory && !container.HasMemoryReservation)
        {
            throw EcsException.Client($"{path}.memory", $"invalid setting for container '{container.Name}': at least one of 'memory' or 'memoryReservation' must be specified when the task has no task-level memory.");
        }

        if (size.Memory is { } taskMemory)
        {
            if (container.HasMemory && container.Memory > taskMemory)
            {
                throw EcsException.Client($"{path}.memory", $"the container's memory ({container.Memory}) exceeds the task's memory ({taskMemory}).");
            }

            if (container.HasMemoryReservation && container.MemoryReservation > taskMemory)
            {
                throw EcsException.Client($"{path}.memoryReservation", $"the container's memoryReservation ({container.MemoryReservation}) exceeds the task's memory ({taskMemory}).");
            }
        }

        if (container.HasStopTimeout && container.StopTimeout is < 0 or > MaxStopTimeoutSeconds)
        {
            throw EcsException.Client($"{path}.stopTimeout", $"must be between 0 and {MaxStopTimeoutSeconds} seconds (got {container.StopTimeout}).");
        }

        if (container.HasStartTimeout && container.StartTimeout < 0)
        {
            throw EcsException.Client($"{path}.startTimeout", $"must not be negative (got {container.StartTimeout}).");
        }

        if (fargate && container.HasPrivileged && container.Privileged)
        {
            throw EcsException.Client($"{path}.privileged", "privileged containers are not supported for tasks that require FARGATE.");
        }

        if (networkMode == "awsvpc" && container.HasHostname)
        {
            throw EcsException.Client($"{path}.hostname", "hostname is not supported with networkMode awsvpc.");
        }

        if (networkMode == "awsvpc" && container.ExtraHosts.Count > 0)
        {
            throw EcsException.Client($"{path}.extraHosts", "extraHosts is not supported with networkMode awsvpc.");
        }

        ValidateLinks(container, path, networkMode, names);
        ValidateDependencies(container, path, names, all);
        ValidateMounts(container, path, names, volumes);
        ValidateHealthCheck(container.HealthCheck, $"{path}.healthCheck");
        ValidateMisc(container, path);
    }

    private static void ValidateLinks(ContainerDefinition container, string path, string networkMode, HashSet<string> names)
    {
        for (var j = 0; j < container.Links.Count; j++)
        {
            if (networkMode != "bridge")
            {
                throw EcsException.Client($"{path}.links[{j}]", $"links are only supported with networkMode bridge (this task uses {networkMode}).");
            }

            var target = container.Links[j].Split(':', 2)[0];
            if (!names.Contains(target) || target == container.Name)
            {
                throw EcsException.Client($"{path}.links[{j}]", $"'{target}' is not another container of this task definition.");
            }
        }
    }

    private static void ValidateDependencies(ContainerDefinition container, string path, HashSet<string> names, IList<ContainerDefinition> all)
    {
        for (var j = 0; j < container.DependsOn.Count; j++)
        {
            var dependency = container.DependsOn[j];
            var field = $"{path}.dependsOn[{j}].containerName";
            if (!names.Contains(dependency.ContainerName) || dependency.ContainerName == container.Name)
            {
                throw EcsException.Client(field, $"'{dependency.ContainerName}' is not another container of this task definition.");
            }

            if (dependency.Condition == "HEALTHY" && all.First(c => c.Name == dependency.ContainerName).HealthCheck is null)
            {
                throw EcsException.Client($"{path}.dependsOn[{j}].condition", $"HEALTHY needs a healthCheck on container '{dependency.ContainerName}'.");
            }
        }

        for (var j = 0; j < container.VolumesFrom.Count; j++)
        {
            var source = container.VolumesFrom[j].SourceContainer;
            if (!names.Contains(source) || source == container.Name)
            {
                throw EcsException.Client($"{path}.volumesFrom[{j}].sourceContainer", $"'{source}' is not another container of this task definition.");
            }
        }
    }

    /// <summary>
    /// dependsOn, volumesFrom and links all order a task's containers (the agent creates or starts what a
    /// container needs first), so together they must not form a cycle: no order could satisfy it.
    /// </summary>
    private static void ValidateStartOrder(IList<ContainerDefinition> containers)
    {
        var needs = containers.ToDictionary(c => c.Name, c => Needs(c).ToList(), StringComparer.Ordinal);
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var start in containers)
        {
            // Depth-first without recursion, keeping the path: at most 10 containers, each needing a few.
            var path = new List<(string Name, int Next)> { (start.Name, 0) };
            while (path.Count > 0 && !done.Contains(start.Name))
            {
                var (name, next) = path[^1];
                if (next == needs[name].Count)
                {
                    done.Add(name);
                    path.RemoveAt(path.Count - 1);
                    continue;
                }

                path[^1] = (name, next + 1);
                var (target, field) = needs[name][next];
                if (path.Any(p => p.Name == target))
                {
                    var cycle = path.SkipWhile(p => p.Name != target).Select(p => p.Name).Append(target);
                    var index = containers.IndexOf(containers.First(c => c.Name == name));
                    throw EcsException.Client($"containerDefinitions[{index}].{field}",
                        $"the containers' dependsOn, volumesFrom and links form a cycle ({string.Join(" -> ", cycle)}), so no container could start first.");
                }

                if (!done.Contains(target) && needs.ContainsKey(target))
                {
                    path.Add((target, 0));
                }
            }
        }

        static IEnumerable<(string Target, string Field)> Needs(ContainerDefinition c) =>
            c.DependsOn.Select((d, j) => (d.ContainerName, $"dependsOn[{j}].containerName"))
                .Concat(c.VolumesFrom.Select((v, j) => (v.SourceContainer, $"volumesFrom[{j}].sourceContainer")))
                .Concat(c.Links.Select((l, j) => (l.Split(':', 2)[0], $"links[{j}]")));
    }

    private static void ValidateMounts(ContainerDefinition container, string path, HashSet<string> names, HashSet<string> volumes)
    {
        for (var j = 0; j < container.MountPoints.Count; j++)
        {
            var mount = container.MountPoints[j];
            if (!volumes.Contains(mount.SourceVolume))
            {
                throw EcsException.Client($"{path}.mountPoints[{j}].sourceVolume", $"'{mount.SourceVolume}' is not declared in volumes.");
            }

            if (!mount.HasContainerPath || !mount.ContainerPath.StartsWith('/'))
            {
                throw EcsException.Client($"{path}.mountPoints[{j}].containerPath", "is required and must be an absolute path.");
            }
        }
    }

    private static void ValidateHealthCheck(HealthCheck? check, string path)
    {
        if (check is null)
        {
            return;
        }

        if (Array.IndexOf(HealthCheckCommandKinds, check.Command[0]) < 0)
        {
            throw EcsException.Client($"{path}.command[0]", $"must be CMD, CMD-SHELL or NONE (got '{check.Command[0]}').");
        }

        if (check.Command[0] != "NONE" && check.Command.Count < 2)
        {
            throw EcsException.Client($"{path}.command", $"{check.Command[0]} needs the command to run after it.");
        }

        CheckRange(check.HasInterval, check.Interval, 5, 300, $"{path}.interval");
        CheckRange(check.HasTimeout, check.Timeout, 2, 120, $"{path}.timeout");
        CheckRange(check.HasRetries, check.Retries, 1, 10, $"{path}.retries");
        CheckRange(check.HasStartPeriod, check.StartPeriod, 0, 300, $"{path}.startPeriod");
    }

    private static void ValidateMisc(ContainerDefinition container, string path)
    {
        var ulimitNames = new HashSet<string>(StringComparer.Ordinal);
        for (var j = 0; j < container.Ulimits.Count; j++)
        {
            var ulimit = container.Ulimits[j];
            if (!ulimitNames.Add(ulimit.Name))
            {
                throw EcsException.Client($"{path}.ulimits[{j}].name", $"'{ulimit.Name}' is set more than once.");
            }

            if (ulimit.SoftLimit > ulimit.HardLimit)
            {
                throw EcsException.Client($"{path}.ulimits[{j}].softLimit", $"must not exceed hardLimit ({ulimit.SoftLimit} > {ulimit.HardLimit}).");
            }
        }

        for (var j = 0; j < container.Environment.Count; j++)
        {
            var name = container.Environment[j].Name;
            if (string.IsNullOrEmpty(name) || name.Contains('='))
            {
                throw EcsException.Client($"{path}.environment[{j}].name", "is required and must not contain '='.");
            }
        }

        for (var j = 0; j < container.SystemControls.Count; j++)
        {
            if (string.IsNullOrEmpty(container.SystemControls[j].Namespace))
            {
                throw EcsException.Client($"{path}.systemControls[{j}].namespace", "is required (e.g. net.core.somaxconn).");
            }
        }

        if (container.LinuxParameters is { } linux)
        {
            for (var j = 0; j < linux.Tmpfs.Count; j++)
            {
                if (linux.Tmpfs[j].Size <= 0)
                {
                    throw EcsException.Client($"{path}.linuxParameters.tmpfs[{j}].size", $"must be a positive number of MiB (got {linux.Tmpfs[j].Size}).");
                }
            }

            if (linux.HasSharedMemorySize && linux.SharedMemorySize <= 0)
            {
                throw EcsException.Client($"{path}.linuxParameters.sharedMemorySize", $"must be a positive number of MiB (got {linux.SharedMemorySize}).");
            }
        }

        if (container.RestartPolicy is { HasRestartAttemptPeriod: true } restart)
        {
            CheckRange(true, restart.RestartAttemptPeriod, 60, 1800, $"{path}.restartPolicy.restartAttemptPeriod");
        }

        if (container.RestartPolicy is { } policy && policy.IgnoredExitCodes.Count > 50)
        {
            throw EcsException.Client($"{path}.restartPolicy.ignoredExitCodes", $"at most 50 exit codes are allowed (got {policy.IgnoredExitCodes.Count}).");
        }
    }

    private static void ValidatePortMappings(
        ContainerDefinition container, string path, string networkMode, Dictionary<(string Protocol, int Port), string> usedHostPorts)
    {
        for (var j = 0; j < container.PortMappings.Count; j++)
        {
            var mapping = container.PortMappings[j];
            var field = $"{path}.portMappings[{j}]";
            if (mapping.HasContainerPortRange)
            {
                ValidatePortRange(mapping, field, networkMode);
                continue;
            }

            if (!mapping.HasContainerPort)
            {
                throw EcsException.Client($"{field}.containerPort", "is required unless containerPortRange is given.");
            }

            CheckRange(true, mapping.ContainerPort, 1, 65535, $"{field}.containerPort");
            if (mapping.HasHostPort)
            {
                CheckRange(true, mapping.HostPort, 0, 65535, $"{field}.hostPort");
            }

            if (networkMode is "awsvpc" or "host" && mapping.HasHostPort && mapping.HostPort != 0 && mapping.HostPort != mapping.ContainerPort)
            {
                throw EcsException.Client($"{field}.hostPort", $"with networkMode {networkMode}, hostPort must be omitted or equal to containerPort ({mapping.ContainerPort}), got {mapping.HostPort}.");
            }

            if (networkMode == "none")
            {
                throw EcsException.Client(field, "port mappings are not supported with networkMode none.");
            }

            var hostPort = networkMode is "awsvpc" or "host" ? mapping.ContainerPort : mapping.HostPort;
            var protocol = mapping.HasProtocol ? mapping.Protocol : "tcp";
            if (hostPort != 0 && !usedHostPorts.TryAdd((protocol, hostPort), field))
            {
                throw EcsException.Client($"{field}.hostPort", $"host port {hostPort}/{protocol} is already used by {usedHostPorts[(protocol, hostPort)]}.");
            }
        }
    }

    private static void ValidatePortRange(PortMapping mapping, string field, string networkMode)
    {
        if (networkMode is not ("bridge" or "awsvpc"))
        {
            throw EcsException.Client($"{field}.containerPortRange", "port ranges are only supported with networkMode bridge or awsvpc.");
        }

        if (mapping.HasContainerPort || mapping.HasHostPort)
        {
            throw EcsException.Client($"{field}.containerPortRange", "containerPort and hostPort must not be set together with containerPortRange.");
        }

        var bounds = mapping.ContainerPortRange.Split('-');
        if (bounds.Length != 2 || !int.TryParse(bounds[0], out var low) || !int.TryParse(bounds[1], out var high) || low < 1 || high > 65535 || low >= high)
        {
            throw EcsException.Client($"{field}.containerPortRange", $"'{mapping.ContainerPortRange}' must look like 8000-8010, with 1 <= first < last <= 65535.");
        }
    }

    private static void CheckRange(bool present, long value, long min, long max, string field)
    {
        if (present && (value < min || value > max))
        {
            throw EcsException.Client(field, $"must be between {min} and {max} (got {value}).");
        }
    }
}
