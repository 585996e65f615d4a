using System.Security.Cryptography;
using System.Text;
using CsCheck;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Secrets;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Store.V1;
using Google.Protobuf;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>Parameter Store's and Secrets Manager's rules, ECS's valueFrom, and who may read what.</summary>
public sealed class SecretStateTests
{
    private static readonly ArnFormat Arns = new();
    private static readonly DateTimeOffset Now = Fixtures.Now;
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);
    private const string Caller = "arn:aws:iam::000000000000:user/admin";

    // The real cipher, with a key of the test's own: what the state holds is ciphertext.
    private static readonly SecretState.Sealer Seal = (plaintext, context) =>
    {
        var nonce = RandomNumberGenerator.GetBytes(12);
        var output = new byte[plaintext.Length + 16];
        using var aes = new AesGcm(Key, 16);
        aes.Encrypt(nonce, plaintext, output.AsSpan(0, plaintext.Length), output.AsSpan(plaintext.Length), Encoding.UTF8.GetBytes(context));
        return new EncryptedValue { KeyId = "test", Nonce = ByteString.CopyFrom(nonce), Ciphertext = ByteString.CopyFrom(output) };
    };

    private static readonly SecretState.Opener Open = (value, context) =>
    {
        var sealedBytes = value.Ciphertext.ToByteArray();
        var plaintext = new byte[sealedBytes.Length - 16];
        using var aes = new AesGcm(Key, 16);
        aes.Decrypt(value.Nonce.Span, sealedBytes.AsSpan(0, plaintext.Length), sealedBytes.AsSpan(plaintext.Length), plaintext, Encoding.UTF8.GetBytes(context));
        return plaintext;
    };

    private static SecretState Put(SecretState state, string name, string value, string type = "SecureString", bool overwrite = false) =>
        state.PutParameter(new PutParameterRequest { Name = name, Value = value, Type = type, Overwrite = overwrite }, Caller, Now, Arns, Seal).State;

    private static (SecretState State, StoredSecret Secret) Create(SecretState state, string name, string value, string suffix = "AbCdEf") =>
        state.CreateSecret(new CreateSecretRequest { Name = name, SecretString = value }, suffix, Guid.NewGuid().ToString(), Now, Arns, Seal, Open) is var (s, secret, _) ? (s, secret) : default;

    [Fact]
    public void A_parameter_is_versioned_overwritten_only_when_asked_and_its_secure_value_is_shown_only_with_decryption()
    {
        var state = Put(SecretState.Empty, "/prod/db/password", "hunter2");
        var exists = Assert.Throws<EcsException>(() => Put(state, "/prod/db/password", "other"));
        Assert.Equal(SecretErrors.ParameterAlreadyExists, exists.ErrorType);
        state = Put(state, "/prod/db/password", "hunter3", overwrite: true);

        var read = state.GetParameter(new GetParameterRequest { Name = "/prod/db/password", WithDecryption = true }, Open).Parameter;
        Assert.Equal(("hunter3", 2L, "SecureString", "arn:aws:ssm:local:000000000000:parameter/prod/db/password"), (read.Value, read.Version, read.Type, read.ARN));
        var hidden = state.GetParameter(new GetParameterRequest { Name = "/prod/db/password" }, Open).Parameter.Value;
        Assert.NotEqual("hunter3", hidden);
        Assert.DoesNotContain("hunter3", Encoding.UTF8.GetString(Convert.FromBase64String(hidden)), StringComparison.Ordinal);

        // The stored record holds no plaintext; Describe shows metadata only.
        Assert.DoesNotContain("hunter3", state.Parameters["/prod/db/password"].ToByteArray().Select(b => (char)b).Aggregate(new StringBuilder(), (s, c) => s.Append(c)).ToString(), StringComparison.Ordinal);
        var described = state.DescribeParameters(new DescribeParametersRequest()).Parameters.Single();
        Assert.Equal(("/prod/db/password", 2L, Caller), (described.Name, described.Version, described.LastModifiedUser));
        Assert.DoesNotContain("hunter3", described.ToString(), StringComparison.Ordinal);

        // By ARN, and with a version selector: the current one resolves, an older one is said to be gone.
        Assert.Equal("hunter3", state.GetParameter(new GetParameterRequest { Name = read.ARN, WithDecryption = true }, Open).Parameter.Value);
        Assert.Equal(":2", state.GetParameter(new GetParameterRequest { Name = "/prod/db/password:2", WithDecryption = true }, Open).Parameter.Selector);
        Assert.Equal(SecretErrors.ParameterVersionNotFound, Assert.Throws<EcsException>(() => state.GetParameter(new GetParameterRequest { Name = "/prod/db/password:1" }, Open)).ErrorType);

        var many = state.GetParameters(new GetParametersRequest { Names = { "/prod/db/password", "/nope" }, WithDecryption = true }, Open);
        Assert.Equal(["hunter3"], many.Parameters.Select(p => p.Value));
        Assert.Equal(["/nope"], many.InvalidParameters);

        var (deleted, _) = state.DeleteParameter(new DeleteParameterRequest { Name = "/prod/db/password" });
        Assert.Equal(SecretErrors.ParameterNotFound, Assert.Throws<EcsException>(() => deleted.DeleteParameter(new DeleteParameterRequest { Name = "/prod/db/password" })).ErrorType);
    }

    [Theory]
    [InlineData("prod/db", "Name", SecretErrors.ValidationException)]
    [InlineData("/prod//db", "Name", SecretErrors.ValidationException)]
    [InlineData("has space", "Name", SecretErrors.ValidationException)]
    [InlineData("/aws/reserved", "Name", SecretErrors.ValidationException)]
    [InlineData("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", "Name", SecretErrors.HierarchyLevelLimitExceededException)]
    public void A_bad_parameter_name_is_refused_in_Parameter_Stores_words(string name, string field, string error)
    {
        var refused = Assert.Throws<EcsException>(() => Put(SecretState.Empty, name, "v"));
        Assert.Equal((error, field), (refused.ErrorType, refused.Field));
    }

    [Fact]
    public void Values_types_tiers_and_patterns_are_checked_and_nothing_changes_on_a_refusal()
    {
        var state = Put(SecretState.Empty, "port", "8080", "String");
        EcsException Refused(PutParameterRequest r) => Assert.Throws<EcsException>(() => state.PutParameter(r, Caller, Now, Arns, Seal));
        Assert.Equal(SecretErrors.ValidationException, Refused(new() { Name = "big", Value = new string('x', 4097) }).ErrorType);
        Assert.Equal(SecretErrors.UnsupportedParameterType, Refused(new() { Name = "t", Value = "v", Type = "Number" }).ErrorType);
        Assert.Equal(SecretErrors.ParameterPatternMismatchException, Refused(new() { Name = "p", Value = "abc", AllowedPattern = "^[0-9]+$" }).ErrorType);
        Assert.Equal(SecretErrors.InvalidAllowedPatternException, Refused(new() { Name = "p", Value = "abc", AllowedPattern = "(" }).ErrorType);
        Assert.Equal(SecretErrors.InvalidPolicyTypeException, Refused(new() { Name = "p", Value = "abc", Policies = "[{\"Type\":\"Expiration\"}]" }).ErrorType);
        Assert.Single(state.Parameters);

        var advanced = state.PutParameter(new() { Name = "big", Value = new string('x', 8000), Tier = "Intelligent-Tiering" }, Caller, Now, Arns, Seal).Parameter;
        Assert.Equal(("Advanced", "String"), (advanced.Metadata.Tier, advanced.Metadata.Type));
    }

    [Fact]
    public void DescribeParameters_filters_by_path_name_and_type_and_pages()
    {
        var state = new[] { "/app/a", "/app/b", "/app/deep/c", "/other/d", "top" }.Aggregate(SecretState.Empty, (s, n) => Put(s, n, "v", n == "top" ? "String" : "SecureString"));
        string[] Names(params ParameterStringFilter[] filters) =>
            [.. state.DescribeParameters(new DescribeParametersRequest { ParameterFilters = { filters } }).Parameters.Select(p => p.Name)];
        Assert.Equal(["/app/a", "/app/b"], Names(new ParameterStringFilter { Key = "Path", Values = { "/app" } }));
        Assert.Equal(["/app/a", "/app/b", "/app/deep/c"], Names(new ParameterStringFilter { Key = "Path", Option = "Recursive", Values = { "/app/" } }));
        Assert.Equal(["top"], Names(new ParameterStringFilter { Key = "Type", Values = { "String" } }));
        Assert.Equal(["/other/d"], Names(new ParameterStringFilter { Key = "Name", Option = "BeginsWith", Values = { "/oth" } }));
        Assert.Equal(SecretErrors.InvalidFilterKey, Assert.Throws<EcsException>(() => Names(new ParameterStringFilter { Key = "Label", Values = { "x" } })).ErrorType);

        var first = state.DescribeParameters(new DescribeParametersRequest { MaxResults = 2 });
        var second = state.DescribeParameters(new DescribeParametersRequest { MaxResults = 2, NextToken = first.NextToken });
        Assert.Equal(["/app/a", "/app/b", "/app/deep/c", "/other/d"], first.Parameters.Concat(second.Parameters).Select(p => p.Name));
    }

    [Fact]
    public void A_new_secret_value_becomes_AWSCURRENT_the_old_one_AWSPREVIOUS_and_older_ones_are_dropped()
    {
        var (state, secret) = Create(SecretState.Empty, "prod/db", """{"username":"app","password":"pw1"}""");
        Assert.Equal("arn:aws:secretsmanager:local:000000000000:secret:prod/db-AbCdEf", secret.Arn);
        for (var i = 2; i <= 3; i++)
        {
            state = state.PutSecretValue(new PutSecretValueRequest { SecretId = secret.Arn, SecretString = $"{{\"password\":\"pw{i}\"}}" }, Guid.NewGuid().ToString(), Now, Seal, Open).State;
        }

        var current = state.GetSecretValue(new GetSecretValueRequest { SecretId = "prod/db" }, Open);
        var previous = state.GetSecretValue(new GetSecretValueRequest { SecretId = "prod/db", VersionStage = "AWSPREVIOUS" }, Open);
        Assert.Equal(("{\"password\":\"pw3\"}", "{\"password\":\"pw2\"}"), (current.SecretString, previous.SecretString));
        var described = state.DescribeSecret(new DescribeSecretRequest { SecretId = "arn:aws:secretsmanager:local:000000000000:secret:prod/db" });
        Assert.Equal(2, described.VersionIdsToStages.Count);
        Assert.DoesNotContain("pw", described.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("pw", state.ListSecrets(new ListSecretsRequest()).ToString(), StringComparison.Ordinal);

        // The same ClientRequestToken and value is a retry; another value under it is refused.
        var token = Guid.NewGuid().ToString();
        var put = new PutSecretValueRequest { SecretId = "prod/db", SecretString = "x", ClientRequestToken = token };
        state = state.PutSecretValue(put, "", Now, Seal, Open).State;
        Assert.Same(state, state.PutSecretValue(put, "", Now, Seal, Open).State);
        put.SecretString = "y";
        Assert.Equal(SecretErrors.ResourceExistsException, Assert.Throws<EcsException>(() => state.PutSecretValue(put, "", Now, Seal, Open)).ErrorType);
        Assert.Equal(SecretErrors.ResourceExistsException, Assert.Throws<EcsException>(() => Create(state, "prod/db", "z")).ErrorType);
    }

    [Fact]
    public void A_secret_scheduled_for_deletion_is_hidden_unusable_and_forgotten_at_its_date_and_a_forced_delete_is_immediate()
    {
        var (state, secret) = Create(SecretState.Empty, "api-token", "t0k3n");
        var (scheduled, _, _, response) = state.DeleteSecret(new DeleteSecretRequest { SecretId = "api-token", RecoveryWindowInDays = 7 }, Now);
        Assert.Equal(Now.AddDays(7), response.DeletionDate.ToDateTimeOffset());
        Assert.Empty(scheduled.ListSecrets(new ListSecretsRequest()).SecretList);
        Assert.Single(scheduled.ListSecrets(new ListSecretsRequest { IncludePlannedDeletion = true }).SecretList);
        Assert.Equal(SecretErrors.InvalidRequestException, Assert.Throws<EcsException>(() => scheduled.GetSecretValue(new GetSecretValueRequest { SecretId = "api-token" }, Open)).ErrorType);
        Assert.Empty(scheduled.DueForDeletion(Now.AddDays(6)));
        Assert.Equal(["api-token"], scheduled.DueForDeletion(Now.AddDays(7)));
        Assert.Equal(SecretErrors.InvalidParameterException, Assert.Throws<EcsException>(() => state.DeleteSecret(new DeleteSecretRequest { SecretId = "api-token", RecoveryWindowInDays = 3 }, Now)).ErrorType);

        var (forced, _, removed, _) = state.DeleteSecret(new DeleteSecretRequest { SecretId = secret.Arn, ForceDeleteWithoutRecovery = true }, Now);
        Assert.Equal("api-token", removed);
        Assert.Empty(forced.Secrets);
    }

    [Fact]
    public void ValueFrom_is_read_as_the_ECS_agent_reads_it()
    {
        Assert.Equal(new SecretReference.Parameter("db-password", "arn:aws:ssm:local:000000000000:parameter/db-password"), SecretReferences.Parse("db-password", Arns));
        Assert.Equal("/prod/db/password", ((SecretReference.Parameter)SecretReferences.Parse("arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password", Arns)).Name);
        Assert.Equal("flat", ((SecretReference.Parameter)SecretReferences.Parse("arn:aws:ssm:us-east-1:123456789012:parameter/flat", Arns)).Name);
        Assert.Equal(
            new SecretReference.Secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf", "username", null, null),
            SecretReferences.Parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf:username::", Arns));
        Assert.Equal(
            new SecretReference.Secret("arn:aws:secretsmanager:r:1:secret:app-AbCdEf", "password", "AWSPREVIOUS", null),
            SecretReferences.Parse("arn:aws:secretsmanager:r:1:secret:app-AbCdEf:password:AWSPREVIOUS:", Arns));
    }

    [Fact]
    public void A_task_definitions_secrets_resolve_by_container_and_kind_and_a_missing_one_gives_ECSs_stop_reason()
    {
        var state = Put(SecretState.Empty, "/prod/db/password", "hunter2");
        state = Put(state, "log-token", "splunk-token");
        (state, var secret) = Create(state, "app", """{"username":"u","password":"p","port":5432}""", "XyZ123");
        var definition = new TaskDefinition
        {
            ContainerDefinitions =
            {
                new ContainerDefinition
                {
                    Name = "web",
                    Secrets =
                    {
                        new Secret { Name = "DB_PASSWORD", ValueFrom = "/prod/db/password" },
                        new Secret { Name = "DB_USER", ValueFrom = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-XyZ123:username::" },
                        new Secret { Name = "DB_PORT", ValueFrom = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app:port::" },
                    },
                    LogConfiguration = new LogConfiguration { LogDriver = "splunk", SecretOptions = { new Secret { Name = "splunk-token", ValueFrom = "arn:aws:ssm:us-east-1:123456789012:parameter/log-token" } } },
                    RepositoryCredentials = new RepositoryCredentials { CredentialsParameter = secret.Arn },
                },
            },
        };
        var (values, error) = SecretReferences.Resolve(definition, state, Arns, Open);
        Assert.Null(error);
        Assert.Equal(
            ["ENVIRONMENT DB_PASSWORD=hunter2", "ENVIRONMENT DB_USER=u", "ENVIRONMENT DB_PORT=5432", "LOG_OPTION splunk-token=splunk-token", "REGISTRY_AUTH username=u", "REGISTRY_AUTH password=p"],
            values.Select(v => $"{v.Kind} {v.Name}={v.Value}"));
        Assert.All(values, v => Assert.Equal("web", v.ContainerName));

        definition.ContainerDefinitions[0].Secrets.Add(new Secret { Name = "GONE", ValueFrom = "/prod/missing" });
        Assert.Equal("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: invalid parameters: /prod/missing",
            SecretReferences.Resolve(definition, state, Arns, Open).Error);
        definition.ContainerDefinitions[0].Secrets[^1].ValueFrom = "arn:aws:secretsmanager:r:1:secret:app-XyZ123:nokey::";
        Assert.Contains("did not contain json key nokey", SecretReferences.Resolve(definition, state, Arns, Open).Error, StringComparison.Ordinal);
        definition.ContainerDefinitions[0].Secrets[^1].ValueFrom = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:app-Other1:username::";
        Assert.Null(SecretReferences.Resolve(definition, state, Arns, Open).Error); // another account's ARN of a secret of this name
        definition.ContainerDefinitions[0].Secrets[^1].ValueFrom = "arn:aws:secretsmanager:r:1:secret:other-AAAAAA";
        Assert.Contains("ResourceNotFoundException: Secrets Manager can't find the specified secret.", SecretReferences.Resolve(definition, state, Arns, Open).Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Reading_a_value_is_allowed_only_by_a_policy_on_its_ARN_and_starting_a_task_reads_each_of_its_secrets()
    {
        var state = Put(SecretState.Empty, "/prod/db/password", "hunter2");
        state = Put(state, "/dev/db/password", "dev");
        (state, var secret) = Create(state, "app", "{}", "XyZ123");
        var policy = PolicyDocument.Parse("""
            { "Version": "2012-10-17", "Statement": [
              { "Effect": "Allow", "Action": ["ssm:GetParameter*", "secretsmanager:GetSecretValue"],
                "Resource": ["arn:aws:ssm:*:*:parameter/dev/*", "arn:aws:secretsmanager:*:*:secret:app-*"] } ] }
            """);
        bool Allowed(IMessage request) => PolicyEvaluator.Evaluate([policy], ApiActions.Describe("/ecslite.v1.Secrets/X", request, Arns, _ => null, "bob", state)).Allowed;

        Assert.True(Allowed(new GetParameterRequest { Name = "/dev/db/password" }));
        Assert.False(Allowed(new GetParameterRequest { Name = "/prod/db/password" }));
        Assert.False(Allowed(new GetParametersRequest { Names = { "/dev/db/password", "/prod/db/password" } }));
        Assert.True(Allowed(new GetSecretValueRequest { SecretId = "app" }));
        Assert.False(Allowed(new DescribeSecretRequest { SecretId = "app" }));
        Assert.False(Allowed(new PutParameterRequest { Name = "/dev/db/password" }));
        Assert.Equal("secretsmanager:CreateSecret", ApiActions.Describe("/ecslite.v1.Secrets/CreateSecret", new CreateSecretRequest { Name = "new" }, Arns, _ => null, "", state).Action);
        Assert.Equal(["ssm:PutParameter", "ssm:DescribeParameters", "secretsmanager:ListSecrets", "kms:RotateKeyOnDemand"],
            new[] { "PutParameter", "DescribeParameters", "ListSecrets", "RotateKeyOnDemand" }.Select(m => ApiActions.ActionOf($"/ecslite.v1.Secrets/{m}")));

        var definition = new TaskDefinition
        {
            ContainerDefinitions =
            {
                new ContainerDefinition { Name = "a", Secrets = { new Secret { Name = "P", ValueFrom = "/prod/db/password" }, new Secret { Name = "S", ValueFrom = secret.Arn + ":k::" } } },
            },
        };
        var reads = SecretReferences.Reads(definition, state, Arns).ToList();
        Assert.Equal(
            ["ssm:GetParameters arn:aws:ssm:local:000000000000:parameter/prod/db/password", $"secretsmanager:GetSecretValue {secret.Arn}"],
            reads.Select(r => $"{r.Action} {r.Resources.Single()}"));
        Assert.Equal([false, true], reads.Select(r => PolicyEvaluator.Evaluate([policy], r).Allowed));
    }

    [Fact]
    public void Any_request_is_answered_or_refused_in_the_services_words_and_a_refusal_changes_nothing()
    {
        var (start, _) = Create(Put(SecretState.Empty, "/a/b", "v"), "s", """{"k":"v"}""");
        string Snapshot() => string.Concat(start.Parameters.Values.Select(p => p.ToString())) + string.Concat(start.Secrets.Values.Select(p => p.ToString()));
        var before = Snapshot();
        var text = Gen.OneOf(
            Gen.Const(""), Gen.Const("/a/b"), Gen.Const("s"), Gen.Const("arn:aws:ssm:r:1:parameter/a/b"), Gen.Const("arn:aws:secretsmanager:r:1:secret:s-XXXXXX:k::"),
            Gen.String[Gen.Char["/a-zA-Z0-9_.:-"], 0, 40], Gen.String[0, 20]);
        Gen.Select(Gen.Int[0, 8], text, text, Gen.Int[-5, 200], Gen.Bool).Sample((call, a, b, number, flag) =>
        {
            var state = start;
            try
            {
                _ = call switch
                {
                    0 => state.PutParameter(new PutParameterRequest { Name = a, Value = b, Type = flag ? "SecureString" : b, Overwrite = flag, AllowedPattern = number % 3 == 0 ? b : "" }, Caller, Now, Arns, Seal).State,
                    1 => (object)state.GetParameter(new GetParameterRequest { Name = a, WithDecryption = flag }, Open),
                    2 => state.GetParameters(new GetParametersRequest { Names = { Enumerable.Repeat(a, Math.Max(0, number % 12)) } }, Open),
                    3 => state.DescribeParameters(new DescribeParametersRequest { MaxResults = number, NextToken = flag ? b : "", ParameterFilters = { new ParameterStringFilter { Key = a, Option = b, Values = { b } } } }),
                    4 => state.CreateSecret(new CreateSecretRequest { Name = a, SecretString = b, ClientRequestToken = flag ? b : "" }, "AbCdEf", Guid.NewGuid().ToString(), Now, Arns, Seal, Open).State,
                    5 => state.PutSecretValue(new PutSecretValueRequest { SecretId = a, SecretString = b, VersionStages = { flag ? [b] : [] } }, Guid.NewGuid().ToString(), Now, Seal, Open).State,
                    6 => state.GetSecretValue(new GetSecretValueRequest { SecretId = a, VersionStage = flag ? b : "" }, Open),
                    7 => state.ListSecrets(new ListSecretsRequest { MaxResults = number, SortOrder = flag ? b : "", Filters = { new SecretsFilter { Key = a, Values = { b } } } }),
                    _ => state.DeleteSecret(new DeleteSecretRequest { SecretId = a, RecoveryWindowInDays = number, ForceDeleteWithoutRecovery = flag }, Now).State,
                };
            }
            catch (EcsException e)
            {
                Assert.False(string.IsNullOrEmpty(e.ErrorType));
            }

            Assert.Equal(before, Snapshot()); // whatever a call did, it made a new state and left the old one as it was
        }, iter: 5000);
    }

    [Fact]
    public void Resealing_opens_every_value_under_an_old_key_and_seals_it_again()
    {
        var state = Put(SecretState.Empty, "a", "1");
        (state, _) = Create(state, "b", "2");
        var (resealed, parameters, secrets) = state.Reseal(_ => true, Open, (plaintext, context) => Seal(plaintext, context) is var v ? new EncryptedValue(v) { KeyId = "new" } : null!);
        Assert.Equal((1, 1), (parameters.Count, secrets.Count));
        Assert.Equal("new", resealed.Parameters["a"].Value.KeyId);
        Assert.Equal("1", resealed.GetParameter(new GetParameterRequest { Name = "a", WithDecryption = true }, Open).Parameter.Value);
        Assert.Equal("2", resealed.GetSecretValue(new GetSecretValueRequest { SecretId = "b" }, Open).SecretString);
    }
}
