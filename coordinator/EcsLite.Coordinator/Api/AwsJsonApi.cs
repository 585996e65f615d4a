using System.Security.Cryptography;
using System.Text;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Secrets;
using EcsLite.Coordinator.Security;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// The AWS JSON protocol (awsJson1.1) on the coordinator's TLS port, beside gRPC (HTTP/1.1, chosen by
/// ALPN): <c>POST /</c> with <c>X-Amz-Target: AmazonEC2ContainerServiceV20141113.ACTION</c> (ECS),
/// <c>AmazonSSM.ACTION</c> (parameters), <c>secretsmanager.ACTION</c> (secrets) or <c>Logs_20140328.ACTION</c>
/// (CloudWatch Logs over the agents' logs), signed with SigV4 by an
/// access key. It is an edge only: the body becomes the RPC's request message, and the same handler runs
/// behind the same checks (the request's rules and limits, the caller's policies, the audit log) as over
/// gRPC; the answer or the error goes back in AWS's JSON.
/// </summary>
public sealed partial class AwsJsonApi
{
    public const string ContentType = "application/x-amz-json-1.1";
    private const int MaxBody = Core.Validation.Limits.MaxRequestBytes;

    private readonly Dictionary<string, Operation> _operations = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StreamOperation> _streams = new(StringComparer.Ordinal);
    private readonly IamStore _iam;
    private readonly LeaderForwarder _forwarder;
    private readonly EcsErrorInterceptor _errors;
    private readonly CallAuthorizer _authorizer;
    private readonly TimeProvider _time;
    private readonly string _region;
    private readonly ILogger<AwsJsonApi> _logger;
    private readonly Observability.CoordinatorMetrics _metrics;

    /// <summary>One action: its gRPC method's full name, its request type, the SigV4 service it is signed for, and its handler.</summary>
    private sealed record Operation(string Method, MessageDescriptor Request, string SigningService, Func<IMessage, ServerCallContext, Task<IMessage>> Handler);

    /// <summary>A server-streaming RPC: each message it writes goes to the caller as a server-sent event.</summary>
    private sealed record StreamOperation(string Method, MessageDescriptor Request, ServerStreamingServerMethod<IMessage, IMessage> Handler);

    public AwsJsonApi(IServiceProvider services, IamStore iam, LeaderForwarder forwarder, EcsErrorInterceptor errors, CallAuthorizer authorizer, TimeProvider time, IOptions<CoordinatorOptions> options, Observability.CoordinatorMetrics metrics, ILogger<AwsJsonApi> logger)
    {
        _metrics = metrics;
        _iam = iam;
        _forwarder = forwarder;
        _errors = errors;
        _authorizer = authorizer;
        _time = time;
        _region = options.Value.Region;
        _logger = logger;

        // The handlers are the gRPC services' own, taken from their generated binders.
        Bind("AmazonEC2ContainerServiceV20141113", "ecs", EcsReflection.Descriptor.FindTypeByName<ServiceDescriptor>("Ecs"),
            binder => Ecs.BindService(binder, ActivatorUtilities.CreateInstance<EcsService>(services)), _ => true);
        var secrets = ActivatorUtilities.CreateInstance<SecretsService>(services);
        var secretsDescriptor = SecretsReflection.Descriptor.FindTypeByName<ServiceDescriptor>("Secrets");
        Bind("AmazonSSM", "ssm", secretsDescriptor, binder => global::EcsLite.Api.V1.Secrets.BindService(binder, secrets), m => m.Contains("Parameter", StringComparison.Ordinal));
        Bind("secretsmanager", "secretsmanager", secretsDescriptor, binder => global::EcsLite.Api.V1.Secrets.BindService(binder, secrets), m => m.Contains("Secret", StringComparison.Ordinal));
        Bind("Logs_20140328", "logs", LogsReflection.Descriptor.FindTypeByName<ServiceDescriptor>("CloudWatchLogs"),
            binder => CloudWatchLogs.BindService(binder, ActivatorUtilities.CreateInstance<CloudWatchLogsService>(services)), _ => true);

        // EcsLite's own streams (what the dashboard follows), under their gRPC names: POST /stream.
        BindStreams(EventsReflection.Descriptor.FindTypeByName<ServiceDescriptor>("Events"),
            binder => global::EcsLite.Api.V1.Events.BindService(binder, ActivatorUtilities.CreateInstance<EventsService>(services)));
        BindStreams(LogsReflection.Descriptor.FindTypeByName<ServiceDescriptor>("TaskLogs"),
            binder => TaskLogs.BindService(binder, ActivatorUtilities.CreateInstance<TaskLogsService>(services)));
    }

    private void BindStreams(ServiceDescriptor service, Action<ServiceBinderBase> bind)
    {
        var binder = new Binder();
        bind(binder);
        foreach (var (name, handler) in binder.Streams)
        {
            _streams[$"{service.FullName}.{name}"] = new StreamOperation($"/{service.FullName}/{name}", service.FindMethodByName(name).InputType, handler);
        }
    }

    private void Bind(string targetPrefix, string signingService, ServiceDescriptor service, Action<ServiceBinderBase> bind, Func<string, bool> include)
    {
        var binder = new Binder();
        bind(binder);
        foreach (var (name, handler) in binder.Handlers.Where(h => include(h.Key)))
        {
            _operations[$"{targetPrefix}.{name}"] = new Operation($"/{service.FullName}/{name}", service.FindMethodByName(name).InputType, signingService, handler);
        }
    }

    /// <summary>The actions this edge answers, as X-Amz-Target values.</summary>
    public IReadOnlyCollection<string> Targets => _operations.Keys;

    public async Task HandleAsync(HttpContext http)
    {
        var requestId = Guid.NewGuid().ToString();
        http.Response.Headers["x-amzn-RequestId"] = requestId;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        Operation? operation = null;
        var result = "OK";
        try
        {
            var target = http.Request.Headers["X-Amz-Target"].ToString();
            if (!_operations.TryGetValue(target, out operation))
            {
                throw new EcsException("UnknownOperationException", target.Length == 0 ? "X-Amz-Target is missing." : $"The operation {Core.Validation.CallerText.Quote(target)} is not known here.");
            }

            var body = await ReadBodyAsync(http);
            var caller = Authenticate(http, body, operation.SigningService);
            var emptyLists = new HashSet<string>(StringComparer.Ordinal);
            var request = AwsJson.Read(body, operation.Request, emptyLists);
            var context = new JsonCallContext(operation.Method, http);
            CallAuthenticator.Admit(context, caller);
            EcsService.SetEmptyLists(context, emptyLists);

            // The same chain as gRPC's: validation and ECS errors, then the policy check and audit, then the handler.
            var response = await _forwarder.UnaryServerHandler<IMessage, IMessage>(request, context, (r0, c0) => _errors.UnaryServerHandler<IMessage, IMessage>(r0, c0,
                (r, c) => _authorizer.UnaryServerHandler<IMessage, IMessage>(r, c, (r2, c2) => operation.Handler(r2, c2))));
            http.Response.StatusCode = 200;
            http.Response.ContentType = ContentType;
            await http.Response.Body.WriteAsync(AwsJson.Write(response), http.RequestAborted);
        }
        catch (EcsException e)
        {
            result = e.ErrorType;
            await ErrorAsync(http, e.ErrorType, e.Message);
        }
        catch (RpcException e)
        {
            (result, var message) = Error(e);
            await ErrorAsync(http, result, message);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The caller went away.
            result = nameof(StatusCode.Cancelled);
        }
        finally
        {
            // An unknown target is counted under "unknown", so a caller cannot make a series per made-up name.
            _metrics.ObserveCall(operation is null ? "unknown" : ApiActions.ActionOf(operation.Method), "json", result, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>
    /// POST /stream: a server-streaming RPC (X-Amz-Target: ecslite.v1.Events.WatchEvents or
    /// ecslite.v1.TaskLogs.GetTaskLogs, the body its request in JSON, signed with SigV4 for "ecs") through
    /// the same checks as gRPC; its messages come back as server-sent events, each "data: JSON". An error
    /// before the first message is answered as the JSON API answers one; after it, as an "error" event.
    /// </summary>
    public async Task HandleStreamAsync(HttpContext http)
    {
        StreamOperation? operation = null;
        var result = "OK";
        var started = false;
        try
        {
            var target = http.Request.Headers["X-Amz-Target"].ToString();
            if (!_streams.TryGetValue(target, out operation))
            {
                throw new EcsException("UnknownOperationException", target.Length == 0 ? "X-Amz-Target is missing." : $"The stream {Core.Validation.CallerText.Quote(target)} is not known here.");
            }

            var body = await ReadBodyAsync(http);
            var caller = Authenticate(http, body, "ecs");
            var request = AwsJson.Read(body, operation.Request, new HashSet<string>(StringComparer.Ordinal));
            var context = new JsonCallContext(operation.Method, http);
            CallAuthenticator.Admit(context, caller);
            var writer = new EventStreamWriter(http, () => started = true);
            await _forwarder.ServerStreamingServerHandler<IMessage, IMessage>(request, writer, context, (r0, w0, c0) => _errors.ServerStreamingServerHandler<IMessage, IMessage>(r0, w0, c0,
                (r, w, c) => _authorizer.ServerStreamingServerHandler<IMessage, IMessage>(r, w, c, operation.Handler)));
        }
        catch (Exception e) when (e is EcsException or RpcException && !http.RequestAborted.IsCancellationRequested)
        {
            var (type, message) = e is EcsException ecs ? (ecs.ErrorType, ecs.Message) : Error((RpcException)e);
            result = type;
            if (!started)
            {
                await ErrorAsync(http, type, message);
            }
            else
            {
                await http.Response.WriteAsync($"event: error\ndata: {ErrorJson(type, message)}\n\n");
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or RpcException && http.RequestAborted.IsCancellationRequested)
        {
            // The caller went away (closed the page, followed another task).
        }
        finally
        {
            _metrics.ObserveCall(operation is null ? "unknown" : ApiActions.ActionOf(operation.Method), "json", result, null);
        }
    }

    /// <summary>An RPC's error as the JSON API words it: ECS's error type and the message without it.</summary>
    private static (string Type, string Message) Error(RpcException e)
    {
        var type = e.Trailers.GetValue("ecs-error-type") ?? (e.StatusCode == StatusCode.Internal ? EcsErrorType.ServerException : EcsErrorType.ClientException);
        var prefix = type + ": ";
        return (type, e.Status.Detail.StartsWith(prefix, StringComparison.Ordinal) ? e.Status.Detail[prefix.Length..] : e.Status.Detail);
    }

    /// <summary>Writes each message as a server-sent event, flushed at once.</summary>
    private sealed class EventStreamWriter(HttpContext http, Action started) : IServerStreamWriter<IMessage>
    {
        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(IMessage message) => WriteAsync(message, http.RequestAborted);

        public async Task WriteAsync(IMessage message, CancellationToken cancellationToken)
        {
            if (!http.Response.HasStarted)
            {
                http.Response.StatusCode = 200;
                http.Response.ContentType = "text/event-stream";
                http.Response.Headers.CacheControl = "no-store";
                started();
            }

            await http.Response.Body.WriteAsync("data: "u8.ToArray(), cancellationToken);
            await http.Response.Body.WriteAsync(AwsJson.Write(message), cancellationToken);
            await http.Response.Body.WriteAsync("\n\n"u8.ToArray(), cancellationToken);
            await http.Response.Body.FlushAsync(cancellationToken);
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext http)
    {
        if (http.Request.ContentLength > MaxBody)
        {
            throw EcsException.InvalidParameter("body", $"at most {MaxBody} bytes are allowed.");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > MaxBody)
            {
                throw EcsException.InvalidParameter("body", $"at most {MaxBody} bytes are allowed.");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    /// <summary>SigV4 over the request as received; the key's secret is opened only for a well-formed, timely, rightly scoped signature.</summary>
    private Principal Authenticate(HttpContext http, byte[] body, string service)
    {
        var authorization = SigV4.Parse(http.Request.Headers.Authorization.ToString());
        var request = new SignedRequest(http.Request.Method, http.Request.Path.Value ?? "/", http.Request.QueryString.Value ?? "",
            name => name == "host" ? http.Request.Host.Value : http.Request.Headers.TryGetValue(name, out var v) ? string.Join(',', v.ToArray()) : null,
            SHA256.HashData(body));
        Principal? principal = null;
        SigV4.Verify(authorization, request, _region, [service], _time.GetUtcNow(), () =>
        {
            var (p, secret) = _iam.SigningKey(authorization.AccessKeyId);
            principal = p;
            return secret;
        });
        return principal!;
    }

    private async Task ErrorAsync(HttpContext http, string type, string message)
    {
        if (type == EcsErrorType.ServerException)
        {
            LogServerError(_logger, http.Request.Headers["X-Amz-Target"].ToString());
        }

        http.Response.StatusCode = type == EcsErrorType.ServerException ? 500 : 400;
        http.Response.ContentType = ContentType;
        http.Response.Headers["x-amzn-ErrorType"] = type;
        await http.Response.WriteAsync(ErrorJson(type, message));
    }

    private static string ErrorJson(string type, string message)
    {
        using var buffer = new MemoryStream();
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("__type", type);
            writer.WriteString("message", message);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Records the unary handlers a generated service binds.</summary>
    private sealed class Binder : ServiceBinderBase
    {
        public Dictionary<string, Func<IMessage, ServerCallContext, Task<IMessage>>> Handlers { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, ServerStreamingServerMethod<IMessage, IMessage>> Streams { get; } = new(StringComparer.Ordinal);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            if (handler is not null)
            {
                Handlers[method.Name] = async (request, context) => (IMessage)await handler((TRequest)request, context);
            }
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler)
        {
            if (handler is not null)
            {
                Streams[method.Name] = (request, writer, context) => handler((TRequest)request, new Typed<TResponse>(writer), context);
            }
        }

        private sealed class Typed<T>(IServerStreamWriter<IMessage> inner) : IServerStreamWriter<T>
        {
            public WriteOptions? WriteOptions { get => inner.WriteOptions; set => inner.WriteOptions = value; }

            public Task WriteAsync(T message) => inner.WriteAsync((IMessage)message!);

            public Task WriteAsync(T message, CancellationToken cancellationToken) => inner.WriteAsync((IMessage)message!, cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The JSON API answered {Target} with ServerException")]
    private static partial void LogServerError(ILogger logger, string target);
}

/// <summary>The call context of a request that came through the JSON edge: its method, caller and cancellation.</summary>
internal sealed class JsonCallContext(string method, HttpContext http) : ServerCallContext
{
    private readonly Dictionary<object, object> _userState = [];

    /// <summary>An HTTP request's peer as gRPC writes one (what the audit log records).</summary>
    public static string PeerOf(HttpContext http) => $"ipv4:{http.Connection.RemoteIpAddress}:{http.Connection.RemotePort}";

    protected override string MethodCore => method;

    protected override string HostCore => "";

    protected override string PeerCore => PeerOf(http);

    protected override DateTime DeadlineCore => DateTime.MaxValue;

    protected override Metadata RequestHeadersCore { get; } = [];

    protected override CancellationToken CancellationTokenCore => http.RequestAborted;

    protected override Metadata ResponseTrailersCore { get; } = [];

    protected override Status StatusCore { get; set; }

    protected override WriteOptions? WriteOptionsCore { get; set; }

    protected override AuthContext AuthContextCore { get; } = new(null, []);

    protected override IDictionary<object, object> UserStateCore => _userState;

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}
