using EcsLite.Agent.Docker;

namespace EcsLite.Agent.Tests;

public sealed class AgentMetricsTests
{
    [Theory]
    [InlineData("POST", "containers/create?name=ecs-web-1-app", "containers.create")]
    [InlineData("POST", "containers/0123abcd/start", "containers.start")]
    [InlineData("POST", "containers/0123abcd/stop?t=30", "containers.stop")]
    [InlineData("GET", "containers/0123abcd/json", "containers.inspect")]
    [InlineData("GET", "containers/json?all=true&filters=x", "containers.list")]
    [InlineData("DELETE", "containers/0123abcd?force=true&v=true", "containers.remove")]
    [InlineData("GET", "containers/0123abcd/logs?follow=1", "containers.logs")]
    [InlineData("POST", "images/create?fromImage=busybox&tag=latest", "images.pull")]
    [InlineData("GET", "images/registry.lan:5000/team/app:1.2/json", "images.inspect")]
    [InlineData("DELETE", "images/registry.lan:5000/team/app:1.2", "images.remove")]
    [InlineData("POST", "volumes/create", "volumes.create")]
    [InlineData("GET", "info", "info")]
    [InlineData("GET", "events?since=1", "events")]
    [InlineData("GET", "plugins", "other")]
    public void Docker_calls_are_named_by_a_bounded_set_of_operations(string method, string path, string operation) =>
        Assert.Equal(operation, AgentMetrics.DockerOperation(new HttpMethod(method), path));

    [Fact]
    public async Task Every_engine_call_is_timed_with_its_method_and_API_path()
    {
        var seen = new List<(HttpMethod Method, string Path, TimeSpan Elapsed)>();
        using var docker = DockerRuntime.Connect(observe: (method, path, elapsed) => seen.Add((method, path, elapsed)));
        await docker.CgroupDriverAsync(CancellationToken.None);
        var call = Assert.Single(seen);
        Assert.Equal((HttpMethod.Get, "info"), (call.Method, call.Path));
        Assert.True(call.Elapsed > TimeSpan.Zero);
    }
}
