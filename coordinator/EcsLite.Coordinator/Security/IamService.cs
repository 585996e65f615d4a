using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Store.V1;
using Grpc.Core;

namespace EcsLite.Coordinator.Security;

/// <summary>IAM's user, policy and access-key calls over the pure <see cref="IamState"/>; who may make them is the policy check's business.</summary>
public sealed class IamService(IamStore iam) : Iam.IamBase
{
    public override async Task<CreateUserResponse> CreateUser(CreateUserRequest request, ServerCallContext context) =>
        new() { User = (await iam.ChangeAsync(s => s.CreateUser(request.UserName, IamStore.NewUserId(), iam.Context()), context.CancellationToken)).User };

    public override Task<GetUserResponse> GetUser(GetUserRequest request, ServerCallContext context) =>
        Task.FromResult(new GetUserResponse { User = iam.State.Get(Own(request.UserName, context)).User });

    public override Task<ListUsersResponse> ListUsers(ListUsersRequest request, ServerCallContext context) =>
        Task.FromResult(new ListUsersResponse { Users = { iam.State.Users.Values.Select(u => u.User) } });

    public override async Task<DeleteUserResponse> DeleteUser(DeleteUserRequest request, ServerCallContext context)
    {
        await iam.RemoveAsync(s => s.DeleteUser(request.UserName), context.CancellationToken);
        return new DeleteUserResponse();
    }

    public override async Task<PutUserPolicyResponse> PutUserPolicy(PutUserPolicyRequest request, ServerCallContext context)
    {
        await iam.ChangeAsync(s => s.PutUserPolicy(request.UserName, request.PolicyName, request.PolicyDocument), context.CancellationToken);
        return new PutUserPolicyResponse();
    }

    public override Task<GetUserPolicyResponse> GetUserPolicy(GetUserPolicyRequest request, ServerCallContext context) =>
        Task.FromResult(new GetUserPolicyResponse
        {
            UserName = request.UserName,
            PolicyName = request.PolicyName,
            PolicyDocument = iam.State.GetUserPolicy(request.UserName, request.PolicyName),
        });

    public override Task<ListUserPoliciesResponse> ListUserPolicies(ListUserPoliciesRequest request, ServerCallContext context) =>
        Task.FromResult(new ListUserPoliciesResponse { PolicyNames = { iam.State.Get(request.UserName).Policies.Keys.Order(StringComparer.Ordinal) } });

    public override async Task<CreateAccessKeyResponse> CreateAccessKey(CreateAccessKeyRequest request, ServerCallContext context)
    {
        var user = Own(request.UserName, context);
        var (id, secret) = await iam.CreateAccessKeyAsync(user, context.CancellationToken);
        var key = iam.State.Get(user).AccessKeys.Single(k => k.AccessKeyId == id);
        return new CreateAccessKeyResponse
        {
            AccessKey = new AccessKey { UserName = user, AccessKeyId = id, SecretAccessKey = secret, Status = key.Status, CreateDate = key.CreateDate },
        };
    }

    public override Task<ListAccessKeysResponse> ListAccessKeys(ListAccessKeysRequest request, ServerCallContext context)
    {
        var user = iam.State.Get(Own(request.UserName, context));
        return Task.FromResult(new ListAccessKeysResponse
        {
            AccessKeyMetadata = { user.AccessKeys.Select(k => Metadata(user, k)) },
        });
    }

    public override async Task<UpdateAccessKeyResponse> UpdateAccessKey(UpdateAccessKeyRequest request, ServerCallContext context)
    {
        await iam.ChangeAsync(s => s.UpdateAccessKey(Own(request.UserName, context), request.AccessKeyId, request.Status), context.CancellationToken);
        return new UpdateAccessKeyResponse();
    }

    public override async Task<DeleteAccessKeyResponse> DeleteAccessKey(DeleteAccessKeyRequest request, ServerCallContext context)
    {
        await iam.ChangeAsync(s => s.DeleteAccessKey(Own(request.UserName, context), request.AccessKeyId), context.CancellationToken);
        return new DeleteAccessKeyResponse();
    }

    private static AccessKeyMetadata Metadata(StoredUser user, StoredAccessKey key) =>
        new() { UserName = user.User.UserName, AccessKeyId = key.AccessKeyId, Status = key.Status, CreateDate = key.CreateDate };

    /// <summary>The named user, or the caller's own when no name is given (as IAM does); root has none.</summary>
    private static string Own(string userName, ServerCallContext context) =>
        userName.Length > 0 ? userName
        : CallAuthenticator.Caller(context) is { IsRoot: false } caller ? caller.Name
        : throw Core.EcsException.InvalidParameter("UserName", "The account's root (the admin socket) has no user of its own: name one.");
}
