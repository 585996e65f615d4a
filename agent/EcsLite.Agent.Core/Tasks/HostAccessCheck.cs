using EcsLite.Api.V1;

namespace EcsLite.Agent.Core.Tasks;

/// <summary>
/// What the host refuses to run, as the ECS agent's settings decide it: privileged containers under
/// ECS_DISABLE_PRIVILEGED, and bind mounts or devices outside ECSLITE_ALLOWED_HOST_PATHS. Placement
/// already avoids such hosts (they do not report the capability, or report their allowed paths); this
/// is the host's own check, for a task that reaches it anyway (a StartTask naming it, an older
/// coordinator, an attribute set by hand).
/// </summary>
public static class HostAccessCheck
{
    /// <summary>
    /// Why <paramref name="container"/> may not run here, or null. <paramref name="realPath"/> resolves
    /// symbolic links, so a link inside an allowed directory cannot lead out of it.
    /// </summary>
    public static string? Refusal(TaskDefinition definition, ContainerDefinition container, AgentSettings settings, Func<string, string> realPath)
    {
        if (settings.PrivilegedDisabled && container.HasPrivileged && container.Privileged)
        {
            return "privileged containers are disabled on this host (ECS_DISABLE_PRIVILEGED=true)";
        }

        if (settings.AllowedHostPaths is not { } allowed)
        {
            return null;
        }

        foreach (var path in HostAccess.HostPaths(definition, container))
        {
            if (!HostAccess.Allows(allowed, path) || !HostAccess.Allows(allowed, realPath(path)))
            {
                return $"the host path {path} is not allowed on this host (ECSLITE_ALLOWED_HOST_PATHS={string.Join(',', allowed)})";
            }
        }

        return null;
    }
}
