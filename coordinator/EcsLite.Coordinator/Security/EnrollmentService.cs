using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.State;
using EcsLite.Security;
using Grpc.Core;

namespace EcsLite.Coordinator.Security;

/// <summary>The join tokens, as SSM's activation calls; who may make them is the policy check's business (ssm: actions).</summary>
public sealed class ActivationsService(IamStore iam, ClusterCertificates certificates, ClusterStateMachine state, TimeProvider time) : Activations.ActivationsBase
{
    public override async Task<CreateActivationResponse> CreateActivation(CreateActivationRequest request, ServerCallContext context)
    {
        if (request.Cluster.Length > 0)
        {
            Core.Clusters.ClusterCommands.Active(state.Current, request.Cluster, "Cluster");
        }

        var (token, code) = await iam.CreateTokenAsync(request, context.CancellationToken);
        var id = token.Activation.ActivationId;
        return new CreateActivationResponse { ActivationId = id, ActivationCode = code, JoinToken = new JoinToken(certificates.AnchorSha256, id, code).ToString() };
    }

    public override Task<DescribeActivationsResponse> DescribeActivations(DescribeActivationsRequest request, ServerCallContext context)
    {
        var now = time.GetUtcNow();
        var (page, next) = Paging.Take(iam.Tokens.Tokens.Values, t => t.Activation.ActivationId,
            request.HasMaxResults, request.MaxResults, request.NextToken);
        var response = new DescribeActivationsResponse { ActivationList = { page.Select(t => JoinTokenState.Describe(t, now)) } };
        if (next is not null)
        {
            response.NextToken = next;
        }

        return Task.FromResult(response);
    }

    public override async Task<DeleteActivationResponse> DeleteActivation(DeleteActivationRequest request, ServerCallContext context)
    {
        await iam.DeleteTokenAsync(request.ActivationId, context.CancellationToken);
        return new DeleteActivationResponse();
    }
}

/// <summary>
/// A host joining: its join token is spent (durably) and its container instance made (REGISTERING)
/// before it gets a client certificate naming that instance, signed by the cluster CA. Open to any
/// caller over TLS (the token is the credential); every attempt goes to the audit log.
/// </summary>
public sealed partial class EnrollmentService(
    IamStore iam, ClusterCertificates certificates, ClusterStateMachine state, AuditLog audit, TimeProvider time, ILogger<EnrollmentService> logger)
    : Enrollment.EnrollmentBase
{
    /// <summary>A certificate request is a few hundred bytes; this bounds what is parsed.</summary>
    public const int MaxRequestBytes = 8192;

    public override Task<GetCertificateAuthorityResponse> GetCertificateAuthority(GetCertificateAuthorityRequest request, ServerCallContext context) =>
        Task.FromResult(new GetCertificateAuthorityResponse { CaCertificate = certificates.ServerAnchor.ExportCertificatePem() });

    public override async Task<EnrollResponse> Enroll(EnrollRequest request, ServerCallContext context)
    {
        string? tokenId = null;
        try
        {
            var token = ParseToken(request.JoinToken);
            tokenId = token.Id;
            var certificateRequest = CheckedRequest(request.CertificateSigningRequest.ToByteArray());
            if (request.Cluster.Length > 0)
            {
                Core.Clusters.ClusterCommands.Active(state.Current, request.Cluster);
            }

            var spent = await iam.RedeemTokenAsync(token.Id, token.Secret, request.Cluster, context.CancellationToken);
            var cluster = JoinTokenState.ClusterFor(spent, request.Cluster);
            var stored = await state.ApplyAsync((s, c) => ContainerInstanceCommands.Enroll(s, cluster, request.Hostname, c, Guid.NewGuid().ToString("N")), context.CancellationToken);
            var arn = stored.ContainerInstance.ContainerInstanceArn;
            using var certificate = certificates.IssueClient(certificateRequest, arn, time.GetUtcNow());
            audit.Other($"activation/{token.Id}", "ecslite:Enroll", arn, context.Peer, "OK");
            LogEnrolled(logger, arn, Core.Validation.CallerText.Quote(request.Hostname, 255), context.Peer);
            return new EnrollResponse
            {
                ContainerInstanceArn = arn,
                Cluster = cluster,
                Certificate = certificate.ExportCertificatePem(),
                CaCertificate = certificates.ServerAnchor.ExportCertificatePem(),
            };
        }
        catch (EcsException e)
        {
            audit.Other(tokenId is null ? "anonymous" : $"activation/{tokenId}", "ecslite:Enroll", null, context.Peer, e.ErrorType);
            throw;
        }
    }

    private static JoinToken ParseToken(string text)
    {
        try
        {
            return JoinToken.Parse(text);
        }
        catch (FormatException e)
        {
            throw EcsException.InvalidParameter("joinToken", e.Message);
        }
    }

    /// <summary>The request, checked (bounded, well-formed, its signature valid) before any token is spent.</summary>
    public static byte[] CheckedRequest(byte[] request)
    {
        if (request.Length is 0 or > MaxRequestBytes)
        {
            throw EcsException.InvalidParameter("certificateSigningRequest", $"is a PKCS#10 request in DER of at most {MaxRequestBytes} bytes.");
        }

        try
        {
            CertificateRequest.LoadSigningRequest(request, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default, RSASignaturePadding.Pkcs1);
            return request;
        }
        catch (CryptographicException)
        {
            throw EcsException.InvalidParameter("certificateSigningRequest", "is not a well-formed, self-signed PKCS#10 request.");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Host enrolled: {ContainerInstanceArn} ({Hostname}, from {Peer})")]
    private static partial void LogEnrolled(ILogger logger, string containerInstanceArn, string hostname, string peer);
}
