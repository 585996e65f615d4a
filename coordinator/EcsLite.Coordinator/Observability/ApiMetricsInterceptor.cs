using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Security;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace EcsLite.Coordinator.Observability;

/// <summary>
/// The first step of every gRPC API call (the services <see cref="CallAuthenticator.Services"/> names):
/// counts it by action and result, refusals included, and times it if it is unary.
/// </summary>
public sealed class ApiMetricsInterceptor(CoordinatorMetrics metrics) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (!Guarded(context))
        {
            return await continuation(request, context);
        }

        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var result = "OK";
        try
        {
            return await continuation(request, context);
        }
        catch (Exception e)
        {
            result = Result(e);
            throw;
        }
        finally
        {
            metrics.ObserveCall(ApiActions.ActionOf(context.Method), "grpc", result, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!Guarded(context))
        {
            await continuation(request, responseStream, context);
            return;
        }

        var result = "OK";
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception e)
        {
            result = Result(e);
            throw;
        }
        finally
        {
            metrics.ObserveCall(ApiActions.ActionOf(context.Method), "grpc", result, null);
        }
    }

    private static bool Guarded(ServerCallContext context) => CallAuthenticator.Services.Contains(context.Method.Split('/')[1]);

    /// <summary>ECS's error type where the call has one, else the gRPC status.</summary>
    private static string Result(Exception e) => e switch
    {
        RpcException rpc => rpc.Trailers.GetValue("ecs-error-type") ?? rpc.StatusCode.ToString(),
        OperationCanceledException => nameof(StatusCode.Cancelled),
        _ => "ServerException",
    };
}
