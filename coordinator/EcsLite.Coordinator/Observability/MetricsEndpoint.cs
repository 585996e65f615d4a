using System.Collections.Immutable;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Security;
using Prometheus;

namespace EcsLite.Coordinator.Observability;

/// <summary>
/// GET /metrics on the coordinator's TLS port: Prometheus's text format, for a caller with an access
/// key (HTTP Basic with the key's ID and secret, as Prometheus's basic_auth sends them, or
/// "Bearer ID:SECRET") whose policies allow <see cref="Action"/>.
/// </summary>
public static class MetricsEndpoint
{
    /// <summary>CloudWatch's action for reading metrics: the nearest IAM word for a scrape.</summary>
    public const string Action = "cloudwatch:GetMetricData";

    public static async Task ServeAsync(HttpContext http, CallAuthenticator authenticator, CallAuthorizer authorizer, AuditLog audit, CoordinatorMetrics metrics)
    {
        var peer = Api.JsonCallContext.PeerOf(http);
        Principal? caller = null;
        try
        {
            caller = authenticator.Authenticate(http.Request.Headers.Authorization.ToString());
            authorizer.Require(caller, new AuthorizationRequest(Action, [AuthorizationRequest.AnyResource], ImmutableDictionary<string, string>.Empty), peer);
        }
        catch (EcsException e)
        {
            if (caller is null)
            {
                audit.Refused(null, Action, null, peer, e.ErrorType); // (a refused policy check is audited by Require)
                // Bearer, not Basic: a browser on the dashboard's origin must not pop up a password prompt.
                http.Response.Headers.WWWAuthenticate = "Bearer realm=\"ecslite\"";
            }

            http.Response.StatusCode = caller is null ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden;
            http.Response.ContentType = "text/plain; charset=utf-8";
            await http.Response.WriteAsync($"{e.ErrorType}: {e.Message}\n", http.RequestAborted);
            return;
        }

        http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await metrics.Registry.CollectAndExportAsTextAsync(http.Response.Body, http.RequestAborted);
    }
}
