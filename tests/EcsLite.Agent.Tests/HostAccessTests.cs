using EcsLite.Agent.Docker;
using EcsLite.Agent.Tasks;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>
/// A host that refuses privileged containers (ECS_DISABLE_PRIVILEGED) and restricts bind mounts
/// (ECSLITE_ALLOWED_HOST_PATHS), with the real agent and the real Docker engine: it says so in its
/// attributes, and a task that reaches it anyway stops with the reason, without a container made.
/// </summary>
public sealed class HostAccessTests : IAsyncLifetime
{
    private readonly string _allowed = CoordinatorProcess.TempDirectory("ecslite-allowed");
    private FakeCoordinator _coordinator = null!;
    private AgentProcess _agent = null!;

    public async Task InitializeAsync()
    {
        await LocalImages.EnsureAsync();
        _coordinator = await FakeCoordinator.StartAsync("hostaccess");
        _agent = AgentProcess.Start(_coordinator.Address, _coordinator.JoinToken, environment: new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s",
            ["ECS_DISABLE_PRIVILEGED"] = "true",
            ["ECSLITE_ALLOWED_HOST_PATHS"] = _allowed,
        });
        await _agent.WaitJoinedAsync();
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _coordinator.DisposeAsync();
        await ProcessRunner.RemoveContainersAsync([_coordinator.InstanceArn]);
        Directory.Delete(_allowed, recursive: true);
    }

    [Fact]
    public void The_hello_offers_no_privileged_containers_and_names_the_allowed_paths()
    {
        var attributes = _coordinator.LastHello!.Attributes;
        Assert.DoesNotContain(attributes, a => a.Name == HostAccess.PrivilegedCapability);
        Assert.Contains(attributes, a => a.Name == "ecs.capability.task-eni"); // the other capabilities are still there
        Assert.Equal(_allowed, attributes.Single(a => a.Name == HostAccess.AllowedHostPathsAttribute).Value);
    }

    [Theory]
    [InlineData("privileged", "privileged containers are disabled on this host (ECS_DISABLE_PRIVILEGED=true)")]
    [InlineData("root", "the host path / is not allowed on this host")]
    [InlineData("dotdot", "is not allowed on this host")]
    [InlineData("link", "is not allowed on this host")]
    [InlineData("device", "the host path /dev/mem is not allowed on this host")]
    public async Task A_refused_task_stops_with_the_reason_and_no_container_is_made(string kind, string reason)
    {
        // A link inside the allowed directory that leads out of it: the path is allowed as written, not as resolved.
        File.CreateSymbolicLink(Path.Combine(_allowed, "escape"), "/etc");
        var (volume, container) = kind switch
        {
            "privileged" => ("", "\"privileged\": true"),
            "root" => ("""{ "name": "v", "host": { "sourcePath": "/" } }""", """ "mountPoints": [{ "sourceVolume": "v", "containerPath": "/host" }] """),
            "dotdot" => ($$"""{ "name": "v", "host": { "sourcePath": "{{_allowed}}/../../etc" } }""", """ "mountPoints": [{ "sourceVolume": "v", "containerPath": "/host" }] """),
            "link" => ($$"""{ "name": "v", "host": { "sourcePath": "{{_allowed}}/escape" } }""", """ "mountPoints": [{ "sourceVolume": "v", "containerPath": "/host" }] """),
            _ => ("", """ "linuxParameters": { "devices": [{ "hostPath": "/dev/mem" }] } """),
        };
        var definition = JsonParser.Default.Parse<TaskDefinition>($$"""
            {
              "family": "refused-{{kind}}", "revision": 1,
              "volumes": [{{volume}}],
              "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "300"], {{container}} }]
            }
            """);
        var arn = $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}";
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        var app = Assert.Single(stopped.Containers);
        Assert.StartsWith("CannotCreateContainerError: ", app.Reason, StringComparison.Ordinal);
        Assert.Contains(reason, app.Reason, StringComparison.Ordinal);
        using var docker = DockerRuntime.Connect();
        Assert.Empty(await docker.ListOwnedAsync(_coordinator.InstanceArn, default));
    }

    [Fact]
    public async Task An_allowed_path_is_mounted()
    {
        await File.WriteAllTextAsync(Path.Combine(_allowed, "greeting"), "hello from the host");
        var definition = JsonParser.Default.Parse<TaskDefinition>($$"""
            {
              "family": "allowed-path", "revision": 1,
              "volumes": [{ "name": "v", "host": { "sourcePath": "{{_allowed}}" } }],
              "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32,
                "mountPoints": [{ "sourceVolume": "v", "containerPath": "/host", "readOnly": true }],
                "command": ["sh", "-c", "grep -q 'hello from the host' /host/greeting"] }]
            }
            """);
        var arn = $"arn:aws:ecs:local:000000000000:task/default/{Guid.NewGuid():N}";
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(60));
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal(0, Assert.Single(stopped.Containers).ExitCode);
    }

    [Fact]
    public async Task A_real_coordinator_places_no_task_on_a_host_that_would_refuse_it()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.Start(coordinator.Address, coordinator.JoinToken, environment: new Dictionary<string, string>
        {
            ["ECS_DISABLE_PRIVILEGED"] = "true",
            ["ECSLITE_ALLOWED_HOST_PATHS"] = _allowed,
        });
        await agent.WaitJoinedAsync();
        foreach (var (family, volume, extra, detail) in new[]
        {
            ("privileged", "", "\"privileged\": true,", $"it lacks the attribute {HostAccess.PrivilegedCapability}"),
            ("root-mount", """{ "name": "v", "host": { "sourcePath": "/" } }""", """ "mountPoints": [{ "sourceVolume": "v", "containerPath": "/host" }], """, "it does not allow the host path /"),
        })
        {
            await coordinator.Ecs.RegisterTaskDefinitionAsync(JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
                { "family": "{{family}}", "volumes": [{{volume}}],
                  "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, {{extra}} "command": ["true"] }] }
                """));
            var run = await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = family });
            Assert.Empty(run.Tasks);
            var failure = Assert.Single(run.Failures);
            Assert.Equal("ATTRIBUTE", failure.Reason);
            Assert.Contains(detail, failure.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Real_paths_resolve_every_link_and_keep_what_does_not_exist()
    {
        var inner = Directory.CreateDirectory(Path.Combine(_allowed, "inner")).FullName;
        File.CreateSymbolicLink(Path.Combine(_allowed, "relative"), "inner");
        File.CreateSymbolicLink(Path.Combine(_allowed, "absolute"), "/etc");
        Assert.Equal(inner + "/missing/file", HostPaths.Real(Path.Combine(_allowed, "relative", "missing", "file")));
        Assert.Equal("/etc/hostname", HostPaths.Real(Path.Combine(_allowed, "absolute", "hostname")));
        Assert.Equal("/etc", HostPaths.Real(_allowed + "/inner/../absolute"));
    }
}
