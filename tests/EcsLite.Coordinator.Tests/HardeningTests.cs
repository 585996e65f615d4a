using System.Text;
using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Reflection.V1Alpha;
using Xunit.Abstractions;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The real coordinator against input that used to hurt it: bytes that are not a message, a desired set
/// larger than a stream message, a start from /. Each case here failed before its fix.
/// </summary>
public sealed class HardeningTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Malformed_messages_on_every_method_of_every_service_are_InvalidArgument_and_never_a_logged_failure()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var methods = await MethodsAsync(coordinator);
        Assert.Contains("/ecslite.v1.Ecs/RunTask", methods);
        Assert.Contains("/ecslite.v1.AgentChannel/Connect", methods);
        Assert.Contains("/grpc.health.v1.Health/Check", methods);

        byte[][] malformed =
        [
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // a varint that never ends
            [0x0a, 0x05, 0x61],                                                 // a field longer than the message
            [0x0a, 0x02, 0xc3, 0x28, 0x12, 0x80],                               // bad UTF-8, then a truncated field
        ];
        var host = await coordinator.EnrollAsync(); // the agent channel's credential
        foreach (var method in methods)
        {
            foreach (var bytes in malformed)
            {
                var (status, message) = await RawGrpc.CallAsync(coordinator.Address, method, bytes, coordinator.AdminKey, certificate: host.Certificate);
                Assert.True(status == (int)StatusCode.InvalidArgument, $"{method} with {Convert.ToHexString(bytes)}: status {status} '{message}'");
                Assert.StartsWith("InvalidParameterException: ", message, StringComparison.Ordinal);
            }
        }

        var failures = coordinator.Output.Split('\n').Where(l => l.Contains(" fail: ", StringComparison.Ordinal) || l.StartsWith("   at ", StringComparison.Ordinal)).ToList();
        Assert.True(failures.Count == 0, $"logged as failures, or with a stack trace:\n{string.Join("\n", failures.Take(5))}");
    }

    [Fact]
    public async Task A_desired_set_larger_than_a_stream_message_reaches_the_agent_in_parts_without_a_reconnect()
    {
        // 100 tasks of a definition near ECS's 64 KiB on one host: about 6 MB, more than the 4 MB a gRPC
        // message could hold (the agent reconnected 162 times in 40 s, and its tasks never ran).
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, 1, cpu: 102_400, memoryMiB: 102_400);
        var register = new RegisterTaskDefinitionRequest { Family = "large", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16 } } };
        for (var i = 0; i < 30; i++)
        {
            register.ContainerDefinitions[0].Environment.Add(new EcsLite.Api.V1.KeyValuePair { Name = $"CERTIFICATE_{i}", Value = new string('c', 2000) });
        }

        await coordinator.Ecs.RegisterTaskDefinitionAsync(register);
        for (var call = 0; call < 10; call++)
        {
            var run = await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "large", Count = 10 });
            Assert.Equal(10, run.Tasks.Count);
        }

        var agent = fleet.Agents.Single();
        await Eventually.HoldsAsync(() => agent.Running("large") == 100, TimeSpan.FromSeconds(30), "100 large tasks on the host");

        // A reconnect's full set (all 100 at once) comes in parts; the host keeps every task and its stream.
        var sets = agent.SetsReceived;
        await agent.DieAsync();
        await agent.StartAsync();
        await Eventually.HoldsAsync(() => agent.SetsReceived - sets >= 6, TimeSpan.FromSeconds(30),
            $"the full set's parts (received {agent.SetsReceived - sets}, welcomed {agent.Welcomes} times)\n{coordinator.Output[^Math.Min(coordinator.Output.Length, 3000)..]}");
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(2, agent.Welcomes);
        Assert.Equal(100, agent.Running("large"));
        var listed = await coordinator.Ecs.ListTasksAsync(new ListTasksRequest { Family = "large", MaxResults = 100 });
        Assert.Equal(100, listed.TaskArns.Count);
    }

    [Fact]
    public async Task After_100000_tasks_started_and_stopped_the_store_is_back_within_twice_its_size()
    {
        // 41,000 starts and stops left a 110 MB store holding no task: deleted pages were never given back.
        await using var coordinator = await CoordinatorProcess.StartAsync(null, "--StoppedTaskRetention=00:00:01");
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, 10, cpu: 65_536, memoryMiB: 65_536, runFor: TimeSpan.FromMilliseconds(50));
        await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest { Family = "batch", ContainerDefinitions = { new ContainerDefinition { Name = "job", Image = "busybox", Memory = 16 } } });

        // A first 10,000 bring the store to its working size (its history of changes is kept, within bounds).
        await StartAndFinishAsync(coordinator, 10_000);
        var before = StoreBytes(coordinator);
        await StartAndFinishAsync(coordinator, 100_000);
        await Eventually.HoldsAsync(() => StoreBytes(coordinator) <= 2 * before, TimeSpan.FromSeconds(30),
            $"the store back within twice its size (before {before:N0} bytes, now {StoreBytes(coordinator):N0})");
        output.WriteLine($"store after 10,000 tasks: {before:N0} bytes; after 100,000 more: {StoreBytes(coordinator):N0} bytes");
    }

    /// <summary>Tasks of a batch job, 10 per RunTask on 16 callers; they end on their own and are purged after the retention.</summary>
    private static async Task StartAndFinishAsync(CoordinatorProcess coordinator, int tasks)
    {
        var calls = -1;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref calls) < tasks / 10)
            {
                var run = await coordinator.Ecs.RunTaskAsync(new RunTaskRequest { TaskDefinition = "batch", Count = 10 });
                Assert.True(run.Tasks.Count == 10, string.Join("; ", run.Failures.Select(f => $"{f.Reason} {f.Detail}")));
            }
        })));
        await Eventually.HoldsAsync(async () => (await coordinator.Ecs.ListTasksAsync(new ListTasksRequest { MaxResults = 1, DesiredStatus = "STOPPED" })).TaskArns.Count == 0
                && (await coordinator.Ecs.ListTasksAsync(new ListTasksRequest { MaxResults = 1 })).TaskArns.Count == 0,
            TimeSpan.FromSeconds(120), "every task finished and purged", TimeSpan.FromMilliseconds(500));
    }

    private static long StoreBytes(CoordinatorProcess coordinator) =>
        Directory.EnumerateFiles(coordinator.DataDir, "cluster-store.db*").Sum(f => new FileInfo(f).Length);

    /// <summary>Every method of every service the coordinator serves, as its reflection service lists them.</summary>
    internal static async Task<List<string>> MethodsAsync(CoordinatorProcess coordinator)
    {
        var reflection = new ServerReflection.ServerReflectionClient(coordinator.Channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.ResponseStream.MoveNext(default);
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        var methods = new List<string>();
        foreach (var service in services)
        {
            await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = service });
            await call.ResponseStream.MoveNext(default);
            var files = call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto.Select(FileDescriptorProto.Parser.ParseFrom);
            var descriptor = files.SelectMany(f => f.Service.Select(s => (f.Package, Service: s))).Single(s => $"{s.Package}.{s.Service.Name}" == service);
            methods.AddRange(descriptor.Service.Method.Select(m => $"/{service}/{m.Name}"));
        }

        await call.RequestStream.CompleteAsync();
        return methods;
    }

}
