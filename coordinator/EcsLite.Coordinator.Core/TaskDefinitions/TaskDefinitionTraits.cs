using EcsLite.Api.V1;

namespace EcsLite.Coordinator.Core.TaskDefinitions;

/// <summary>What ECS derives from a task definition at registration: compatibilities and requiresAttributes.</summary>
public static class TaskDefinitionTraits
{
    /// <summary>
    /// EC2 always; EXTERNAL (ECS Anywhere hosts) unless the task needs awsvpc; FARGATE when the task
    /// meets Fargate's rules (awsvpc, a valid task size, no privileged containers or host volumes).
    /// </summary>
    public static IEnumerable<string> Compatibilities(TaskDefinition definition, TaskSizeValue size)
    {
        yield return "EC2";
        var awsvpc = definition.NetworkMode == "awsvpc";
        if (!awsvpc)
        {
            yield return "EXTERNAL";
        }

        var fargate = awsvpc
            && size is { Cpu: { } cpu, Memory: { } memory } && TaskSize.IsFargateSize(cpu, memory)
            && !definition.ContainerDefinitions.Any(c => c.Privileged)
            && !definition.Volumes.Any(v => v.Host is { HasSourcePath: true } || v.DockerVolumeConfiguration is not null)
            && definition.PidMode != "host" && !definition.HasIpcMode;
        if (fargate)
        {
            yield return "FARGATE";
        }
    }

    /// <summary>
    /// The agent capabilities a host needs to run the task, named as ECS names them; placement
    /// (a later issue) matches them against the attributes each agent reports.
    /// </summary>
    public static IEnumerable<Api.V1.Attribute> RequiredAttributes(TaskDefinition definition, TaskSizeValue size)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        var containers = definition.ContainerDefinitions;
        if (definition.NetworkMode == "awsvpc")
        {
            names.Add("ecs.capability.task-eni");
        }

        if (size.Cpu is not null || size.Memory is not null)
        {
            names.Add("ecs.capability.task-cpu-mem-limit");
        }

        if (definition.HasTaskRoleArn)
        {
            names.Add("com.amazonaws.ecs.capability.task-iam-role");
        }

        foreach (var container in containers)
        {
            if (container.LogConfiguration is { } log)
            {
                names.Add($"com.amazonaws.ecs.capability.logging-driver.{log.LogDriver}");
                if (log.LogDriver == "awslogs" && definition.HasExecutionRoleArn)
                {
                    names.Add("ecs.capability.execution-role-awslogs");
                }
            }

            if (container.HealthCheck is not null)
            {
                names.Add("ecs.capability.container-health-check");
            }

            if (container.DependsOn.Count > 0)
            {
                names.Add("ecs.capability.container-ordering");
            }

            if (container.Privileged)
            {
                names.Add("com.amazonaws.ecs.capability.privileged-container");
            }

            if (container.Secrets.Any(s => s.ValueFrom.Contains(":ssm:", StringComparison.Ordinal) || !s.ValueFrom.StartsWith("arn:", StringComparison.Ordinal)))
            {
                names.Add("ecs.capability.secrets.ssm.environment-variables");
            }

            if (container.Secrets.Any(s => s.ValueFrom.Contains(":secretsmanager:", StringComparison.Ordinal)))
            {
                names.Add("ecs.capability.secrets.asm.environment-variables");
            }

            if (container.LogConfiguration?.SecretOptions.Any(s => s.ValueFrom.Contains(":ssm:", StringComparison.Ordinal) || !s.ValueFrom.StartsWith("arn:", StringComparison.Ordinal)) == true)
            {
                names.Add("ecs.capability.secrets.ssm.bootstrap.log-driver");
            }

            if (container.LogConfiguration?.SecretOptions.Any(s => s.ValueFrom.Contains(":secretsmanager:", StringComparison.Ordinal)) == true)
            {
                names.Add("ecs.capability.secrets.asm.bootstrap.log-driver");
            }

            if (container.RepositoryCredentials is { HasCredentialsParameter: true })
            {
                names.Add("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager");
            }

            if (container.RestartPolicy is { Enabled: true })
            {
                names.Add("ecs.capability.container-restart-policy");
            }
        }

        foreach (var volume in definition.Volumes)
        {
            if (volume.DockerVolumeConfiguration is { HasDriver: true } docker && docker.Driver != "local")
            {
                names.Add($"ecs.capability.docker-plugin.{docker.Driver}");
            }
        }

        return names.Select(name => new Api.V1.Attribute { Name = name });
    }
}
