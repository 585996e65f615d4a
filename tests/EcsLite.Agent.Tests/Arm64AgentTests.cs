using System.Runtime.InteropServices;
using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>
/// The arm64 agent a Raspberry Pi runs: the NativeAOT executable cross-built on this machine
/// (<c>packaging/build-agent.sh arm64</c>, which test.sh runs), under qemu-user with Debian's arm64 libc
/// where the machine is not arm64 itself. Against the real coordinator and the real Docker engine it
/// joins with a token as an instance whose <c>ecs.cpu-architecture</c> is arm64, and runs and stops a task.
/// </summary>
public sealed class Arm64AgentTests
{
    [Fact]
    public async Task The_arm64_agent_joins_as_an_arm64_instance_and_runs_a_task()
    {
        var executable = RepoPaths.NativeAgentFor("arm64");
        Assert.True(File.Exists(executable), $"{executable} is missing: run packaging/build-agent.sh arm64 (test.sh does)");
        IReadOnlyList<string>? qemu = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? null : ["qemu-aarch64-static"];
        await LocalImages.EnsureAsync();
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var agent = AgentProcess.StartBuild(executable, coordinator.Address, coordinator.JoinToken, new Dictionary<string, string>
        {
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached", // the images are local; nothing is pulled from outside
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s",
        }, qemu);

        // Emulated, the key generation and the two TLS handshakes of joining take seconds, not milliseconds.
        await agent.WaitJoinedAsync(TimeSpan.FromSeconds(120));
        var instance = (await coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { agent.ContainerInstanceArn } }))
            .ContainerInstances.Single();
        Assert.Equal("arm64", instance.Attributes.Single(a => a.Name == "ecs.cpu-architecture").Value);
        Assert.True(instance.AgentConnected);

        await coordinator.Ecs.RegisterTaskDefinitionAsync(JsonParser.Default.Parse<RegisterTaskDefinitionRequest>($$"""
            { "family": "on-arm64", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "600"] }] }
            """));
        var task = Assert.Single((await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "on-arm64" })).Tasks);
        Assert.Equal(instance.ContainerInstanceArn, task.ContainerInstanceArn);
        var running = await NativeAgentTests.DescribedAsync(coordinator, task.TaskArn, "RUNNING", TimeSpan.FromSeconds(90));
        var (_, state) = await ProcessRunner.RunAsync("docker", ["inspect", "--format", "{{.State.Running}}", running.Containers.Single().RuntimeId]);
        Assert.Equal("true", state.Trim());

        await coordinator.Ecs.StopTaskAsync(new StopTaskRequest { Task = task.TaskArn });
        var stopped = await NativeAgentTests.DescribedAsync(coordinator, task.TaskArn, "STOPPED", TimeSpan.FromSeconds(90));
        Assert.Equal("UserInitiated", stopped.StopCode);
        await agent.Process.StopAsync(TimeSpan.FromSeconds(20));

        using var docker = DockerRuntime.Connect();
        foreach (var owned in await docker.ListOwnedAsync(instance.ContainerInstanceArn, default))
        {
            await docker.RemoveAsync(owned.ID, default);
        }
    }
}
