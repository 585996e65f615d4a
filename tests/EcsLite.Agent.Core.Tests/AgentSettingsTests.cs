namespace EcsLite.Agent.Core.Tests;

public class AgentSettingsTests
{
    private static readonly Dictionary<string, string> None = [];

    [Fact]
    public void Defaults_are_the_ECS_agents()
    {
        var settings = AgentSettings.From(None, None, []);
        Assert.Equal("default", settings.Cluster);
        Assert.Equal([22, 2375, 2376, 51678, 51679], settings.ReservedPorts);
        Assert.Empty(settings.ReservedPortsUdp);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.ContainerStopTimeout);
        Assert.Equal(TimeSpan.FromHours(3), settings.TaskCleanupWaitDuration);
        Assert.Equal("default", settings.ImagePullBehavior);
        Assert.False(settings.ImageCleanupDisabled);
        Assert.Equal(TimeSpan.FromMinutes(30), settings.ImageCleanupInterval);
        Assert.Equal(TimeSpan.FromHours(1), settings.ImageMinimumCleanupAge);
        Assert.Equal(5, settings.ImagesDeletedPerCycle);
        Assert.Equal([new Uri("https://127.0.0.1:7430")], settings.Coordinators);
        Assert.Null(settings.JoinToken);
        Assert.Equal((TimeSpan.FromHours(2), TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(3)),
            (settings.ImagePullTimeout, settings.ContainerCreateTimeout, settings.ContainerStartTimeout));
        Assert.Equal("unix:///var/run/docker.sock", settings.DockerEndpoint);
        Assert.Equal("127.0.0.1:51680", settings.MetricsListen?.ToString());
        Assert.Equal([22, 2375, 2376, 51678, 51679, 51680], settings.HostReservedPorts);
    }

    [Theory]
    [InlineData("off", null)]
    [InlineData("", null)]
    [InlineData("0.0.0.0:9100", "0.0.0.0:9100")]
    [InlineData("[::1]:9100", "[::1]:9100")]
    public void ECSLITE_METRICS_LISTEN_moves_the_metrics_or_turns_them_off(string value, string? listen)
    {
        var settings = AgentSettings.From(None, new Dictionary<string, string> { ["ECSLITE_METRICS_LISTEN"] = value }, []);
        Assert.Equal(listen, settings.MetricsListen?.ToString());
        Assert.Equal(listen is null ? [22, 2375, 2376, 51678, 51679] : [22, 2375, 2376, 9100, 51678, 51679], settings.HostReservedPorts);
    }

    [Theory]
    [InlineData("51680")]
    [InlineData("localhost:51680")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:70000")]
    public void A_metrics_address_that_is_not_ADDRESS_PORT_is_refused_naming_the_variable(string value)
    {
        var error = Assert.Throws<FormatException>(() => AgentSettings.From(None, new Dictionary<string, string> { ["ECSLITE_METRICS_LISTEN"] = value }, []));
        Assert.StartsWith($"ECSLITE_METRICS_LISTEN '{value}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ECS_variables_are_read_from_the_file_then_the_environment_then_the_command_line()
    {
        var file = AgentSettings.ParseConfigFile("""
            # as in /etc/ecs/ecs.config
            ECS_CLUSTER=from-file
            ECS_RESERVED_MEMORY=256
            ECS_RESERVED_PORTS=[8080, 22]
            ECS_RESERVED_PORTS_UDP="[53]"
            ECS_INSTANCE_ATTRIBUTES={"stack": "prod", "rack": "r2"}
            ECS_LOGLEVEL=debug
            ECS_CONTAINER_STOP_TIMEOUT=1m30s
            ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=10m
            ECS_IMAGE_PULL_BEHAVIOR=prefer-cached
            ECS_DISABLE_IMAGE_CLEANUP=true
            ECS_IMAGE_CLEANUP_INTERVAL=2h
            ECS_IMAGE_MINIMUM_CLEANUP_AGE=45m
            ECS_NUM_IMAGES_DELETE_PER_CYCLE=9
            ECS_IMAGE_PULL_TIMEOUT=10m
            ECS_CONTAINER_CREATE_TIMEOUT=1m
            ECS_CONTAINER_START_TIMEOUT=45s
            ECSLITE_COORDINATOR=10.0.0.1:7430, https://10.0.0.2:7430
            ECSLITE_JOIN_TOKEN=ECSLITE1:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef:e488f2f6-e686-4afb-8a04-ef6dfa6b2d10.abcdefghijklmnopqrstuvwxyz012345
            """);
        var environment = new Dictionary<string, string> { ["ECS_CLUSTER"] = "from-env", ["PATH"] = "/bin", ["DOCKER_HOST"] = "unix:///run/podman/podman.sock" };

        var fromEnvironment = AgentSettings.From(file, environment, []);
        Assert.Equal("from-env", fromEnvironment.Cluster);
        Assert.Equal(256, fromEnvironment.ReservedMemoryMiB);
        Assert.Equal([22, 2375, 2376, 8080, 51678, 51679], fromEnvironment.ReservedPorts);
        Assert.Equal([53], fromEnvironment.ReservedPortsUdp);
        Assert.Equal("r2", fromEnvironment.InstanceAttributes["rack"]);
        Assert.Equal("debug", fromEnvironment.LogLevel);
        Assert.Equal(TimeSpan.FromSeconds(90), fromEnvironment.ContainerStopTimeout);
        Assert.Equal(TimeSpan.FromMinutes(10), fromEnvironment.TaskCleanupWaitDuration);
        Assert.Equal("prefer-cached", fromEnvironment.ImagePullBehavior);
        Assert.True(fromEnvironment.ImageCleanupDisabled);
        Assert.Equal(TimeSpan.FromHours(2), fromEnvironment.ImageCleanupInterval);
        Assert.Equal(TimeSpan.FromMinutes(45), fromEnvironment.ImageMinimumCleanupAge);
        Assert.Equal(9, fromEnvironment.ImagesDeletedPerCycle);
        Assert.Equal((TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(45)),
            (fromEnvironment.ImagePullTimeout, fromEnvironment.ContainerCreateTimeout, fromEnvironment.ContainerStartTimeout));
        Assert.Equal("unix:///run/podman/podman.sock", fromEnvironment.DockerEndpoint);
        Assert.Equal([new Uri("https://10.0.0.1:7430"), new Uri("https://10.0.0.2:7430")], fromEnvironment.Coordinators);
        Assert.EndsWith(".abcdefghijklmnopqrstuvwxyz012345", fromEnvironment.JoinToken, StringComparison.Ordinal);

        var fromArgs = AgentSettings.From(file, environment, ["--cluster", "from-args", "--coordinator", "https://a:1", "--coordinator", "b:2", "--coordinator", "http://127.0.0.1:3", "--data-dir", "/srv/agent"]);
        Assert.Equal("from-args", fromArgs.Cluster);
        Assert.Equal([new Uri("https://a:1"), new Uri("https://b:2"), new Uri("http://127.0.0.1:3")], fromArgs.Coordinators);
        Assert.Equal("/srv/agent", fromArgs.DataDir);
    }

    [Theory]
    [InlineData("ECSLITE_COORDINATOR", "http://192.0.2.10:7430")]
    [InlineData("ECSLITE_JOIN_TOKEN", "K10abc::server:secret")]
    [InlineData("ECS_CLUSTER", "no spaces allowed")]
    [InlineData("ECS_RESERVED_MEMORY", "lots")]
    [InlineData("ECS_RESERVED_PORTS", "[70000]")]
    [InlineData("ECS_RESERVED_PORTS_UDP", "53")]
    [InlineData("ECS_INSTANCE_ATTRIBUTES", "stack=prod")]
    [InlineData("ECS_LOGLEVEL", "verbose")]
    [InlineData("ECS_CONTAINER_STOP_TIMEOUT", "30")]
    [InlineData("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", "3 hours")]
    [InlineData("ECS_IMAGE_PULL_BEHAVIOR", "sometimes")]
    [InlineData("ECS_DISABLE_IMAGE_CLEANUP", "yes please")]
    [InlineData("ECS_IMAGE_CLEANUP_INTERVAL", "often")]
    [InlineData("ECS_IMAGE_MINIMUM_CLEANUP_AGE", "1 day")]
    [InlineData("ECS_NUM_IMAGES_DELETE_PER_CYCLE", "0")]
    [InlineData("ECSLITE_COORDINATOR", "ftp://x:1")]
    [InlineData("ECS_CONTAINER_START_TIMEOUT", "0s")]
    [InlineData("ECS_IMAGE_PULL_TIMEOUT", "forever")]
    [InlineData("DOCKER_HOST", "/var/run/docker.sock")]
    public void A_bad_value_is_refused_naming_the_variable(string name, string value)
    {
        var error = Assert.Throws<FormatException>(() => AgentSettings.From(None, new Dictionary<string, string> { [name] = value }, []));
        Assert.Contains(name.StartsWith("ECSLITE", StringComparison.Ordinal) ? "coordinator" : name, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_options_and_malformed_config_lines_are_refused()
    {
        Assert.Throws<FormatException>(() => AgentSettings.From(None, None, ["--clsuter", "x"]));
        Assert.Throws<FormatException>(() => AgentSettings.From(None, None, ["--cluster"]));
        var error = Assert.Throws<FormatException>(() => AgentSettings.ParseConfigFile("ECS_CLUSTER=a\njust words\n"));
        Assert.Contains("line 2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("30s", 30_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("500ms", 500)]
    [InlineData("3h", 10_800_000)]
    [InlineData("1.5s", 1_500)]
    public void Go_durations(string text, int milliseconds) => Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), GoDuration.Parse(text, "X"));
}
