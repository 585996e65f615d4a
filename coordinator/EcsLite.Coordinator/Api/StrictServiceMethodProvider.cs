using System.Reflection;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// Binds every gRPC service as grpc-dotnet's own provider does (through the generated BindService),
/// but with request messages read by a strict marshaller: bytes that are not a valid message of the
/// request's type (garbage, a truncated message, a wrong wire type) are answered InvalidArgument in
/// ECS's words, instead of grpc-dotnet's UNKNOWN "Exception was thrown by handler" with an error and
/// a stack trace in the log. Registered in place of the default provider, so every service, those
/// added later too, gets it.
/// </summary>
public sealed class StrictServiceMethodProvider<TService> : IServiceMethodProvider<TService>
    where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        var attribute = BindAttribute(typeof(TService));
        if (attribute is null)
        {
            return; // not a generated service (grpc-dotnet ignores those too)
        }

        var bind = attribute.BindType.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Single(m => m.Name == attribute.BindMethodName && m.GetParameters() is [{ ParameterType: var binder }, _] && binder == typeof(ServiceBinderBase));
        bind.Invoke(null, [new Binder(context), null]);
    }

    private static BindServiceMethodAttribute? BindAttribute(Type? type)
    {
        for (; type is not null; type = type.BaseType)
        {
            if (type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>A request marshaller whose failures are the caller's: InvalidArgument.</summary>
    public static Marshaller<T> Strict<T>(Marshaller<T> inner) => new(inner.ContextualSerializer, context =>
    {
        try
        {
            return inner.ContextualDeserializer(context);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidOperationException or ArgumentException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"InvalidParameterException: the request is not a valid {typeof(T).Name} message: {e.Message}"));
        }
    });

    private sealed class Binder(ServiceMethodProviderContext<TService> context) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Checked(method), Metadata(method), Invoker<Grpc.AspNetCore.Server.Model.UnaryServerMethod<TService, TRequest, TResponse>>(method, typeof(TRequest), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Checked(method), Metadata(method),
                Invoker<Grpc.AspNetCore.Server.Model.ClientStreamingServerMethod<TService, TRequest, TResponse>>(method, typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddServerStreamingMethod(Checked(method), Metadata(method),
                Invoker<Grpc.AspNetCore.Server.Model.ServerStreamingServerMethod<TService, TRequest, TResponse>>(method, typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Checked(method), Metadata(method),
                Invoker<Grpc.AspNetCore.Server.Model.DuplexStreamingServerMethod<TService, TRequest, TResponse>>(method, typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)));

        private static Method<TRequest, TResponse> Checked<TRequest, TResponse>(Method<TRequest, TResponse> method) =>
            new(method.Type, method.ServiceName, method.Name, Strict(method.RequestMarshaller), method.ResponseMarshaller);

        /// <summary>The service's implementation of the method, called on the instance grpc-dotnet makes for each call.</summary>
        private static TDelegate Invoker<TDelegate>(IMethod method, params Type[] parameters) where TDelegate : Delegate =>
            typeof(TService).GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance, parameters) is { } implementation
                ? implementation.CreateDelegate<TDelegate>()
                : throw new InvalidOperationException($"{typeof(TService).Name} has no method {method.Name}");

        /// <summary>As grpc-dotnet gives them: the service type's attributes, then the method's.</summary>
        private static List<object> Metadata(IMethod method) =>
        [
            .. typeof(TService).GetCustomAttributes(inherit: true),
            .. typeof(TService).GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance)?.GetCustomAttributes(inherit: true) ?? [],
        ];
    }
}
