using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Security;
using EcsLite.Coordinator.State;
using EcsLite.Security;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// On a coordinator that follows the leader of an etcd store: a call that changes something goes to the leader,
/// as the caller this coordinator authenticated; reads of what the store holds are answered here. The leader checks the caller's policies itself, and
/// takes the caller's name only from a coordinator: a client certificate of the cluster CA that names one
/// (<see cref="ClusterCertificates.IssueCoordinator"/>). Its answer and its errors go back unchanged.
/// </summary>
public sealed class LeaderForwarder(CoordinatorRole role, ClusterStateMachine state, ClusterCertificates certificates, IOptions<CoordinatorOptions> options) : Interceptor, IDisposable
{
    /// <summary>The caller a forwarded call is made for (a principal's ARN), believed only from a coordinator's certificate.</summary>
    public const string ForwardedFor = "ecslite-forwarded-for";

    /// <summary>Sent by a follower with every call it forwards: the leader answers with <see cref="RevisionTrailer"/>.</summary>
    public const string ForwardedBy = "ecslite-forwarded-by";

    /// <summary>The store revision the leader's state held when it answered: the follower answers once its own reads hold it.</summary>
    public const string RevisionTrailer = "ecslite-revision";

    /// <summary>How long a follower waits for its reads to show a forwarded change before answering anyway.</summary>
    internal static readonly TimeSpan CatchUpWait = TimeSpan.FromSeconds(5);

    /// <summary>How long a change waits for a leader (an election: a lease's time to live and a load).</summary>
    internal static readonly TimeSpan LeaderWait = TimeSpan.FromSeconds(10);

    private static readonly Dictionary<string, MethodDescriptor> Methods = new FileDescriptor[]
    {
        EcsReflection.Descriptor, SchedulerReflection.Descriptor, IamReflection.Descriptor, SecretsReflection.Descriptor,
        LogsReflection.Descriptor, EnrollmentReflection.Descriptor,
    }.SelectMany(f => f.Services).SelectMany(s => s.Methods).ToDictionary(m => $"/{m.Service.FullName}/{m.Name}", StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly Lazy<X509Certificate2> _certificate = new(() => certificates.IssueCoordinator(DateTimeOffset.UtcNow));

    /// <summary>
    /// Whether a follower sends the call to the leader: every change; secrets (their values are read where they
    /// are kept current for the agents). A read of the cluster state, IAM, join tokens or schedules, the event
    /// stream, and the agents' logs (<see cref="Agents.AgentLogs"/>) are answered where they arrive.
    /// </summary>
    public static bool Forwarded(string method)
    {
        if (!Methods.TryGetValue(method, out var descriptor))
        {
            return false; // the agent channel, the event stream, health and reflection: answered here
        }

        var name = descriptor.Name;
        return descriptor.Service.FullName switch
        {
            "ecslite.v1.TaskLogs" or "ecslite.v1.CloudWatchLogs" => false,
            "ecslite.v1.Secrets" => true,
            "ecslite.v1.Enrollment" => name == "Enroll",
            _ => !(name.StartsWith("Describe", StringComparison.Ordinal) || name.StartsWith("List", StringComparison.Ordinal) || name.StartsWith("Get", StringComparison.Ordinal)),
        };
    }

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (role.IsLeader || !Forwarded(context.Method) || await LeaderAsync(context) is not { } leader)
        {
            var answer = await continuation(request, context);
            if (role.IsLeader && context.RequestHeaders.GetValue(ForwardedBy) is not null)
            {
                context.ResponseTrailers.Add(RevisionTrailer, state.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            return answer;
        }

        var (method, invoker) = Prepare<TRequest, TResponse>(leader, context);
        try
        {
            // Read-your-writes through a follower: what the caller changed is in what it reads here next.
            using var call = invoker.AsyncUnaryCall(method, null, Options(context), request);
            var response = await call.ResponseAsync;
            if (long.TryParse(call.GetTrailers().GetValue(RevisionTrailer), out var revision))
            {
                await state.WaitForRevisionAsync(revision, CatchUpWait, context.CancellationToken);
            }

            return response;
        }
        catch (RpcException e)
        {
            throw Relayed(e, leader);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (role.IsLeader || !Forwarded(context.Method) || await LeaderAsync(context) is not { } leader)
        {
            await continuation(request, responseStream, context);
            return;
        }

        var (method, call) = Prepare<TRequest, TResponse>(leader, context);
        try
        {
            using var streaming = call.AsyncServerStreamingCall(method, null, Options(context), request);
            await foreach (var response in streaming.ResponseStream.ReadAllAsync(context.CancellationToken))
            {
                await responseStream.WriteAsync(response, context.CancellationToken);
            }
        }
        catch (RpcException e)
        {
            throw Relayed(e, leader);
        }
    }

    private async Task<LeaderRecord?> LeaderAsync(ServerCallContext context)
    {
        try
        {
            return await role.LeaderAsync(LeaderWait, context.CancellationToken);
        }
        catch (EcsException e)
        {
            throw EcsErrorInterceptor.ToRpc(e);
        }
    }

    /// <summary>The call as the leader takes it: the same method and message, for the caller this coordinator authenticated.</summary>
    private (Method<TRequest, TResponse> Method, CallInvoker Invoker) Prepare<TRequest, TResponse>(LeaderRecord leader, ServerCallContext context)
        where TRequest : class where TResponse : class
    {
        var descriptor = Methods[context.Method];
        var type = descriptor.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        var method = new Method<TRequest, TResponse>(type, descriptor.Service.FullName, descriptor.Name,
            Marshallers.Create<TRequest>(m => ((IMessage)m).ToByteArray(), bytes => (TRequest)descriptor.InputType.Parser.ParseFrom(bytes)),
            Marshallers.Create<TResponse>(m => ((IMessage)m).ToByteArray(), bytes => (TResponse)descriptor.OutputType.Parser.ParseFrom(bytes)));
        return (method, ChannelTo(leader.Address).CreateCallInvoker());
    }

    private CallOptions Options(ServerCallContext context)
    {
        var headers = new Metadata { { ForwardedBy, options.Value.AdvertisedUrl() } };
        if (CallAuthenticator.Caller(context) is { } caller)
        {
            headers.Add(ForwardedFor, caller.Arn);
        }

        return new CallOptions(headers, context.Deadline == DateTime.MaxValue ? null : context.Deadline, context.CancellationToken);
    }

    /// <summary>The leader's error as the caller's; a leader that cannot be reached is named.</summary>
    private static RpcException Relayed(RpcException e, LeaderRecord leader) => e.StatusCode == StatusCode.Unavailable && !e.Trailers.Any(t => t.Key == "ecs-error-type")
        ? EcsErrorInterceptor.ToRpc(new EcsException(EcsErrorType.ServerException,
            $"This coordinator follows {leader.Name}, which leads but does not answer ({e.Status.Detail}); try again once another leads."))
        : new RpcException(e.Status, e.Trailers);

    /// <summary>A channel to another coordinator, presenting this one's coordinator certificate.</summary>
    public GrpcChannel ChannelTo(string address) => _channels.GetOrAdd(address, a => GrpcChannel.ForAddress(a, new GrpcChannelOptions
    {
        MaxReceiveMessageSize = Agents.AgentChannelService.MaxMessageBytes,
        MaxSendMessageSize = null,
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(3),
            // Log streams through another coordinator last: pings find one whose host died without closing them.
            KeepAlivePingDelay = TimeSpan.FromSeconds(15),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            SslOptions = options.Value.InsecureTestMode ? new SslClientAuthenticationOptions() : new SslClientAuthenticationOptions
            {
                ClientCertificates = [_certificate.Value],
                // The leader's certificate must chain to this cluster's server anchor (the coordinators share the CA).
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => certificate is not null
                    && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
                    && ClusterCertificates.ChainsTo(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()), certificates.ServerAnchor, ClusterCertificates.ServerAuth),
            },
        },
    }));

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
    }
}
