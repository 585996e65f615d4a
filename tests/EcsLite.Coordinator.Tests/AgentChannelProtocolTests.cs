using System.Net;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Grpc.Core;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The coordinator's end of the agent channel, spoken to directly by hosts enrolled with the fixture's
/// join token (each call presents its host's client certificate): bad hellos, garbage, duplicate connections.
/// </summary>
public class AgentChannelProtocolTests(CoordinatorFixture fixture) : IClassFixture<CoordinatorFixture>
{
    /// <summary>A newly enrolled host's channel.</summary>
    private async Task<AgentChannel.AgentChannelClient> HostAsync(string cluster = "default") =>
        new((await fixture.Coordinator.EnrollAsync(cluster: cluster)).Channel);

    private static AgentHello Hello(string arn = "", string cluster = "default", int cpu = 2048, int memory = 2000)
    {
        var hello = new AgentHello { ContainerInstanceArn = arn, Cluster = cluster, Hostname = "host-1", VersionInfo = new EcsLite.Api.V1.VersionInfo { AgentVersion = "test" } };
        hello.RegisteredResources.Add(new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = cpu });
        hello.RegisteredResources.Add(new Resource { Name = "MEMORY", Type = "INTEGER", IntegerValue = memory });
        return hello;
    }

    /// <summary>Sends one hello (as a new host, unless <paramref name="host"/> is given) and returns the welcome, keeping the stream open.</summary>
    private async Task<(AsyncDuplexStreamingCall<AgentMessage, CoordinatorMessage> Call, Welcome Welcome)> JoinAsync(AgentHello hello, AgentChannel.AgentChannelClient? host = null)
    {
        var call = (host ?? await HostAsync(hello.Cluster)).Connect();
        await call.RequestStream.WriteAsync(new AgentMessage { Hello = hello });
        Assert.True(await call.ResponseStream.MoveNext());
        var welcome = call.ResponseStream.Current.Welcome;
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.True(call.ResponseStream.Current.DesiredTasks.Full);
        return (call, welcome);
    }

    private static async Task<RpcException> RefusedAsync(AgentChannel.AgentChannelClient host, AgentMessage first)
    {
        using var call = host.Connect();
        await call.RequestStream.WriteAsync(first);
        return await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext());
    }

    private async Task<(int Instances, long Revision)> SnapshotAsync()
    {
        var list = await fixture.Coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest { Cluster = "default" });
        var clusters = await fixture.Coordinator.Ecs.ListClustersAsync(new ListClustersRequest());
        return (list.ContainerInstanceArns.Count, clusters.ClusterArns.Count);
    }

    [Fact]
    public async Task Welcome_names_the_instance_and_the_heartbeat_interval_and_acks_are_accepted()
    {
        var (call, welcome) = await JoinAsync(Hello());
        using (call)
        {
            Assert.StartsWith("arn:aws:ecs:local:000000000000:container-instance/default/", welcome.ContainerInstanceArn, StringComparison.Ordinal);
            Assert.Equal(TimeSpan.FromSeconds(2), welcome.HeartbeatInterval.ToTimeSpan());
            await call.RequestStream.WriteAsync(new AgentMessage { Ack = new Acknowledgement { Sequence = 1 } });
            await call.RequestStream.WriteAsync(new AgentMessage { Heartbeat = new AgentHeartbeat { Usage = new HostUsage { CpuPercent = 3 } } });
            var described = await fixture.Coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { welcome.ContainerInstanceArn } });
            Assert.True(described.ContainerInstances[0].AgentConnected);
        }
    }

    [Theory]
    [InlineData("not-an-arn")]
    [InlineData("arn:aws:ecs:local:000000000000:container-instance/default/0000")]
    [InlineData("arn:aws:ecs:local:000000000000:container-instance/elsewhere/0000")]
    public async Task A_hello_naming_an_instance_other_than_the_certificates_is_refused_and_changes_nothing(string arn)
    {
        var host = await HostAsync();
        var before = await SnapshotAsync();
        var error = await RefusedAsync(host, new AgentMessage { Hello = Hello(arn) });
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("cannot speak for", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(before, await SnapshotAsync());
    }

    [Fact]
    public async Task A_hello_naming_a_cluster_that_does_not_exist_is_refused()
    {
        var host = await HostAsync();
        var error = await RefusedAsync(host, new AgentMessage { Hello = Hello("", "no-such-cluster") });
        Assert.Equal("ClusterNotFoundException", error.Trailers.GetValue("ecs-error-type"));
        Assert.Equal("hello.cluster", error.Trailers.GetValue("ecs-field"));
    }

    [Fact]
    public async Task A_host_enrolled_in_another_cluster_cannot_join_this_one()
    {
        await fixture.Coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = "other" });
        var host = await HostAsync("other");
        var (call, welcome) = await JoinAsync(Hello(cluster: "other"), host);
        call.Dispose();
        var before = await SnapshotAsync();
        var error = await RefusedAsync(host, new AgentMessage { Hello = Hello(welcome.ContainerInstanceArn, "default") });
        Assert.Contains("belongs to cluster 'other'", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(before, await SnapshotAsync());
    }

    [Theory]
    [InlineData(0, 2000)]
    [InlineData(2048, 0)]
    [InlineData(1_000_000_000, 2000)]
    [InlineData(2048, int.MaxValue)]
    public async Task Absurd_resources_are_refused(int cpu, int memory)
    {
        var host = await HostAsync();
        var before = await SnapshotAsync();
        var error = await RefusedAsync(host, new AgentMessage { Hello = Hello(cpu: cpu, memory: memory) });
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith("hello.registeredResources[", error.Trailers.GetValue("ecs-field"), StringComparison.Ordinal);
        Assert.Equal(before, await SnapshotAsync());
    }

    [Fact]
    public async Task A_stream_that_does_not_start_with_hello_is_refused()
    {
        var error = await RefusedAsync(await HostAsync(), new AgentMessage { Heartbeat = new AgentHeartbeat() });
        Assert.Equal("hello", error.Trailers.GetValue("ecs-field"));
    }

    [Fact]
    public async Task A_garbled_stream_is_refused_and_changes_nothing()
    {
        var enrolled = await fixture.Coordinator.EnrollAsync();
        var before = await SnapshotAsync();
        using var http = new HttpClient(CoordinatorProcess.TrustingHandler(fixture.Coordinator.CaFile, enrolled.Certificate)) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        // A gRPC frame (uncompressed, length 6) whose payload is not a valid AgentMessage.
        byte[] frame = [0, 0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{fixture.Coordinator.Address}/ecslite.v1.AgentChannel/Connect") { Content = new ByteArrayContent(frame), Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TE.ParseAdd("trailers");
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var status = response.TrailingHeaders.Concat(response.Headers).Where(h => h.Key == "grpc-status").SelectMany(h => h.Value).ToList();

        Assert.True(status.Count == 1 && status[0] != "0", $"HTTP {(int)response.StatusCode}, grpc-status [{string.Join(",", status)}]");
        Assert.Equal(before, await SnapshotAsync());
    }

    [Fact]
    public async Task A_second_connection_claiming_the_same_instance_replaces_the_first()
    {
        var host = await HostAsync();
        var (first, welcome) = await JoinAsync(Hello(), host);
        using (first)
        {
            var (second, again) = await JoinAsync(Hello(welcome.ContainerInstanceArn), host);
            using (second)
            {
                Assert.Equal(welcome.ContainerInstanceArn, again.ContainerInstanceArn);
                var error = await Assert.ThrowsAsync<RpcException>(async () => await first.ResponseStream.MoveNext());
                Assert.Contains("replaced by a newer connection", error.Status.Detail, StringComparison.Ordinal);

                var described = await fixture.Coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest { ContainerInstances = { welcome.ContainerInstanceArn } });
                Assert.True(described.ContainerInstances[0].AgentConnected, "the replaced stream must not mark the instance disconnected");
            }
        }
    }
}
