using System.Collections.Concurrent;
using System.Threading.Channels;
using EcsLite.Api.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using System.Security.Cryptography;
using EcsLite.Security;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EcsLite.Testing;

/// <summary>
/// The coordinator's side of the agent channel and nothing else, over real gRPC on loopback: it welcomes
/// one agent, sends it the desired tasks a test asks for, and records every task state the agent reports.
/// For testing the agent's task handling before the coordinator places tasks itself. Like the real one
/// it is reached over TLS with a CA of its own: an agent joins it with <see cref="JoinToken"/> (Enroll
/// issues a certificate naming <see cref="InstanceArn"/>) and then connects with that certificate.
/// </summary>
public sealed class FakeCoordinator : IAsyncDisposable
{
    /// <summary>The container instance the agent is welcomed as (one per stand-in coordinator).</summary>
    public string InstanceArn { get; }

    private readonly WebApplication _app;
    private readonly Channel<CoordinatorMessage> _pushes = Channel.CreateUnbounded<CoordinatorMessage>();
    private readonly ConcurrentDictionary<ulong, Channel<LogChunk>> _logRequests = new();
    private readonly ConcurrentDictionary<string, DesiredTask> _wanted = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, List<TaskStateChange>> _reports = new(StringComparer.Ordinal);
    private long _sequence;
    private int _hellos;

    private readonly string _tlsDirectory = CoordinatorProcess.TempDirectory("ecslite-fake-ca");

    private FakeCoordinator(int port, string instanceId)
    {
        Port = port;
        InstanceArn = $"arn:aws:ecs:local:000000000000:container-instance/default/{instanceId}";
        Certificates = ClusterCertificates.LoadOrCreate(_tlsDirectory, ["localhost", "127.0.0.1"], DateTimeOffset.UtcNow);
        JoinToken = new JoinToken(Certificates.AnchorSha256, Guid.NewGuid().ToString(), RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyz0123456789", 32)).ToString();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenLocalhost(port, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            o.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = Certificates.Server,
                ServerCertificateChain = Certificates.ServerChain,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (certificate, _, _) => Certificates.IssuedClient(certificate),
            });
        }));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(this);
        _app = builder.Build();
        _app.MapGrpcService<Service>();
        _app.MapGrpcService<EnrollmentService>();
    }

    public int Port { get; }

    public string Address => $"https://127.0.0.1:{Port}";

    /// <summary>This stand-in's own CA and server certificate.</summary>
    public ClusterCertificates Certificates { get; }

    /// <summary>The one token agents join this stand-in with (any number of times).</summary>
    public string JoinToken { get; }

    /// <summary>How many times an agent enrolled (joined with the token).</summary>
    public int Enrollments => Volatile.Read(ref _enrollments);

    private int _enrollments;

    public static async Task<FakeCoordinator> StartAsync(string instanceId = "fakecoordinator")
    {
        var coordinator = new FakeCoordinator(CoordinatorProcess.FreePort(), instanceId);
        await coordinator._app.StartAsync();
        return coordinator;
    }

    /// <summary>Tells the agent to run (or stop) a task; also part of every full set sent on reconnect.</summary>
    public async Task WantAsync(string taskArn, string desiredStatus, TaskDefinition definition)
    {
        var task = new DesiredTask { TaskArn = taskArn, DesiredStatus = desiredStatus, TaskDefinition = definition };
        _wanted[taskArn] = task;
        await _pushes.Writer.WriteAsync(new CoordinatorMessage { DesiredTasks = new DesiredTaskSet { Full = false, Tasks = { task } } });
    }

    /// <summary>
    /// Asks the agent for a container's logs over the channel and yields the chunks it answers with,
    /// up to the one marked end; leaving early sends a LogCancel.
    /// </summary>
    public async IAsyncEnumerable<LogChunk> LogsAsync(LogRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        request.RequestId = (ulong)Interlocked.Increment(ref _sequence);
        var chunks = Channel.CreateUnbounded<LogChunk>();
        _logRequests[request.RequestId] = chunks;
        await _pushes.Writer.WriteAsync(new CoordinatorMessage { LogRequest = request }, cancellationToken);
        var ended = false;
        try
        {
            await foreach (var chunk in chunks.Reader.ReadAllAsync(cancellationToken))
            {
                ended = chunk.End;
                yield return chunk;
                if (ended)
                {
                    yield break;
                }
            }
        }
        finally
        {
            _logRequests.TryRemove(request.RequestId, out _);
            if (!ended)
            {
                _pushes.Writer.TryWrite(new CoordinatorMessage { LogCancel = new LogCancel { RequestId = request.RequestId } });
            }
        }
    }

    /// <summary>Stops wanting a task without saying so: only the next full desired set (on reconnect) leaves it out.</summary>
    public void Forget(string taskArn) => _wanted.TryRemove(taskArn, out _);

    /// <summary>How many times an agent said hello, and the tasks it reported in the last one.</summary>
    public int Hellos => Volatile.Read(ref _hellos);

    public IReadOnlyList<TaskStateChange> LastHelloTasks { get; private set; } = [];

    /// <summary>The last hello as the agent sent it (its attributes, resources and tasks).</summary>
    public AgentHello? LastHello { get; private set; }

    public IReadOnlyList<TaskStateChange> Reports(string taskArn)
    {
        var list = _reports.GetOrAdd(taskArn, _ => []);
        lock (list)
        {
            return [.. list];
        }
    }

    /// <summary>Waits for a report of the task that satisfies <paramref name="condition"/>.</summary>
    public async Task<TaskStateChange> WaitForAsync(string taskArn, Func<TaskStateChange, bool> condition, TimeSpan timeout)
    {
        TaskStateChange? found = null;
        try
        {
            await Eventually.HoldsAsync(() => (found = Reports(taskArn).LastOrDefault(condition)) is not null, timeout, $"a report of {taskArn} matching the condition");
        }
        catch (TimeoutException e)
        {
            // The reports as they are at the deadline, with each container's status, exit code and reason.
            var reports = Reports(taskArn).Select(r => $"{r.LastStatus}/{r.StopCode}/{r.StoppedReason} ["
                + string.Join(", ", r.Containers.Select(c => $"{c.ContainerName}: {c.LastStatus} {(c.HasExitCode ? $"{c.ExitCode}" : "-")} {c.Reason}")) + "]");
            throw new TimeoutException($"{e.Message}; reports: {string.Join(" | ", reports)}", e);
        }

        return found!;
    }

    public async ValueTask DisposeAsync()
    {
        _pushes.Writer.TryComplete();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_tlsDirectory, recursive: true);
    }

    private sealed class EnrollmentService(FakeCoordinator coordinator) : Enrollment.EnrollmentBase
    {
        public override Task<GetCertificateAuthorityResponse> GetCertificateAuthority(GetCertificateAuthorityRequest request, ServerCallContext context) =>
            Task.FromResult(new GetCertificateAuthorityResponse { CaCertificate = coordinator.Certificates.ServerAnchor.ExportCertificatePem() });

        public override Task<EnrollResponse> Enroll(EnrollRequest request, ServerCallContext context)
        {
            if (request.JoinToken != coordinator.JoinToken)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "joinToken: The join token is not valid"));
            }

            Interlocked.Increment(ref coordinator._enrollments);
            using var certificate = coordinator.Certificates.IssueClient(request.CertificateSigningRequest.ToByteArray(), coordinator.InstanceArn, DateTimeOffset.UtcNow);
            return Task.FromResult(new EnrollResponse
            {
                ContainerInstanceArn = coordinator.InstanceArn,
                Cluster = "default",
                Certificate = certificate.ExportCertificatePem(),
                CaCertificate = coordinator.Certificates.ServerAnchor.ExportCertificatePem(),
            });
        }
    }

    private sealed class Service(FakeCoordinator coordinator) : AgentChannel.AgentChannelBase
    {
        public override async Task Connect(IAsyncStreamReader<AgentMessage> requestStream, IServerStreamWriter<CoordinatorMessage> responseStream, ServerCallContext context)
        {
            if (context.GetHttpContext().Connection.ClientCertificate is not { } certificate || ClusterCertificates.InstanceOf(certificate) != coordinator.InstanceArn)
            {
                throw new RpcException(new Status(StatusCode.PermissionDenied, "no client certificate for " + coordinator.InstanceArn));
            }

            if (!await requestStream.MoveNext() || requestStream.Current.KindCase != AgentMessage.KindOneofCase.Hello)
            {
                return;
            }

            foreach (var task in requestStream.Current.Hello.Tasks)
            {
                coordinator.Record(task);
            }

            coordinator.LastHelloTasks = [.. requestStream.Current.Hello.Tasks];
            coordinator.LastHello = requestStream.Current.Hello;
            Interlocked.Increment(ref coordinator._hellos);

            await responseStream.WriteAsync(new CoordinatorMessage
            {
                Welcome = new Welcome { ContainerInstanceArn = coordinator.InstanceArn, Cluster = "default", HeartbeatInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) },
            });
            var full = new DesiredTaskSet { Sequence = (ulong)Interlocked.Increment(ref coordinator._sequence), Full = true };
            full.Tasks.Add(coordinator._wanted.Values);
            await responseStream.WriteAsync(new CoordinatorMessage { DesiredTasks = full });
            if (coordinator.DropAfterWelcome)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted, "the stream broke right after its welcome"));
            }

            var reading = Task.Run(async () =>
            {
                while (await requestStream.MoveNext(context.CancellationToken))
                {
                    if (requestStream.Current.KindCase == AgentMessage.KindOneofCase.TaskStateChange)
                    {
                        coordinator.Record(requestStream.Current.TaskStateChange);
                    }
                    else if (requestStream.Current.KindCase == AgentMessage.KindOneofCase.LogChunk
                        && coordinator._logRequests.TryGetValue(requestStream.Current.LogChunk.RequestId, out var chunks))
                    {
                        chunks.Writer.TryWrite(requestStream.Current.LogChunk);
                    }
                }
            });
            try
            {
                await foreach (var push in coordinator._pushes.Reader.ReadAllAsync(context.CancellationToken))
                {
                    if (push.DesiredTasks is { } desired)
                    {
                        desired.Sequence = (ulong)Interlocked.Increment(ref coordinator._sequence);
                    }

                    await responseStream.WriteAsync(push);
                }
            }
            catch (OperationCanceledException)
            {
            }

            await reading.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Ends every stream right after its welcome, as a message the agent cannot take would.</summary>
    public bool DropAfterWelcome { get; set; }

    /// <summary>Every report as it arrives (for timing without polling).</summary>
    public event Action<TaskStateChange>? Reported;

    private void Record(TaskStateChange change)
    {
        var list = _reports.GetOrAdd(change.TaskArn, _ => []);
        lock (list)
        {
            list.Add(change);
        }

        Reported?.Invoke(change);
    }
}
