namespace EcsLite.Api.V1;

/// <summary>
/// The kinds of a <see cref="ResolvedSecret"/> (agent.proto), shared by the coordinator (which resolves
/// a task's secrets into them) and the agent (which puts each where it belongs).
/// </summary>
public static class SecretKinds
{
    /// <summary>A container's <c>secrets</c> entry: an environment variable.</summary>
    public const string Environment = "ENVIRONMENT";

    /// <summary>A <c>logConfiguration.secretOptions</c> entry: a log driver option.</summary>
    public const string LogOption = "LOG_OPTION";

    /// <summary>The <c>repositoryCredentials</c>: names "username" and "password", for the image pull.</summary>
    public const string RegistryAuth = "REGISTRY_AUTH";
}
