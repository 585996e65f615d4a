// Assertions on the optional parts of Docker's create body: a missing part fails the assertion anyway.
#nullable disable warnings
using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>Container definitions as Docker create parameters (pure mapping, no Docker).</summary>
public class ContainerSpecTests
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));

    /// <summary>A corpus task definition as registered (a TaskDefinition has no tags member; they are kept beside it).</summary>
    private static TaskDefinition Definition(string name)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(TaskDefinitionCases.Corpus().Single(c => c.Name == name).Json)!.AsObject();
        node.Remove("tags");
        return Parser.Parse<TaskDefinition>(node.ToJsonString());
    }

    private static TaskContext Context(TaskDefinition definition, string? pause = null) => new(
        "arn:aws:ecs:local:000000000000:task/default/0123456789abcdef", definition.Family, 3, "default",
        "arn:aws:ecs:local:000000000000:container-instance/default/abc", definition.HasNetworkMode ? definition.NetworkMode : "bridge",
        [.. definition.Volumes], "127.0.0.1", PauseContainerId: pause);

    [Fact]
    public void A_containers_resolved_secrets_become_its_environment_and_log_options_and_no_other_containers()
    {
        var definition = Definition("wordpress-links.json");
        definition.ContainerDefinitions[0].LogConfiguration = new LogConfiguration { LogDriver = "gelf", Options = { ["gelf-address"] = "udp://127.0.0.1:12201" } };
        var task = Context(definition);
        ResolvedSecret Secret(string container, string kind, string name, string value) => new() { ContainerName = container, Kind = kind, Name = name, Value = value };
        List<ResolvedSecret> secrets =
        [
            Secret("wordpress", SecretKinds.Environment, "DB_PASSWORD", "hunter2"),
            Secret("wordpress", SecretKinds.LogOption, "tag", "from-a-secret"),
            Secret("mysql", SecretKinds.Environment, "MYSQL_ROOT_PASSWORD", "root-pw"),
            Secret("wordpress", SecretKinds.RegistryAuth, "password", "registry-pw"),
        ];
        var wordpress = ContainerSpec.Build(task, definition.ContainerDefinitions[0], null, secrets);

        Assert.Contains("DB_PASSWORD=hunter2", wordpress.Env);
        Assert.Contains("WORDPRESS_DB_HOST=mysql", wordpress.Env);
        Assert.DoesNotContain(wordpress.Env, e => e.Contains("root-pw", StringComparison.Ordinal) || e.Contains("registry-pw", StringComparison.Ordinal));
        Assert.Equal(("from-a-secret", "udp://127.0.0.1:12201"), (wordpress.HostConfig.LogConfig.Config["tag"], wordpress.HostConfig.LogConfig.Config["gelf-address"]));
        Assert.Equal("RegistryAuth { Username = u }", new RegistryAuth("u", "registry-pw").ToString());
    }

    [Fact]
    public void Labels_name_command_environment_and_resources()
    {
        var definition = Definition("wordpress-links.json");
        var task = Context(definition);
        var names = definition.ContainerDefinitions.ToDictionary(c => c.Name, c => ContainerSpec.Name(task, c));
        var wordpress = ContainerSpec.Build(task, definition.ContainerDefinitions[0], names);

        Assert.Equal("ecs-wordpress-3-wordpress-0123456789abcdef", wordpress.Name);
        Assert.Equal(task.TaskArn, wordpress.Labels[ContainerSpec.TaskArnLabel]);
        Assert.Equal("wordpress", wordpress.Labels[ContainerSpec.ContainerNameLabel]);
        Assert.Equal(task.ContainerInstanceArn, wordpress.Labels[ContainerSpec.InstanceLabel]);
        Assert.Contains("WORDPRESS_DB_HOST=mysql", wordpress.Env);
        Assert.Equal(500L * 1024 * 1024, wordpress.HostConfig.Memory);
        Assert.Equal(10, wordpress.HostConfig.CPUShares);
        Assert.Equal(["ecs-wordpress-3-mysql-0123456789abcdef:mysql"], wordpress.HostConfig.Links);
        var binding = Assert.Single(wordpress.HostConfig.PortBindings["80/tcp"]);
        Assert.Equal(("127.0.0.1", "80"), (binding.HostIP, binding.HostPort));
    }

    [Fact]
    public void Linux_parameters_ulimits_sysctls_and_health_check()
    {
        var definition = Definition("linux-parameters.json");
        var postgres = ContainerSpec.Build(Context(definition), definition.ContainerDefinitions[0]);
        var host = postgres.HostConfig;

        Assert.Equal(["SYS_NICE", "IPC_LOCK"], host.CapAdd);
        Assert.Equal(["NET_RAW"], host.CapDrop);
        Assert.True(host.Init);
        Assert.Equal(256L * 1024 * 1024, host.ShmSize);
        Assert.Equal("rw,noexec,size=64m", host.Tmpfs["/run/postgresql"]);
        Assert.Equal(("/dev/fuse", "rw"), (host.Devices[0].PathOnHost, host.Devices[0].CgroupPermissions));
        Assert.Equal((65536L, 65536L), (host.Ulimits[0].Soft, host.Ulimits[0].Hard));
        Assert.Equal("1024", host.Sysctls["net.core.somaxconn"]);
        Assert.Equal(["no-new-privileges"], host.SecurityOpt);
        Assert.Equal(1024L * 1024 * 1024, host.MemoryReservation);

        var ordered = Definition("ordered-startup.json");
        var cache = ContainerSpec.Build(Context(ordered), ordered.ContainerDefinitions[1]);
        Assert.Equal(["CMD-SHELL", "redis-cli ping || exit 1"], cache.Healthcheck.Test);
        Assert.Equal(TimeSpan.FromSeconds(10), cache.Healthcheck.Interval);
        Assert.Equal(3, cache.Healthcheck.Retries);
    }

    [Fact]
    public void Volumes_bind_host_paths_and_name_docker_volumes_by_scope()
    {
        var definition = Definition("volumes.json");
        var task = Context(definition);
        var ingest = ContainerSpec.Build(task, definition.ContainerDefinitions[0]);
        Assert.Equal(
            ["/srv/media/incoming:/data/incoming", "ecs-media-processing-3-scratch-0123456789abcdef:/scratch", "shared-cache:/cache"],
            ingest.HostConfig.Binds);
        var transcode = ContainerSpec.Build(task, definition.ContainerDefinitions[1], new Dictionary<string, string> { ["ingest"] = "ecs-ingest" });
        Assert.Equal(["ecs-ingest:ro"], transcode.HostConfig.VolumesFrom);
    }

    [Fact]
    public void Network_modes_and_log_drivers()
    {
        var seed = Parser.Parse<TaskDefinition>(File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));
        var awsvpc = ContainerSpec.Build(Context(seed, "f00d"), seed.ContainerDefinitions[0]);
        Assert.Equal("container:f00d", awsvpc.HostConfig.NetworkMode);
        Assert.Null(awsvpc.HostConfig.PortBindings); // Docker refuses ports on a container joining another's namespace
        Assert.Null(awsvpc.ExposedPorts);
        Assert.Equal("json-file", awsvpc.HostConfig.LogConfig.Type);
        Assert.Equal(["sh", "-c"], awsvpc.Entrypoint);
        Assert.Throws<ArgumentException>(() => ContainerSpec.Build(Context(seed), seed.ContainerDefinitions[0]));

        // The pause container holds the namespace: it publishes the task's ports (hostPort = containerPort).
        var pause = ContainerSpec.Pause(Context(seed), seed.ContainerDefinitions, "ecslite/pause:1");
        Assert.Equal("bridge", pause.HostConfig.NetworkMode);
        Assert.Equal("80", pause.HostConfig.PortBindings!["80/tcp"][0].HostPort);
        Assert.Equal("127.0.0.1", pause.HostConfig.PortBindings["80/tcp"][0].HostIP);
        Assert.Equal(ContainerSpec.PauseContainerName, pause.Labels![ContainerSpec.ContainerNameLabel]);
        Assert.Equal("ecs-fargate-task-definition-3-internalecspause-0123456789abcdef", pause.Name);

        var exporter = Definition("node-exporter-host.json");
        var host = ContainerSpec.Build(Context(exporter), exporter.ContainerDefinitions[0]);
        Assert.Equal("host", host.HostConfig.NetworkMode);
        Assert.Null(host.HostConfig.PortBindings);
        Assert.Equal(["/:/host:ro"], host.HostConfig.Binds);
        Assert.True(host.HostConfig.ReadonlyRootfs);

        var drivers = Definition("log-drivers.json");
        var syslog = ContainerSpec.Build(Context(drivers), drivers.ContainerDefinitions[1]);
        Assert.Equal("syslog", syslog.HostConfig.LogConfig.Type);
        Assert.Equal("app", syslog.HostConfig.LogConfig.Config["tag"]);
    }

    [Fact]
    public void The_create_body_uses_the_Engine_APIs_names()
    {
        var definition = Definition("linux-parameters.json");
        var body = System.Text.Json.Nodes.JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(
            ContainerSpec.Build(Context(definition), definition.ContainerDefinitions[0]), DockerJson.Default.CreateContainerParameters))!.AsObject();
        var host = body["HostConfig"]!.AsObject();
        Assert.True(host["CpuShares"]!.GetValue<long>() >= 2);
        Assert.Equal(1024L * 1024 * 1024, host["MemoryReservation"]!.GetValue<long>());
        Assert.Equal("NET_RAW", host["CapDrop"]![0]!.GetValue<string>());
        Assert.Equal(65536L, host["Ulimits"]![0]!["Soft"]!.GetValue<long>());
        Assert.Null(body["Name"]); // a query parameter, not part of the body
        Assert.False(body.ContainsKey("NetworkingConfig")); // absent, not null

        var ordered = Definition("ordered-startup.json");
        var cache = System.Text.Json.Nodes.JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(
            ContainerSpec.Build(Context(ordered), ordered.ContainerDefinitions[1]), DockerJson.Default.CreateContainerParameters))!;
        Assert.Equal(10_000_000_000L, cache["Healthcheck"]!["Interval"]!.GetValue<long>()); // nanoseconds
    }
}
