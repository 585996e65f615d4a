using System.Collections.Immutable;
using System.Text;
using System.Text.RegularExpressions;
using EcsLite.Api.V1;
using EcsLite.Store.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Secrets;

/// <summary>The error words of Parameter Store and Secrets Manager.</summary>
public static class SecretErrors
{
    public const string ValidationException = nameof(ValidationException);
    public const string ParameterNotFound = nameof(ParameterNotFound);
    public const string ParameterAlreadyExists = nameof(ParameterAlreadyExists);
    public const string ParameterVersionNotFound = nameof(ParameterVersionNotFound);
    public const string ParameterLimitExceeded = nameof(ParameterLimitExceeded);
    public const string ParameterPatternMismatchException = nameof(ParameterPatternMismatchException);
    public const string InvalidAllowedPatternException = nameof(InvalidAllowedPatternException);
    public const string HierarchyLevelLimitExceededException = nameof(HierarchyLevelLimitExceededException);
    public const string UnsupportedParameterType = nameof(UnsupportedParameterType);
    public const string InvalidPolicyTypeException = nameof(InvalidPolicyTypeException);
    public const string InvalidFilterKey = nameof(InvalidFilterKey);
    public const string InvalidFilterOption = nameof(InvalidFilterOption);
    public const string ResourceNotFoundException = nameof(ResourceNotFoundException);
    public const string ResourceExistsException = nameof(ResourceExistsException);
    public const string InvalidRequestException = nameof(InvalidRequestException);
    public const string InvalidParameterException = nameof(InvalidParameterException);
    public const string LimitExceededException = nameof(LimitExceededException);

    public static EcsException Validation(string field, string message) => new(ValidationException, $"{field}: {message}", field);

    public static EcsException Invalid(string field, string message) => new(InvalidParameterException, $"{field}: {message}", field);
}

/// <summary>
/// Parameters and secrets as one immutable value: what the Secrets service's calls decide, in Parameter
/// Store's and Secrets Manager's rules and words. Values are sealed and opened by the caller's key
/// (<see cref="Sealer"/>, <see cref="Opener"/>), so the state holds ciphertext only; commands return the
/// new state and the one record to store (or the name removed).
/// </summary>
public sealed record SecretState(ImmutableSortedDictionary<string, StoredParameter> Parameters, ImmutableSortedDictionary<string, StoredSecret> Secrets)
{
    /// <summary>Encrypts a value, bound to <c>context</c> (what it is the value of).</summary>
    public delegate EncryptedValue Sealer(ReadOnlySpan<byte> plaintext, string context);

    /// <summary>Decrypts a value sealed with the same context; throws if it was altered or moved.</summary>
    public delegate byte[] Opener(EncryptedValue value, string context);

    public const string Current = "AWSCURRENT";
    public const string Previous = "AWSPREVIOUS";

    // Parameter Store's quotas: 10,000 Standard parameters, 4 KB values (8 KB Advanced), 15 levels,
    // names of at most 1,011 characters. Secrets Manager's: 64 KB values, names of 512; EcsLite keeps at
    // most 10,000 secrets (all are in memory) and 20 versions of one (every version has a stage).
    public const int MaxParameters = 10_000;
    public const int MaxSecrets = 10_000;
    public const int MaxVersions = 20;
    public const int StandardValueLength = 4096;
    public const int AdvancedValueLength = 8192;
    public const int MaxSecretBytes = 65_536;

    private static readonly Regex ParameterName = new(@"^[a-zA-Z0-9_.\-/]{1,1011}$", RegexOptions.CultureInvariant);
    private static readonly Regex SecretName = new(@"^[a-zA-Z0-9/_+=.@\-]{1,512}$", RegexOptions.CultureInvariant);
    private static readonly Regex ArnSuffix = new(@"-[a-zA-Z0-9]{6}$", RegexOptions.CultureInvariant);
    private static readonly Regex VersionId = new(@"^[a-zA-Z0-9\-]{32,64}$", RegexOptions.CultureInvariant);

    public static readonly SecretState Empty = new(
        ImmutableSortedDictionary.Create<string, StoredParameter>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, StoredSecret>(StringComparer.Ordinal));

    public static SecretState Load(IEnumerable<StoredParameter> parameters, IEnumerable<StoredSecret> secrets) => new(
        parameters.ToImmutableSortedDictionary(p => p.Metadata.Name, p => p, StringComparer.Ordinal),
        secrets.ToImmutableSortedDictionary(s => s.Name, s => s, StringComparer.Ordinal));

    public static string ParameterArn(ArnFormat arns, string name) =>
        $"arn:aws:ssm:{arns.Region}:{arns.AccountId}:parameter{(name.StartsWith('/') ? "" : "/")}{name}";

    /// <summary>The associated data of a parameter's value: its name and version.</summary>
    public static string ParameterContext(ParameterMetadata metadata) => $"parameter:{metadata.Name}:{metadata.Version}";

    public static string VersionContext(StoredSecret secret, StoredSecretVersion version) => $"secret:{secret.Arn}:{version.VersionId}";

    public static string Text(byte[] value) => Encoding.UTF8.GetString(value);

    // ---- Parameter Store ----

    public StoredParameter? ParameterOrNull(string name) => Parameters.GetValueOrDefault(name);

    public (SecretState State, StoredParameter Parameter) PutParameter(PutParameterRequest request, string caller, DateTimeOffset now, ArnFormat arns, Sealer seal)
    {
        var name = CheckParameterName(request.Name, "Name");
        var existing = Parameters.GetValueOrDefault(name);
        if (existing is not null && !(request.HasOverwrite && request.Overwrite))
        {
            throw new EcsException(SecretErrors.ParameterAlreadyExists, "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.", "Overwrite");
        }

        if (existing is null && Parameters.Count >= MaxParameters)
        {
            throw new EcsException(SecretErrors.ParameterLimitExceeded, $"You have reached the limit of {MaxParameters} parameters.");
        }

        if (existing is not null && request.Tags.Count > 0)
        {
            throw SecretErrors.Validation("Tags", "Tags can only be given when a parameter is created (use AddTagsToResource to change them).");
        }

        var type = request.Type.Length > 0 ? request.Type : existing?.Metadata.Type ?? "String";
        if (type is not ("String" or "StringList" or "SecureString"))
        {
            throw new EcsException(SecretErrors.UnsupportedParameterType, $"Type: {type} is not one of String, StringList, SecureString.", "Type");
        }

        if (request.Value.Length == 0)
        {
            throw SecretErrors.Validation("Value", "must not be empty.");
        }

        var tier = request.Tier switch
        {
            "" => existing?.Metadata.Tier ?? "Standard",
            "Standard" or "Advanced" => request.Tier,
            "Intelligent-Tiering" => request.Value.Length > StandardValueLength ? "Advanced" : "Standard",
            _ => throw SecretErrors.Validation("Tier", $"{request.Tier} is not one of Standard, Advanced, Intelligent-Tiering."),
        };
        var maxLength = tier == "Advanced" ? AdvancedValueLength : StandardValueLength;
        if (request.Value.Length > maxLength)
        {
            throw SecretErrors.Validation("Value", $"a {tier} parameter's value is at most {maxLength} characters (got {request.Value.Length}).");
        }

        if (request.Policies.Length > 0)
        {
            throw new EcsException(SecretErrors.InvalidPolicyTypeException, "Policies: parameter policies (Expiration, ExpirationNotification, NoChangeNotification) are not supported by EcsLite.", "Policies");
        }

        if (request.DataType is not ("" or "text"))
        {
            throw SecretErrors.Validation("DataType", $"{request.DataType} is not supported; only text.");
        }

        CheckLength(request.Description, 1024, "Description");
        CheckTags(request.Tags);
        var pattern = request.AllowedPattern.Length > 0 ? request.AllowedPattern : existing?.Metadata.AllowedPattern ?? "";
        CheckPattern(pattern, request.Value);

        var metadata = new ParameterMetadata
        {
            Name = name,
            ARN = ParameterArn(arns, name),
            Type = type,
            KeyId = type == "SecureString" ? (request.KeyId.Length > 0 ? request.KeyId : "alias/aws/ssm") : "",
            LastModifiedDate = Timestamp.FromDateTimeOffset(now),
            LastModifiedUser = caller,
            Description = request.Description.Length > 0 ? request.Description : existing?.Metadata.Description ?? "",
            AllowedPattern = pattern,
            Version = (existing?.Metadata.Version ?? 0) + 1,
            Tier = tier,
            DataType = "text",
        };
        var stored = new StoredParameter
        {
            Metadata = metadata,
            Value = seal(Encoding.UTF8.GetBytes(request.Value), ParameterContext(metadata)),
        };
        stored.Tags.Add(existing?.Tags ?? (IEnumerable<ResourceTag>)request.Tags);
        return (this with { Parameters = Parameters.SetItem(name, stored) }, stored);
    }

    public GetParameterResponse GetParameter(GetParameterRequest request, Opener open) =>
        new() { Parameter = Read(request.Name, request.HasWithDecryption && request.WithDecryption, open, "Name") };

    public GetParametersResponse GetParameters(GetParametersRequest request, Opener open)
    {
        if (request.Names.Count is < 1 or > 10)
        {
            throw SecretErrors.Validation("Names", $"1 to 10 names are allowed (got {request.Names.Count}).");
        }

        var response = new GetParametersResponse();
        foreach (var name in request.Names.Distinct(StringComparer.Ordinal))
        {
            try
            {
                response.Parameters.Add(Read(name, request.HasWithDecryption && request.WithDecryption, open, "Names"));
            }
            catch (EcsException e) when (e.ErrorType is SecretErrors.ParameterNotFound or SecretErrors.ParameterVersionNotFound)
            {
                response.InvalidParameters.Add(name);
            }
        }

        return response;
    }

    public (SecretState State, string Name) DeleteParameter(DeleteParameterRequest request)
    {
        var name = NameOf(request.Name);
        return Parameters.ContainsKey(name)
            ? (this with { Parameters = Parameters.Remove(name) }, name)
            : throw new EcsException(SecretErrors.ParameterNotFound, $"Parameter {request.Name} not found.", "Name");
    }

    public DescribeParametersResponse DescribeParameters(DescribeParametersRequest request)
    {
        if (request.HasMaxResults && request.MaxResults is < 1 or > 50)
        {
            throw SecretErrors.Validation("MaxResults", $"must be between 1 and 50 (got {request.MaxResults}).");
        }

        var filters = request.Filters.Select(f => (Key: f.Key, Option: "Equals", f.Values))
            .Concat(request.ParameterFilters.Select(f => (f.Key, Option: f.Option.Length > 0 ? f.Option : f.Key == "Path" ? "OneLevel" : "Equals", f.Values)))
            .ToList();
        var matching = Parameters.Values.Where(p => filters.All(f => Matches(p.Metadata, f.Key, f.Option, f.Values)));
        var (page, next) = Paging.Take(matching, p => p.Metadata.Name, request.HasMaxResults, request.HasMaxResults ? request.MaxResults : 50, request.NextToken);
        var response = new DescribeParametersResponse { NextToken = next ?? "" };
        response.Parameters.Add(page.Select(p => p.Metadata));
        return response;
    }

    private static bool Matches(ParameterMetadata p, string key, string option, IEnumerable<string> values) => (key, option) switch
    {
        ("Name", "Equals") => values.Contains(p.Name),
        ("Name", "BeginsWith") => values.Any(v => p.Name.StartsWith(v, StringComparison.Ordinal)),
        ("Type", "Equals") => values.Contains(p.Type),
        ("KeyId", "Equals") => values.Contains(p.KeyId),
        ("Path", "Recursive") => values.Any(v => p.Name.StartsWith(v.TrimEnd('/') + "/", StringComparison.Ordinal)),
        ("Path", "OneLevel") => values.Any(v => p.Name.StartsWith(v.TrimEnd('/') + "/", StringComparison.Ordinal)
            && !p.Name[(v.TrimEnd('/').Length + 1)..].Contains('/', StringComparison.Ordinal)),
        ("Name" or "Type" or "KeyId" or "Path", _) => throw new EcsException(SecretErrors.InvalidFilterOption, $"The option {option} is not valid for the key {key}.", "ParameterFilters"),
        _ => throw new EcsException(SecretErrors.InvalidFilterKey, $"The filter key {key} is not one of Name, Type, KeyId, Path.", "ParameterFilters"),
    };

    /// <summary>A parameter by name, "name:version" or ARN; a SecureString without decryption shows its ciphertext, as in AWS.</summary>
    private Parameter Read(string reference, bool decrypt, Opener open, string field)
    {
        var selector = "";
        var name = reference;
        var colon = reference.StartsWith("arn:", StringComparison.Ordinal) ? reference.IndexOf(':', reference.IndexOf("parameter/", StringComparison.Ordinal) + 1) : reference.LastIndexOf(':');
        if (colon > 0)
        {
            selector = reference[colon..];
            name = reference[..colon];
        }

        name = NameOf(name);
        if (!Parameters.TryGetValue(name, out var stored))
        {
            throw new EcsException(SecretErrors.ParameterNotFound, $"Parameter {name} not found.", field);
        }

        if (selector.Length > 0 && selector[1..] != stored.Metadata.Version.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            throw new EcsException(SecretErrors.ParameterVersionNotFound, $"Version {selector[1..]} of parameter {name} was not found (EcsLite keeps the latest version, {stored.Metadata.Version}).", field);
        }

        var m = stored.Metadata;
        return new Parameter
        {
            Name = m.Name,
            Type = m.Type,
            Value = m.Type != "SecureString" || decrypt ? Text(open(stored.Value, ParameterContext(m))) : Convert.ToBase64String(stored.Value.Ciphertext.ToByteArray()),
            Version = m.Version,
            Selector = selector,
            LastModifiedDate = m.LastModifiedDate,
            ARN = m.ARN,
            DataType = m.DataType,
        };
    }

    /// <summary>The ARN a policy sees for a parameter reference (name, name:version or ARN).</summary>
    public string ParameterArnOf(string reference, ArnFormat arns)
    {
        var name = NameOf(reference.StartsWith("arn:", StringComparison.Ordinal) ? reference : reference.Split(':')[0]);
        return Parameters.TryGetValue(name, out var p) ? p.Metadata.ARN : ParameterArn(arns, name);
    }

    /// <summary>A parameter name given as itself or its ARN.</summary>
    private string NameOf(string reference) =>
        reference.StartsWith("arn:", StringComparison.Ordinal) && SecretReferences.Parse(reference, new ArnFormat()) is SecretReference.Parameter p
            ? (Parameters.ContainsKey(p.Name) || !Parameters.ContainsKey("/" + p.Name) ? p.Name : "/" + p.Name)
            : reference;

    private static string CheckParameterName(string name, string field)
    {
        if (!ParameterName.IsMatch(name))
        {
            throw SecretErrors.Validation(field, "a parameter name is 1 to 1,011 of the characters a-z, A-Z, 0-9, '.', '-', '_' and '/'.");
        }

        if (name.Contains('/', StringComparison.Ordinal) && !name.StartsWith('/') || name.Contains("//", StringComparison.Ordinal) || name.Length > 1 && name.EndsWith('/'))
        {
            throw SecretErrors.Validation(field, "a name with a path is fully qualified: /level/.../name.");
        }

        if (name.Count(c => c == '/') > 15)
        {
            throw new EcsException(SecretErrors.HierarchyLevelLimitExceededException, "A hierarchy can have a maximum of 15 levels.", field);
        }

        var bare = name.TrimStart('/');
        if (bare.StartsWith("aws", StringComparison.OrdinalIgnoreCase) || bare.StartsWith("ssm", StringComparison.OrdinalIgnoreCase))
        {
            throw SecretErrors.Validation(field, "parameter names beginning with aws or ssm (case-insensitive) are reserved.");
        }

        return name;
    }

    private static void CheckPattern(string pattern, string value)
    {
        if (pattern.Length == 0)
        {
            return;
        }

        CheckLength(pattern, 1024, "AllowedPattern");
        Regex regex;
        try
        {
            regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException e)
        {
            throw new EcsException(SecretErrors.InvalidAllowedPatternException, $"AllowedPattern: {e.Message}", "AllowedPattern");
        }

        bool matched;
        try
        {
            matched = regex.IsMatch(value);
        }
        catch (RegexMatchTimeoutException)
        {
            throw new EcsException(SecretErrors.InvalidAllowedPatternException, "AllowedPattern: the pattern took too long to match.", "AllowedPattern");
        }

        if (!matched)
        {
            throw new EcsException(SecretErrors.ParameterPatternMismatchException, $"Parameter value, cannot be validated against allowedPattern: {pattern}", "Value");
        }
    }

    // ---- Secrets Manager ----

    /// <summary>
    /// A secret by name, full ARN or ARN without its six-character suffix. An ARN's region, account and
    /// suffix are another Secrets Manager's (a task definition written for AWS): when no secret here has
    /// that ARN, its name decides, so such a definition runs unchanged against the secret of that name.
    /// </summary>
    public StoredSecret? SecretOrNull(string secretId)
    {
        if (!secretId.StartsWith("arn:", StringComparison.Ordinal))
        {
            return Secrets.GetValueOrDefault(secretId);
        }

        var last = secretId.Split(':') is { Length: >= 7 } parts ? parts[6] : "";
        return Secrets.Values.FirstOrDefault(s => s.Arn.EndsWith(":secret:" + last, StringComparison.Ordinal))
            ?? Secrets.GetValueOrDefault(last)
            ?? (ArnSuffix.IsMatch(last) ? Secrets.GetValueOrDefault(last[..^7]) : null);
    }

    /// <summary>The ARN a policy sees for a secret reference (for one that does not exist, the reference's own).</summary>
    public string SecretArnOf(string secretId, ArnFormat arns) =>
        SecretOrNull(secretId)?.Arn ?? (secretId.StartsWith("arn:", StringComparison.Ordinal) ? secretId : SecretArn(arns, secretId, "??????"));

    public static string SecretArn(ArnFormat arns, string name, string suffix) => $"arn:aws:secretsmanager:{arns.Region}:{arns.AccountId}:secret:{name}-{suffix}";

    private StoredSecret Find(string secretId, bool allowDeleted = false)
    {
        var secret = SecretOrNull(secretId) ?? throw new EcsException(SecretErrors.ResourceNotFoundException, "Secrets Manager can't find the specified secret.", "SecretId");
        if (!allowDeleted && secret.DeletionDate is not null)
        {
            throw new EcsException(SecretErrors.InvalidRequestException, "You can't perform this operation on the secret because it was marked for deletion.", "SecretId");
        }

        return secret;
    }

    public (SecretState State, StoredSecret Secret, CreateSecretResponse Response) CreateSecret(
        CreateSecretRequest request, string suffix, string versionId, DateTimeOffset now, ArnFormat arns, Sealer seal, Opener open)
    {
        if (!SecretName.IsMatch(request.Name))
        {
            throw SecretErrors.Invalid("Name", "a secret name is 1 to 512 of the characters a-z, A-Z, 0-9 and / _ + = . @ -.");
        }

        CheckLength(request.Description, 2048, "Description");
        CheckTags(request.Tags);
        var value = Payload(request.HasSecretString, request.SecretString, request.SecretBinary);
        var id = VersionIdOf(request.ClientRequestToken, versionId);
        if (Secrets.TryGetValue(request.Name, out var existing))
        {
            // The same token and value again is the same call (a retry); anything else is a conflict.
            if (existing.DeletionDate is null && existing.Versions.FirstOrDefault(v => v.VersionId == id) is { } same && value is { } v2 && Same(existing, same, v2, open))
            {
                return (this, existing, new CreateSecretResponse { ARN = existing.Arn, Name = existing.Name, VersionId = id });
            }

            throw new EcsException(existing.DeletionDate is null ? SecretErrors.ResourceExistsException : SecretErrors.InvalidRequestException,
                existing.DeletionDate is null
                    ? $"The operation failed because the secret {request.Name} already exists."
                    : "You can't create this secret because a secret with this name is already scheduled for deletion.", "Name");
        }

        if (Secrets.Count >= MaxSecrets)
        {
            throw new EcsException(SecretErrors.LimitExceededException, $"You have reached the limit of {MaxSecrets} secrets.");
        }

        var secret = new StoredSecret
        {
            Arn = SecretArn(arns, request.Name, suffix),
            Name = request.Name,
            Description = request.Description,
            KmsKeyId = request.KmsKeyId,
            CreatedDate = Timestamp.FromDateTimeOffset(now),
            LastChangedDate = Timestamp.FromDateTimeOffset(now),
        };
        secret.Tags.Add(request.Tags);
        if (value is { } payload)
        {
            secret.Versions.Add(Version(secret, id, [Current], payload, now, seal));
        }

        return (this with { Secrets = Secrets.SetItem(secret.Name, secret) }, secret,
            new CreateSecretResponse { ARN = secret.Arn, Name = secret.Name, VersionId = value is null ? "" : id });
    }

    public (SecretState State, StoredSecret Secret, PutSecretValueResponse Response) PutSecretValue(
        PutSecretValueRequest request, string versionId, DateTimeOffset now, Sealer seal, Opener open)
    {
        var secret = Find(request.SecretId);
        var value = Payload(request.HasSecretString, request.SecretString, request.SecretBinary)
            ?? throw SecretErrors.Invalid("SecretString", "You must provide either SecretString or SecretBinary.");
        var id = VersionIdOf(request.ClientRequestToken, versionId);
        var stages = request.VersionStages.Count > 0 ? request.VersionStages.Distinct(StringComparer.Ordinal).ToList() : [Current];
        if (stages.Any(s => s.Length is < 1 or > 256))
        {
            throw SecretErrors.Invalid("VersionStages", "a staging label is 1 to 256 characters.");
        }

        if (secret.Versions.FirstOrDefault(v => v.VersionId == id) is { } same)
        {
            return Same(secret, same, value, open)
                ? (this, secret, Response(secret, same))
                : throw new EcsException(SecretErrors.ResourceExistsException, $"A version with the id {id} already exists with another value.", "ClientRequestToken");
        }

        var updated = secret.Clone();
        updated.Versions.Clear();
        foreach (var version in secret.Versions)
        {
            var kept = version.Clone();
            kept.Stages.Clear();
            kept.Stages.Add(version.Stages.Where(s => !stages.Contains(s) && !(s == Previous && stages.Contains(Current))));
            if (stages.Contains(Current) && version.Stages.Contains(Current))
            {
                kept.Stages.Add(Previous);
            }

            if (kept.Stages.Count > 0)
            {
                updated.Versions.Add(kept);
            }
        }

        var added = Version(secret, id, stages, value, now, seal);
        updated.Versions.Add(added);
        if (updated.Versions.Count > MaxVersions)
        {
            throw new EcsException(SecretErrors.LimitExceededException, $"A secret keeps at most {MaxVersions} versions with staging labels.");
        }

        updated.LastChangedDate = Timestamp.FromDateTimeOffset(now);
        return (this with { Secrets = Secrets.SetItem(updated.Name, updated) }, updated, Response(updated, added));

        static PutSecretValueResponse Response(StoredSecret s, StoredSecretVersion v) =>
            new() { ARN = s.Arn, Name = s.Name, VersionId = v.VersionId, VersionStages = { v.Stages } };
    }

    public GetSecretValueResponse GetSecretValue(GetSecretValueRequest request, Opener open)
    {
        var secret = Find(request.SecretId);
        var version = VersionOrNull(secret, request.VersionId.Length > 0 ? request.VersionId : null, request.VersionStage.Length > 0 ? request.VersionStage : null)
            ?? throw new EcsException(SecretErrors.ResourceNotFoundException, "Secrets Manager can't find the specified secret value for the version or staging label given.", request.VersionId.Length > 0 ? "VersionId" : "VersionStage");
        var value = open(version.Value, VersionContext(secret, version));
        var response = new GetSecretValueResponse
        {
            ARN = secret.Arn,
            Name = secret.Name,
            VersionId = version.VersionId,
            VersionStages = { version.Stages },
            CreatedDate = version.CreatedDate,
        };
        if (version.Binary)
        {
            response.SecretBinary = ByteString.CopyFrom(value);
        }
        else
        {
            response.SecretString = Text(value);
        }

        return response;
    }

    /// <summary>A version by id or staging label (AWSCURRENT if neither); both must agree when both are given.</summary>
    public static StoredSecretVersion? VersionOrNull(StoredSecret secret, string? versionId, string? stage) =>
        secret.Versions.FirstOrDefault(v =>
            (versionId is null || v.VersionId == versionId) && (stage is null && versionId is not null || v.Stages.Contains(stage ?? Current)));

    public DescribeSecretResponse DescribeSecret(DescribeSecretRequest request)
    {
        var secret = Find(request.SecretId, allowDeleted: true);
        var response = new DescribeSecretResponse
        {
            ARN = secret.Arn,
            Name = secret.Name,
            Description = secret.Description,
            KmsKeyId = secret.KmsKeyId,
            LastChangedDate = secret.LastChangedDate,
            DeletedDate = secret.DeletionDate,
            CreatedDate = secret.CreatedDate,
            Tags = { secret.Tags },
        };
        response.VersionIdsToStages.Add(Stages(secret));
        return response;
    }

    public ListSecretsResponse ListSecrets(ListSecretsRequest request)
    {
        if (request.HasMaxResults && request.MaxResults is < 1 or > 100)
        {
            throw SecretErrors.Invalid("MaxResults", $"must be between 1 and 100 (got {request.MaxResults}).");
        }

        var descending = request.SortOrder switch
        {
            "" or "asc" => false,
            "desc" => true,
            _ => throw SecretErrors.Invalid("SortOrder", $"{request.SortOrder} is not one of asc, desc."),
        };
        var secrets = Secrets.Values
            .Where(s => s.DeletionDate is null || request.HasIncludePlannedDeletion && request.IncludePlannedDeletion)
            .Where(s => request.Filters.All(f => Matches(s, f)));
        var sorted = descending ? secrets.Reverse() : secrets;
        var (page, next) = Paging.Take(sorted, s => s.Name, request.HasMaxResults, request.HasMaxResults ? request.MaxResults : 100, request.NextToken,
            descending ? new ReverseOrdinal() : null);
        var response = new ListSecretsResponse { NextToken = next ?? "" };
        foreach (var s in page)
        {
            var entry = new SecretListEntry
            {
                ARN = s.Arn,
                Name = s.Name,
                Description = s.Description,
                KmsKeyId = s.KmsKeyId,
                LastChangedDate = s.LastChangedDate,
                DeletedDate = s.DeletionDate,
                CreatedDate = s.CreatedDate,
                Tags = { s.Tags },
            };
            entry.SecretVersionsToStages.Add(Stages(s));
            response.SecretList.Add(entry);
        }

        return response;
    }

    private static bool Matches(StoredSecret secret, SecretsFilter filter)
    {
        bool Any(IEnumerable<string> texts) => filter.Values.Any(v => texts.Any(t => t.StartsWith(v.TrimStart('!'), StringComparison.Ordinal)) != v.StartsWith('!'));
        return filter.Key switch
        {
            "name" => Any([secret.Name]),
            "description" => Any([secret.Description]),
            "tag-key" => Any(secret.Tags.Select(t => t.Key)),
            "tag-value" => Any(secret.Tags.Select(t => t.Value)),
            "all" => Any([secret.Name, secret.Description, .. secret.Tags.Select(t => t.Key), .. secret.Tags.Select(t => t.Value)]),
            _ => throw SecretErrors.Invalid("Filters", $"the filter key {filter.Key} is not one of description, name, tag-key, tag-value, all."),
        };
    }

    /// <summary>Schedules the secret's deletion (7 to 30 days ahead, 30 by default), or deletes it at once (Removed).</summary>
    public (SecretState State, StoredSecret? Scheduled, string? Removed, DeleteSecretResponse Response) DeleteSecret(DeleteSecretRequest request, DateTimeOffset now)
    {
        var secret = Find(request.SecretId, allowDeleted: true);
        var force = request.HasForceDeleteWithoutRecovery && request.ForceDeleteWithoutRecovery;
        if (force && request.HasRecoveryWindowInDays)
        {
            throw SecretErrors.Invalid("RecoveryWindowInDays", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
        }

        if (request.HasRecoveryWindowInDays && request.RecoveryWindowInDays is < 7 or > 30)
        {
            throw SecretErrors.Invalid("RecoveryWindowInDays", $"must be between 7 and 30 (got {request.RecoveryWindowInDays}).");
        }

        if (force)
        {
            return (this with { Secrets = Secrets.Remove(secret.Name) }, null, secret.Name,
                new DeleteSecretResponse { ARN = secret.Arn, Name = secret.Name, DeletionDate = Timestamp.FromDateTimeOffset(now) });
        }

        if (secret.DeletionDate is not null)
        {
            throw new EcsException(SecretErrors.InvalidRequestException, "You can't perform this operation on the secret because it was already scheduled for deletion.", "SecretId");
        }

        var scheduled = secret.Clone();
        scheduled.DeletionDate = Timestamp.FromDateTimeOffset(now + TimeSpan.FromDays(request.HasRecoveryWindowInDays ? request.RecoveryWindowInDays : 30));
        return (this with { Secrets = Secrets.SetItem(secret.Name, scheduled) }, scheduled, null,
            new DeleteSecretResponse { ARN = secret.Arn, Name = secret.Name, DeletionDate = scheduled.DeletionDate });
    }

    /// <summary>Secrets whose scheduled deletion has come.</summary>
    public IEnumerable<string> DueForDeletion(DateTimeOffset now) =>
        Secrets.Values.Where(s => s.DeletionDate is not null && s.DeletionDate.ToDateTimeOffset() <= now).Select(s => s.Name);

    public SecretState Without(IEnumerable<string> secretNames) => this with { Secrets = Secrets.RemoveRange(secretNames) };

    private static Dictionary<string, ListValue> Stages(StoredSecret secret) =>
        secret.Versions.ToDictionary(v => v.VersionId, v => new ListValue { Values = { v.Stages.Select(Value.ForString) } });

    private static bool Same(StoredSecret secret, StoredSecretVersion version, (byte[] Bytes, bool Binary) value, Opener open) =>
        version.Binary == value.Binary && open(version.Value, VersionContext(secret, version)).AsSpan().SequenceEqual(value.Bytes);

    private static (byte[] Bytes, bool Binary)? Payload(bool hasString, string text, ByteString binary)
    {
        if (hasString && !binary.IsEmpty)
        {
            throw SecretErrors.Invalid("SecretString", "You can't specify both a binary secret value and a string secret value in the same secret.");
        }

        var bytes = hasString ? Encoding.UTF8.GetBytes(text) : binary.IsEmpty ? null : binary.ToByteArray();
        if (bytes?.Length > MaxSecretBytes)
        {
            throw SecretErrors.Invalid(hasString ? "SecretString" : "SecretBinary", $"a secret value is at most {MaxSecretBytes} bytes (got {bytes.Length}).");
        }

        return bytes is null ? null : (bytes, !hasString);
    }

    private static string VersionIdOf(string token, string generated)
    {
        if (token.Length == 0)
        {
            return generated;
        }

        return VersionId.IsMatch(token) ? token : throw SecretErrors.Invalid("ClientRequestToken", "must be 32 to 64 letters, digits and hyphens.");
    }

    private static StoredSecretVersion Version(StoredSecret secret, string id, IEnumerable<string> stages, (byte[] Bytes, bool Binary) value, DateTimeOffset now, Sealer seal)
    {
        var version = new StoredSecretVersion { VersionId = id, CreatedDate = Timestamp.FromDateTimeOffset(now), Binary = value.Binary };
        version.Stages.Add(stages);
        version.Value = seal(value.Bytes, VersionContext(secret, version));
        return version;
    }

    // ---- Keys ----

    /// <summary>Every value opened and sealed again (under the sealer's current key): the records that changed.</summary>
    public (SecretState State, IReadOnlyList<StoredParameter> Parameters, IReadOnlyList<StoredSecret> Secrets) Reseal(Func<EncryptedValue, bool> stale, Opener open, Sealer seal)
    {
        var parameters = Parameters.Values.Where(p => stale(p.Value)).Select(p =>
        {
            var copy = p.Clone();
            copy.Value = seal(open(p.Value, ParameterContext(p.Metadata)), ParameterContext(p.Metadata));
            return copy;
        }).ToList();
        var secrets = Secrets.Values.Where(s => s.Versions.Any(v => stale(v.Value))).Select(s =>
        {
            var copy = s.Clone();
            foreach (var version in copy.Versions)
            {
                version.Value = seal(open(version.Value, VersionContext(s, version)), VersionContext(s, version));
            }

            return copy;
        }).ToList();
        return (this with
        {
            Parameters = Parameters.SetItems(parameters.Select(p => System.Collections.Generic.KeyValuePair.Create(p.Metadata.Name, p))),
            Secrets = Secrets.SetItems(secrets.Select(s => System.Collections.Generic.KeyValuePair.Create(s.Name, s))),
        }, parameters, secrets);
    }

    private static void CheckLength(string value, int max, string field)
    {
        if (value.Length > max)
        {
            throw SecretErrors.Validation(field, $"at most {max} characters are allowed (got {value.Length}).");
        }
    }

    private static void CheckTags(IEnumerable<ResourceTag> tags)
    {
        var list = tags.ToList();
        if (list.Count > 50)
        {
            throw SecretErrors.Validation("Tags", $"at most 50 tags are allowed (got {list.Count}).");
        }

        foreach (var tag in list)
        {
            if (tag.Key.Length is < 1 or > 128 || tag.Value.Length > 256)
            {
                throw SecretErrors.Validation("Tags", "a tag's Key is 1 to 128 characters and its Value at most 256.");
            }
        }
    }

    private sealed class ReverseOrdinal : StringComparer
    {
        public override int Compare(string? x, string? y) => string.CompareOrdinal(y, x);

        public override bool Equals(string? x, string? y) => string.Equals(x, y, StringComparison.Ordinal);

        public override int GetHashCode(string obj) => StringComparer.Ordinal.GetHashCode(obj);
    }
}
