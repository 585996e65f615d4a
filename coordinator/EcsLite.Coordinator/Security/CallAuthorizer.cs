using EcsLite.Coordinator.Api;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Secrets;
using EcsLite.Coordinator.Core.Secrets;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Api.V1;
using EcsLite.Store.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Connections.Features;
using EcsLite.Security;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Security;

/// <summary>
/// The first step of every API call (the Ecs, TaskLogs, Iam, Activations, Scheduler, Events and Secrets services): who is calling.
/// The admin socket is the account's root; over TCP, an access key as "authorization: Bearer ID:SECRET".
/// A caller without a valid key gets Unauthenticated before anything else reads the request. (Agents
/// are known by their client certificates instead, and a joining host by its join token.)
/// </summary>
public sealed class CallAuthenticator(IamStore iam, AuditLog audit, ClusterCertificates certificates, IOptions<CoordinatorOptions> options) : Interceptor
{
    private const string CallerKey = "ecslite-caller";

    /// <summary>The services whose every call is authenticated and checked against policies.</summary>
    public static readonly string[] Services = ["ecslite.v1.Ecs", "ecslite.v1.TaskLogs", "ecslite.v1.Iam", "ecslite.v1.Activations", "ecslite.v1.Scheduler", "ecslite.v1.Events", "ecslite.v1.Secrets", "ecslite.v1.CloudWatchLogs"];

    /// <summary>Sets the caller of a call authenticated elsewhere (the JSON API's SigV4).</summary>
    public static void Admit(ServerCallContext context, Principal caller) => context.UserState[CallerKey] = caller;

    /// <summary>The authenticated caller of a call of a guarded service; null for the open ones.</summary>
    public static Principal? Caller(ServerCallContext context) =>
        context.UserState.TryGetValue(CallerKey, out var caller) ? (Principal)caller : null;

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Admit(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Admit(context);
        return continuation(request, responseStream, context);
    }

    private void Admit(ServerCallContext context)
    {
        if (!Services.Contains(context.Method.Split('/')[1]))
        {
            return;
        }

        try
        {
            context.UserState[CallerKey] = Authenticate(context);
        }
        catch (EcsException e)
        {
            audit.Refused(null, ApiActions.ActionOf(context.Method), null, context.Peer, e.ErrorType);
            throw EcsErrorInterceptor.ToRpc(e);
        }
    }

    private Principal Authenticate(ServerCallContext context)
    {
        if (options.Value.InsecureTestMode
            || context.GetHttpContext().Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(AdminSocket.Marker) == true)
        {
            return Principal.Root(iam.Arns);
        }

        if (context.RequestHeaders.GetValue(LeaderForwarder.ForwardedFor) is { } forwarded)
        {
            return Forwarded(context, forwarded);
        }

        return Authenticate(context.RequestHeaders.GetValue("authorization"));
    }

    /// <summary>
    /// A call another coordinator of this store authenticated and forwarded (it follows, this one leads): made
    /// for the principal it names, which must still exist here; believed only from a coordinator's certificate.
    /// </summary>
    private Principal Forwarded(ServerCallContext context, string arn)
    {
        var certificate = context.GetHttpContext().Connection.ClientCertificate;
        if (certificate is null || !certificates.IssuedCoordinator(certificate))
        {
            throw new EcsException(IamErrorType.UnrecognizedClientException, $"Only a coordinator of this cluster may forward a call ({LeaderForwarder.ForwardedFor}).");
        }

        var root = Principal.Root(iam.Arns);
        return arn == root.Arn ? root
            : iam.State.Principals.GetValueOrDefault(arn[(arn.LastIndexOf('/') + 1)..]) is { } user && user.Arn == arn ? user
            : throw new EcsException(IamErrorType.UnrecognizedClientException, "The security token included in the request is invalid.");
    }

    /// <summary>
    /// An access key in an authorization header: "Bearer ACCESS_KEY_ID:SECRET", or HTTP Basic with the key's
    /// ID as user and its secret as password (what Prometheus's basic_auth sends).
    /// </summary>
    public Principal Authenticate(string? header)
    {
        if (string.IsNullOrEmpty(header))
        {
            throw new EcsException(IamErrorType.MissingAuthenticationTokenException,
                "Missing Authentication Token: send \"authorization: Bearer ACCESS_KEY_ID:SECRET\" (see DATA_DIR/admin-credentials), or use the admin socket.");
        }

        const string Bearer = "Bearer ", Basic = "Basic ";
        var credentials = header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase) ? header[Bearer.Length..]
            : header.StartsWith(Basic, StringComparison.OrdinalIgnoreCase) ? DecodeBasic(header[Basic.Length..])
            : null;
        var colon = credentials?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (colon < 0)
        {
            throw new EcsException(IamErrorType.UnrecognizedClientException, "The security token included in the request is invalid.");
        }

        return iam.State.Authenticate(credentials![..colon].Trim(), credentials[(colon + 1)..].Trim());
    }

    private static string? DecodeBasic(string encoded)
    {
        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(encoded.Trim()));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

/// <summary>
/// The step after validation (so every string it looks at is within its limit): may the caller do
/// this. The caller's policies are evaluated by the pure <see cref="PolicyEvaluator"/> on the action
/// and resources <see cref="ApiActions"/> names; a refusal is AccessDeniedException and changes nothing.
/// Every refusal and every call that changes something goes to the audit log with its result.
/// </summary>
public sealed class CallAuthorizer(IamStore iam, ClusterStateMachine cluster, SecretStore secrets, AuditLog audit) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var call = Authorize(request, context);
        if (call is null || ReadOnly(call.Value.Request.Action))
        {
            return await continuation(request, context);
        }

        try
        {
            var response = await continuation(request, context);
            audit.Record(call.Value.Caller, call.Value.Request, context.Peer, "OK");
            return response;
        }
        catch (EcsException e)
        {
            audit.Record(call.Value.Caller, call.Value.Request, context.Peer, e.ErrorType);
            throw;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            audit.Record(call.Value.Caller, call.Value.Request, context.Peer, e is RpcException rpc ? rpc.StatusCode.ToString() : EcsErrorType.ServerException);
            throw;
        }
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(request, context);
        return continuation(request, responseStream, context);
    }

    /// <summary>Null for a call of a service without policies; else the caller and what the call is, once allowed.</summary>
    private (Principal Caller, AuthorizationRequest Request)? Authorize<TRequest>(TRequest request, ServerCallContext context)
    {
        if (CallAuthenticator.Caller(context) is not { } caller || request is not IMessage message)
        {
            return null;
        }

        var described = Describe(context.Method, message, caller);
        Require(caller, described, context.Peer);
        RequireSecretReads(caller, message switch
        {
            RunTaskRequest m => m.TaskDefinition,
            StartTaskRequest m => m.TaskDefinition,
            CreateServiceRequest m => m.TaskDefinition,
            UpdateServiceRequest { HasTaskDefinition: true } m => m.TaskDefinition,
            _ => null,
        }, context.Peer);
        return (caller, described);
    }

    /// <summary>
    /// Starting tasks of a definition with secrets reads them (as ECS asks of the task execution role):
    /// the caller must also be allowed ssm:GetParameters and secretsmanager:GetSecretValue on each, or a
    /// task that prints its environment would be a way around the secrets' policies.
    /// </summary>
    public void RequireSecretReads(Principal caller, string? taskDefinition, string peer)
    {
        if (caller.IsRoot || string.IsNullOrEmpty(taskDefinition))
        {
            return;
        }

        StoredTaskDefinition definition;
        try
        {
            definition = TaskDefinitionCommands.Resolve(cluster.Current, taskDefinition, "taskDefinition");
        }
        catch (EcsException)
        {
            return; // the handler says so, in its own words
        }

        foreach (var read in SecretReferences.Reads(definition.TaskDefinition, secrets.State, iam.Arns))
        {
            Require(caller, read, peer);
        }
    }

    /// <summary>
    /// Refuses (AccessDeniedException, audited) unless the caller's policies allow the action; for what a
    /// call does beyond its own action, e.g. the RunTask a schedule will make for the one who creates it.
    /// </summary>
    public void Require(Principal caller, AuthorizationRequest described, string peer)
    {
        if (!caller.IsRoot && PolicyEvaluator.Evaluate(caller.Policies, described) is { Allowed: false } decision)
        {
            audit.Refused(caller, described.Action, decision.Resource, peer, IamErrorType.AccessDeniedException);
            var because = decision.Kind == DecisionKind.ExplicitDeny ? "with an explicit deny in an identity-based policy" : "because no identity-based policy allows the action";
            throw new EcsException(IamErrorType.AccessDeniedException,
                $"User: {caller.Arn} is not authorized to perform: {described.Action} on resource: {decision.Resource} {because}");
        }
    }

    /// <summary>What <paramref name="request"/> would be as a call of <paramref name="method"/> ("/package.Service/Method").</summary>
    public AuthorizationRequest Describe(string method, IMessage request, Principal caller) =>
        ApiActions.Describe(method, request, iam.Arns, LatestRevision, caller.Name, secrets.State);

    private string? LatestRevision(string family) =>
        cluster.Current.Families.TryGetValue(family, out var f) ? f.LatestActive?.TaskDefinition.TaskDefinitionArn : null;

    /// <summary>Reads are not audited, except reads of secret values (as CloudTrail records GetSecretValue).</summary>
    private static bool ReadOnly(string action)
    {
        if (action is "ssm:GetParameter" or "ssm:GetParameters" or "secretsmanager:GetSecretValue")
        {
            return false;
        }

        var name = action[(action.IndexOf(':', StringComparison.Ordinal) + 1)..];
        return name.StartsWith("Describe", StringComparison.Ordinal) || name.StartsWith("List", StringComparison.Ordinal)
            || name.StartsWith("Get", StringComparison.Ordinal);
    }
}
