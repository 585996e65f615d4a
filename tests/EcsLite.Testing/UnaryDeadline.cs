using Grpc.Core;
using Grpc.Core.Interceptors;

namespace EcsLite.Testing;

/// <summary>
/// Gives every unary call that has no deadline of its own one of <paramref name="limit"/>: a call that
/// is never answered fails the test with DeadlineExceeded and the method's name, instead of holding the
/// whole run until CI's hang timeout with nothing to say where.
/// </summary>
public sealed class UnaryDeadline(TimeSpan limit) : Interceptor
{
    public static UnaryDeadline Default { get; } = new(TimeSpan.FromMinutes(2));

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation) =>
        continuation(request, context.Options.Deadline is null
            ? new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithDeadline(DateTime.UtcNow + limit))
            : context);
}
