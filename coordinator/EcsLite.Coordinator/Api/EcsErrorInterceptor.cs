using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Schedules;
using EcsLite.Coordinator.Core.Secrets;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Core.Validation;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// The edge every RPC passes: each request message (each message of a stream too) is checked against
/// the ECS model's rules and the <see cref="Limits"/> before its handler sees it, and ECS errors become
/// gRPC statuses. The message starts with ECS's exception name (what grpcurl prints), and the trailers
/// carry it and the field at fault for programs: ecs-error-type, ecs-field.
/// </summary>
public sealed partial class EcsErrorInterceptor(ILogger<EcsErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            Check(request);
            return await continuation(request, context);
        }
        catch (EcsException e)
        {
            throw ToRpc(e);
        }
        catch (Exception e) when (e is not RpcException and not OperationCanceledException)
        {
            LogUnexpected(logger, context.Method, e);
            throw ToRpc(new EcsException(EcsErrorType.ServerException, "The coordinator failed to handle the request."));
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(new CheckedReader<TRequest>(requestStream), responseStream, context);
        }
        catch (EcsException e)
        {
            throw ToRpc(e);
        }
        catch (IOException)
        {
            throw Gone();
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            Check(request);
            await continuation(request, responseStream, context);
        }
        catch (EcsException e)
        {
            throw ToRpc(e);
        }
        catch (IOException)
        {
            throw Gone();
        }
    }

    /// <summary>A stream broke: the caller reset it or went away. Nobody to answer, and nothing that failed here.</summary>
    private static RpcException Gone() => new(new Status(StatusCode.Cancelled, "the caller ended the call"));

    private static void Check<TRequest>(TRequest request)
    {
        if (request is IMessage message)
        {
            RequestRules.Validate(message);
        }
    }

    /// <summary>A request stream whose every message is checked as it is read.</summary>
    private sealed class CheckedReader<T>(IAsyncStreamReader<T> inner) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!await inner.MoveNext(cancellationToken))
            {
                return false;
            }

            Check(inner.Current);
            return true;
        }
    }

    public static RpcException ToRpc(EcsException e)
    {
        var code = e.ErrorType switch
        {
            EcsErrorType.ClusterNotFoundException or EcsErrorType.ResourceNotFoundException or EcsErrorType.ServiceNotFoundException => StatusCode.NotFound,
            EcsErrorType.ServiceNotActiveException => StatusCode.FailedPrecondition,
            EcsErrorType.ClusterContainsContainerInstancesException or EcsErrorType.ClusterContainsServicesException
                or EcsErrorType.ClusterContainsTasksException => StatusCode.FailedPrecondition,
            EcsErrorType.LimitExceededException => StatusCode.ResourceExhausted,
            EcsErrorType.ServerException => StatusCode.Internal,
            IamErrorType.AccessDeniedException => StatusCode.PermissionDenied,
            IamErrorType.MissingAuthenticationTokenException or IamErrorType.UnrecognizedClientException => StatusCode.Unauthenticated,
            IamErrorType.NoSuchEntity => StatusCode.NotFound,
            IamErrorType.EntityAlreadyExists => StatusCode.AlreadyExists,
            IamErrorType.DeleteConflict => StatusCode.FailedPrecondition,
            IamErrorType.LimitExceeded => StatusCode.ResourceExhausted,
            SchedulerErrors.ConflictException => StatusCode.AlreadyExists,
            SchedulerErrors.ServiceQuotaExceededException => StatusCode.ResourceExhausted,
            SecretErrors.ParameterNotFound or SecretErrors.ParameterVersionNotFound => StatusCode.NotFound,
            SecretErrors.ParameterAlreadyExists or SecretErrors.ResourceExistsException => StatusCode.AlreadyExists,
            SecretErrors.ParameterLimitExceeded or SecretErrors.HierarchyLevelLimitExceededException => StatusCode.ResourceExhausted,
            SecretErrors.InvalidRequestException => StatusCode.FailedPrecondition,
            _ => StatusCode.InvalidArgument,
        };
        var trailers = new Metadata { { "ecs-error-type", e.ErrorType } };
        if (e.Field is not null)
        {
            trailers.Add("ecs-field", HeaderSafe(e.Field));
        }

        return new RpcException(new Status(code, $"{e.ErrorType}: {e.Message}"), trailers);
    }

    /// <summary>
    /// A field path can quote a caller's text (a map key); an HTTP/2 header may hold only printable ASCII
    /// (the message itself is percent-encoded by gRPC). Anything else becomes '?', and it is bounded.
    /// </summary>
    private static string HeaderSafe(string value) =>
        string.Create(Math.Min(value.Length, 256), value, (span, text) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = text[i] is >= ' ' and <= '~' ? text[i] : '?';
            }
        });

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled error in {Method}")]
    private static partial void LogUnexpected(ILogger logger, string method, Exception exception);
}
