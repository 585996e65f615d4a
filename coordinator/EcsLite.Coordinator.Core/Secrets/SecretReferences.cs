using System.Collections.Immutable;
using System.Text.Json;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;

namespace EcsLite.Coordinator.Core.Secrets;

/// <summary>What a task definition's secret reference names: a parameter, or a secret with ECS's selector.</summary>
public abstract record SecretReference
{
    /// <summary>A Parameter Store parameter, by name (an ARN's name, whatever its region and account).</summary>
    public sealed record Parameter(string Name, string Arn) : SecretReference;

    /// <summary>A Secrets Manager secret (name or ARN) and ECS's selector ARN:json-key:version-stage:version-id.</summary>
    public sealed record Secret(string SecretId, string? JsonKey, string? VersionStage, string? VersionId) : SecretReference;
}

/// <summary>
/// ECS's <c>valueFrom</c>, as the ECS agent reads it: an ARN of service secretsmanager is a secret (with
/// the optional JSON-key selector), anything else (a bare name, a path, an ssm ARN) a parameter. ARNs of
/// any region and account are taken by their names: a task definition written for AWS runs unchanged
/// against the one store here. Resolution returns ECS's stop reason when a reference does not resolve.
/// </summary>
public static class SecretReferences
{
    private const string FailurePrefix = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: ";

    public static SecretReference Parse(string valueFrom, ArnFormat arns)
    {
        if (!valueFrom.StartsWith("arn:", StringComparison.Ordinal))
        {
            return new SecretReference.Parameter(valueFrom, SecretState.ParameterArn(arns, valueFrom));
        }

        var parts = valueFrom.Split(':');
        if (parts.Length >= 7 && parts[2] == "secretsmanager" && parts[5] == "secret")
        {
            string? Part(int i) => parts.Length > i && parts[i].Length > 0 ? parts[i] : null;
            return new SecretReference.Secret(string.Join(':', parts[..7]), Part(7), Part(8), Part(9));
        }

        // arn:aws:ssm:REGION:ACCOUNT:parameter/NAME: a name with a path is "/path/name"; one without
        // may have been made either way.
        var resource = string.Join(':', parts.Skip(5));
        var name = resource.StartsWith("parameter/", StringComparison.Ordinal) ? resource["parameter/".Length..] : resource;
        return new SecretReference.Parameter(name.Contains('/', StringComparison.Ordinal) ? "/" + name : name, valueFrom);
    }

    /// <summary>Every secret reference of a task definition, with the container and the kind of place it fills.</summary>
    public static IEnumerable<(string Container, string Kind, string Name, string ValueFrom)> Of(TaskDefinition definition)
    {
        foreach (var container in definition.ContainerDefinitions)
        {
            foreach (var secret in container.Secrets)
            {
                yield return (container.Name, SecretKinds.Environment, secret.Name, secret.ValueFrom);
            }

            foreach (var option in container.LogConfiguration?.SecretOptions ?? [])
            {
                yield return (container.Name, SecretKinds.LogOption, option.Name, option.ValueFrom);
            }

            if (container.RepositoryCredentials is { HasCredentialsParameter: true } credentials)
            {
                yield return (container.Name, SecretKinds.RegistryAuth, "", credentials.CredentialsParameter);
            }
        }
    }

    /// <summary>
    /// What starting a task of this definition reads, as IAM requests: ssm:GetParameters on each
    /// parameter, secretsmanager:GetSecretValue on each secret (what ECS asks of the task execution role).
    /// </summary>
    public static IEnumerable<AuthorizationRequest> Reads(TaskDefinition definition, SecretState state, ArnFormat arns) =>
        Of(definition).Select(r => Parse(r.ValueFrom, arns)).Distinct().Select(reference => reference switch
        {
            SecretReference.Parameter p => new AuthorizationRequest("ssm:GetParameters", [state.ParameterOrNull(p.Name)?.Metadata.ARN ?? p.Arn], ImmutableDictionary<string, string>.Empty),
            SecretReference.Secret s => new AuthorizationRequest("secretsmanager:GetSecretValue", [state.SecretArnOf(s.SecretId, arns)], ImmutableDictionary<string, string>.Empty),
            _ => throw new ArgumentOutOfRangeException(nameof(definition)),
        });

    /// <summary>
    /// The values a task's definition refers to, or the reason (ECS's) the task cannot start. A JSON key
    /// selects a member of a JSON secret; registry credentials are a JSON secret with username and password.
    /// </summary>
    public static (IReadOnlyList<ResolvedSecret> Secrets, string? Error) Resolve(TaskDefinition definition, SecretState state, ArnFormat arns, SecretState.Opener open)
    {
        var resolved = new List<ResolvedSecret>();
        foreach (var (container, kind, name, valueFrom) in Of(definition))
        {
            var (value, error) = Value(Parse(valueFrom, arns), state, open);
            if (error is not null)
            {
                return ([], FailurePrefix + error);
            }

            if (kind != SecretKinds.RegistryAuth)
            {
                resolved.Add(new ResolvedSecret { ContainerName = container, Kind = kind, Name = name, Value = value });
                continue;
            }

            var (username, password) = Credentials(value!);
            if (username is null || password is null)
            {
                return ([], FailurePrefix + $"the registry credentials secret {valueFrom} is not a JSON object with string members username and password");
            }

            resolved.Add(new ResolvedSecret { ContainerName = container, Kind = kind, Name = "username", Value = username });
            resolved.Add(new ResolvedSecret { ContainerName = container, Kind = kind, Name = "password", Value = password });
        }

        return (resolved, null);
    }

    private static (string? Value, string? Error) Value(SecretReference reference, SecretState state, SecretState.Opener open)
    {
        switch (reference)
        {
            case SecretReference.Parameter p:
                return state.ParameterOrNull(p.Name) is { } parameter
                    ? (SecretState.Text(open(parameter.Value, SecretState.ParameterContext(parameter.Metadata))), null)
                    : (null, $"unable to retrieve secrets from ssm: invalid parameters: {p.Name}");
            case SecretReference.Secret s:
                var secret = state.SecretOrNull(s.SecretId);
                if (secret is null || secret.DeletionDate is not null)
                {
                    return (null, $"unable to retrieve secret from asm: ResourceNotFoundException: Secrets Manager can't find the specified secret. ({s.SecretId})");
                }

                var version = SecretState.VersionOrNull(secret, s.VersionId, s.VersionStage);
                if (version is null || version.Binary)
                {
                    return (null, version is null
                        ? $"unable to retrieve secret from asm: ResourceNotFoundException: Secrets Manager can't find the specified secret value for {(s.VersionId is not null ? "VersionId: " + s.VersionId : "staging label: " + (s.VersionStage ?? SecretState.Current))}. ({secret.Arn})"
                        : $"unable to retrieve secret from asm: the secret {secret.Arn} holds a SecretBinary, which cannot be an environment variable");
                }

                var text = SecretState.Text(open(version.Value, SecretState.VersionContext(secret, version)));
                if (s.JsonKey is null)
                {
                    return (text, null);
                }

                return JsonMember(text, s.JsonKey) is { } member
                    ? (member, null)
                    : (null, $"unable to retrieve secret from asm: retrieved secret from Secrets Manager did not contain json key {s.JsonKey} ({secret.Arn})");
            default:
                throw new ArgumentOutOfRangeException(nameof(reference));
        }
    }

    /// <summary>A top-level member of a JSON object: a string as itself, anything else as its JSON text.</summary>
    private static string? JsonMember(string json, string key)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(key, out var value)
                ? value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static (string? Username, string? Password) Credentials(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
            var root = document.RootElement;
            string? Member(string name) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return (Member("username"), Member("password"));
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }
}
