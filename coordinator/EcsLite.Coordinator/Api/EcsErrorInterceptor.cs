using EcsLite.Coordinator.Core;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// Turns ECS errors into gRPC statuses. The message starts with ECS's exception name (what grpcurl
/// prints), and the trailers carry it and the field at fault for programs: ecs-error-type, ecs-field.
/// This is also where authorisation will sit, one interceptor away from every RPC.
/// </summary>
public sealed partial class EcsErrorInterceptor(ILogger<EcsErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
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
            await continuation(requestStream, responseStream, context);
        }
        catch (EcsException e)
        {
            throw ToRpc(e);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (EcsException e)
        {
            throw ToRpc(e);
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
            _ => StatusCode.InvalidArgument,
        };
        var trailers = new Metadata { { "ecs-error-type", e.ErrorType } };
        if (e.Field is not null)
        {
            trailers.Add("ecs-field", e.Field);
        }

        return new RpcException(new Status(code, $"{e.ErrorType}: {e.Message}"), trailers);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled error in {Method}")]
    private static partial void LogUnexpected(ILogger logger, string method, Exception exception);
}
