using System.Security.Cryptography;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Secrets;
using EcsLite.Coordinator.Security;
using Grpc.Core;

namespace EcsLite.Coordinator.Secrets;

/// <summary>Parameter Store's and Secrets Manager's actions over the <see cref="SecretStore"/>; the core decides everything.</summary>
public sealed class SecretsService(SecretStore secrets, TimeProvider time) : global::EcsLite.Api.V1.Secrets.SecretsBase
{
    public override Task<PutParameterResponse> PutParameter(PutParameterRequest request, ServerCallContext context) =>
        secrets.ChangeAsync<PutParameterResponse>(s =>
        {
            var (next, stored) = s.PutParameter(request, CallerArn(context), time.GetUtcNow(), secrets.Arns, secrets.Seal);
            return (next, [SecretStore.Put(stored)], new PutParameterResponse { Version = stored.Metadata.Version, Tier = stored.Metadata.Tier });
        }, context.CancellationToken);

    public override Task<GetParameterResponse> GetParameter(GetParameterRequest request, ServerCallContext context) =>
        Task.FromResult(secrets.State.GetParameter(request, secrets.Open));

    public override Task<GetParametersResponse> GetParameters(GetParametersRequest request, ServerCallContext context) =>
        Task.FromResult(secrets.State.GetParameters(request, secrets.Open));

    public override Task<DeleteParameterResponse> DeleteParameter(DeleteParameterRequest request, ServerCallContext context) =>
        secrets.ChangeAsync<DeleteParameterResponse>(s =>
        {
            var (next, name) = s.DeleteParameter(request);
            return (next, [SecretStore.DeleteParameter(name)], new DeleteParameterResponse());
        }, context.CancellationToken);

    public override Task<DescribeParametersResponse> DescribeParameters(DescribeParametersRequest request, ServerCallContext context) =>
        Task.FromResult(secrets.State.DescribeParameters(request));

    public override Task<CreateSecretResponse> CreateSecret(CreateSecretRequest request, ServerCallContext context) =>
        secrets.ChangeAsync<CreateSecretResponse>(s =>
        {
            var suffix = RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 6);
            var (next, stored, response) = s.CreateSecret(request, suffix, Guid.NewGuid().ToString(), time.GetUtcNow(), secrets.Arns, secrets.Seal, secrets.Open);
            return (next, ReferenceEquals(next, s) ? [] : [SecretStore.Put(stored)], response);
        }, context.CancellationToken);

    public override Task<PutSecretValueResponse> PutSecretValue(PutSecretValueRequest request, ServerCallContext context) =>
        secrets.ChangeAsync<PutSecretValueResponse>(s =>
        {
            var (next, stored, response) = s.PutSecretValue(request, Guid.NewGuid().ToString(), time.GetUtcNow(), secrets.Seal, secrets.Open);
            return (next, ReferenceEquals(next, s) ? [] : [SecretStore.Put(stored)], response);
        }, context.CancellationToken);

    public override Task<GetSecretValueResponse> GetSecretValue(GetSecretValueRequest request, ServerCallContext context) =>
        Task.FromResult(secrets.State.GetSecretValue(request, secrets.Open));

    public override Task<DescribeSecretResponse> DescribeSecret(DescribeSecretRequest request, ServerCallContext context) =>
        Task.FromResult(secrets.State.DescribeSecret(request));

    public override Task<ListSecretsResponse> ListSecrets(ListSecretsRequest request, ServerCallContext context) =>
        Task.FromResult(secrets.State.ListSecrets(request));

    public override Task<DeleteSecretResponse> DeleteSecret(DeleteSecretRequest request, ServerCallContext context) =>
        secrets.ChangeAsync<DeleteSecretResponse>(s =>
        {
            var (next, scheduled, removed, response) = s.DeleteSecret(request, time.GetUtcNow());
            return (next, [scheduled is not null ? SecretStore.Put(scheduled) : SecretStore.DeleteSecret(removed!)], response);
        }, context.CancellationToken);

    public override async Task<RotateKeyOnDemandResponse> RotateKeyOnDemand(RotateKeyOnDemandRequest request, ServerCallContext context)
    {
        var (id, resealed) = await secrets.RotateAsync(context.CancellationToken);
        return new RotateKeyOnDemandResponse { KeyId = id, ReEncrypted = resealed };
    }

    private static string CallerArn(ServerCallContext context) => CallAuthenticator.Caller(context)?.Arn ?? "";
}
