using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Grpc.Core;
using EcsTask = EcsLite.Api.V1.Task;
using SecretsApi = EcsLite.Api.V1.Secrets;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Secrets with real processes: parameters and secrets put through the API, a task that refers to them
/// run by the real agent on the real Docker engine; the values reach the container and nowhere else.
/// </summary>
public sealed class SecretsEndToEndTests : IAsyncLifetime
{
    private const string Ecs = "ecslite.v1.Ecs/";
    private TestCluster _cluster = null!;
    private DynamicJsonClient _json = null!;
    private SecretsApi.SecretsClient _secrets = null!;

    private CoordinatorProcess Coordinator => _cluster.Coordinator;

    private AgentProcess Agent => _cluster.Agent;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync(new Dictionary<string, string>
        {
            ["ECSLITE_HOST_PORT_ADDRESS"] = "127.0.0.5",
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached",
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "1s",
        });
        _json = await DynamicJsonClient.ConnectAsync(Coordinator.Channel);
        _secrets = new SecretsApi.SecretsClient(Coordinator.Channel);
    }

    public async Task DisposeAsync() => await (_cluster?.DisposeAsync() ?? ValueTask.CompletedTask);

    private static string Unique(string what) => $"{what}-{Guid.NewGuid():N}";

    [Fact]
    public async Task A_tasks_secrets_reach_its_containers_and_no_record_log_file_or_response_and_come_again_after_an_agent_restart()
    {
        var password = Unique("db-password");
        var user = Unique("db-user");
        var logLabel = Unique("log-label");
        var warm = Unique("warmup");
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "/prod/db/password", Value = password, Type = "SecureString" });
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "log-label", Value = logLabel, Type = "String" });
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "warmup", Value = warm, Type = "SecureString" });
        var app = await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = "prod/app", SecretString = $$"""{"username":"{{user}}","password":"other"}""" });

        // "warmup" runs first, long enough for the agent to be killed and started again meanwhile; "app"
        // starts once it completes, under the restarted agent.
        await _json.CallAsync(Ecs + "RegisterTaskDefinition", $$"""
            { "family": "with-secrets", "containerDefinitions": [
              { "name": "warmup", "image": "{{LocalImages.Busybox}}", "memory": 32, "essential": false, "command": ["sleep", "12"],
                "secrets": [{ "name": "WARM", "valueFrom": "warmup" }] },
              { "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "600"],
                "dependsOn": [{ "containerName": "warmup", "condition": "COMPLETE" }],
                "secrets": [
                  { "name": "DB_PASSWORD", "valueFrom": "/prod/db/password" },
                  { "name": "DB_PASSWORD_BY_ARN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password" },
                  { "name": "DB_USER", "valueFrom": "{{app.ARN}}:username::" } ],
                "logConfiguration": { "logDriver": "json-file", "options": { "max-size": "1m" },
                  "secretOptions": [{ "name": "labels", "valueFrom": "log-label" }] } } ] }
            """);
        var taskArn = await RunAsync("with-secrets");
        var running = await WaitForAsync(taskArn, t => t.Containers.Any(c => c.Name == "warmup" && c.LastStatus == "RUNNING"));
        var warmupId = running.Containers.Single(c => c.Name == "warmup").RuntimeId;
        Assert.Contains($"WARM={warm}", await EnvironmentAsync(warmupId));
        var warmupStarted = (await InspectAsync(warmupId)).GetProperty("State").GetProperty("StartedAt").GetString();

        await Agent.Process.KillAsync();
        Assert.Empty(FilesContaining(Agent.DataDir, password, user, logLabel, warm)); // what it kept on disk while the task ran
        Agent.StartAgain();
        var task = await WaitForAsync(taskArn, t => t.LastStatus == "RUNNING");
        var appId = task.Containers.Single(c => c.Name == "app").RuntimeId;

        // The restarted agent, which adopted the task from its data directory (which holds no value), was
        // sent the values again with its first full set; it kept the containers it found.
        await Agent.Process.WaitForOutputAsync($"Task {taskArn}: 5 secret values received from the coordinator", TimeSpan.FromSeconds(30));
        var environment = await EnvironmentAsync(appId);
        Assert.Contains($"DB_PASSWORD={password}", environment);
        Assert.Contains($"DB_PASSWORD_BY_ARN={password}", environment);
        Assert.Contains($"DB_USER={user}", environment);
        Assert.Equal(logLabel, (await InspectAsync(appId)).GetProperty("HostConfig").GetProperty("LogConfig").GetProperty("Config").GetProperty("labels").GetString());

        // The container that ran before the restart was adopted, not started again.
        var warmup = task.Containers.Single(c => c.Name == "warmup");
        Assert.Equal(warmupId, warmup.RuntimeId);
        Assert.Equal(warmupStarted, (await InspectAsync(warmupId)).GetProperty("State").GetProperty("StartedAt").GetString());
        Assert.Equal(0, warmup.ExitCode);

        // No value in any response that describes or lists, ...
        var responses = new StringBuilder();
        foreach (var (method, body) in new[]
        {
            ("DescribeTasks", $$"""{ "tasks": ["{{taskArn}}"], "include": ["TAGS"] }"""),
            ("DescribeTaskDefinition", """{ "taskDefinition": "with-secrets" }"""),
            ("ListTasks", "{}"),
        })
        {
            responses.Append((await _json.CallAsync(Ecs + method, body)).ToJsonString());
        }

        responses.Append(await _secrets.DescribeParametersAsync(new DescribeParametersRequest()));
        responses.Append(await _secrets.ListSecretsAsync(new ListSecretsRequest()));
        responses.Append(await _secrets.DescribeSecretAsync(new DescribeSecretRequest { SecretId = app.ARN }));
        responses.Append(await _secrets.GetParameterAsync(new GetParameterRequest { Name = "/prod/db/password" })); // without decryption: ciphertext
        foreach (var value in new[] { password, user, logLabel, warm })
        {
            Assert.DoesNotContain(value, responses.ToString(), StringComparison.Ordinal);
        }

        // ... in the coordinator's store, data directory or log, or the agent's data directory or log.
        await _json.CallAsync(Ecs + "StopTask", $$"""{ "task": "{{taskArn}}" }""");
        await WaitForAsync(taskArn, t => t.LastStatus == "STOPPED");
        await Coordinator.StopAsync();
        Assert.True(File.Exists(Path.Combine(Coordinator.DataDir, "cluster-store.db")));
        Assert.Empty(FilesContaining(Coordinator.DataDir, password, user, logLabel, warm));
        Assert.Empty(FilesContaining(Agent.DataDir, password, user, logLabel, warm));
        foreach (var value in new[] { password, user, logLabel, warm })
        {
            Assert.DoesNotContain(value, Coordinator.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(value, Agent.Output, StringComparison.Ordinal);
        }

        // The store keeps them, encrypted, across a restart.
        await Coordinator.StartAgainAsync();
        _secrets = new SecretsApi.SecretsClient(Coordinator.Channel);
        Assert.Equal(password, (await _secrets.GetParameterAsync(new GetParameterRequest { Name = "/prod/db/password", WithDecryption = true })).Parameter.Value);
    }

    [Fact]
    public async Task A_task_whose_secret_is_missing_stops_with_ECSs_reason()
    {
        await _json.CallAsync(Ecs + "RegisterTaskDefinition", $$"""
            { "family": "missing-secret", "containerDefinitions": [
              { "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "600"],
                "secrets": [{ "name": "TOKEN", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nowhere-AbCdEf" }] } ] }
            """);
        var stopped = await WaitForAsync(await RunAsync("missing-secret"), t => t.LastStatus == "STOPPED");
        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.StartsWith("ResourceInitializationError: unable to pull secrets or registry auth: ", stopped.StoppedReason, StringComparison.Ordinal);
        Assert.Contains("nowhere-AbCdEf", stopped.StoppedReason, StringComparison.Ordinal);
        Assert.Equal("", stopped.Containers.Single().RuntimeId); // no container was made
    }

    [Fact]
    public async Task A_task_whose_secrets_make_it_too_large_to_send_to_its_agent_stops_with_the_reason()
    {
        await Coordinator.Ecs.RegisterTaskDefinitionAsync(await TooLargeToSendAsync(_secrets, "too-large"));
        var stopped = await WaitForAsync(await RunAsync("too-large"), t => t.LastStatus == "STOPPED");
        AssertStoppedAsTooLarge(stopped);
    }

    /// <summary>
    /// A definition whose secrets' values (17 of 64,000 bytes, each within Secrets Manager's 64 KiB) make its task larger
    /// than one message of an agent's stream (1 MiB): it can never be sent, so it must not stay PENDING.
    /// </summary>
    internal static async Task<RegisterTaskDefinitionRequest> TooLargeToSendAsync(SecretsApi.SecretsClient secrets, string family)
    {
        var container = new ContainerDefinition { Name = "app", Image = LocalImages.Busybox, Memory = 32, Command = { "sleep", "600" } };
        for (var i = 0; i < 17; i++)
        {
            var secret = await secrets.CreateSecretAsync(new CreateSecretRequest { Name = Unique($"{family}-{i}"), SecretString = new string((char)('a' + i), 64_000) });
            container.Secrets.Add(new Secret { Name = $"S{i}", ValueFrom = secret.ARN });
        }

        return new RegisterTaskDefinitionRequest { Family = family, ContainerDefinitions = { container } };
    }

    internal static void AssertStoppedAsTooLarge(EcsTask stopped)
    {
        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.Contains("larger than the 1048576 bytes its agent can be sent at once", stopped.StoppedReason, StringComparison.Ordinal);
        Assert.Equal("", stopped.Containers.Single().RuntimeId); // never sent, so no container was made
    }

    [Fact]
    public async Task A_caller_without_permission_reads_no_value_and_cannot_start_a_task_that_would()
    {
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "/prod/key", Value = "prod-value", Type = "SecureString" });
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "/dev/key", Value = "dev-value", Type = "SecureString" });
        var secret = await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = "prod/token", SecretString = "t" });
        var iam = new Iam.IamClient(Coordinator.Channel);
        await iam.CreateUserAsync(new CreateUserRequest { UserName = "dev" });
        await iam.PutUserPolicyAsync(new PutUserPolicyRequest
        {
            UserName = "dev",
            PolicyName = "dev-only",
            PolicyDocument = """
                { "Version": "2012-10-17", "Statement": [
                  { "Effect": "Allow", "Action": ["ecs:*", "ssm:DescribeParameters"], "Resource": "*" },
                  { "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"], "Resource": "arn:aws:ssm:*:*:parameter/dev/*" } ] }
                """,
        });
        var key = (await iam.CreateAccessKeyAsync(new CreateAccessKeyRequest { UserName = "dev" })).AccessKey;
        using var channel = Coordinator.NewChannel((key.AccessKeyId, key.SecretAccessKey));
        var dev = new SecretsApi.SecretsClient(channel);

        Assert.Equal("dev-value", (await dev.GetParameterAsync(new GetParameterRequest { Name = "/dev/key", WithDecryption = true })).Parameter.Value);
        var denied = await Assert.ThrowsAsync<RpcException>(async () => await dev.GetParameterAsync(new GetParameterRequest { Name = "/prod/key", WithDecryption = true }));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.StartsWith("AccessDeniedException: ", denied.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("prod-value", denied.Status.Detail, StringComparison.Ordinal);
        var deniedSecret = await Assert.ThrowsAsync<RpcException>(async () => await dev.GetSecretValueAsync(new GetSecretValueRequest { SecretId = secret.ARN }));
        Assert.StartsWith("AccessDeniedException: ", deniedSecret.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(2, (await dev.DescribeParametersAsync(new DescribeParametersRequest())).Parameters.Count);

        // A task that would print /prod/key is as good as reading it: RunTask needs ssm:GetParameters on it.
        var register = $$"""
            { "family": "reads-prod", "containerDefinitions": [
              { "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["env"],
                "secrets": [{ "name": "KEY", "valueFrom": "/prod/key" }] } ] }
            """;
        var devJson = await DynamicJsonClient.ConnectAsync(channel);
        await devJson.CallAsync(Ecs + "RegisterTaskDefinition", register);
        var run = await Assert.ThrowsAsync<RpcException>(() => devJson.CallAsync(Ecs + "RunTask", """{ "taskDefinition": "reads-prod" }"""));
        Assert.Contains("ssm:GetParameters on resource: arn:aws:ssm:local:000000000000:parameter/prod/key", run.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await Coordinator.Ecs.ListTasksAsync(new ListTasksRequest())).TaskArns);
    }

    [Fact]
    public async Task Rotating_the_key_re_encrypts_every_value_and_forgets_the_old_key()
    {
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "p", Value = "parameter-value", Type = "SecureString" });
        var secret = await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = "s", SecretString = "secret-value" });
        await _secrets.PutSecretValueAsync(new PutSecretValueRequest { SecretId = "s", SecretString = "secret-value-2" });
        var keyFile = Path.Combine(Coordinator.DataDir, "secrets.key");
        var before = File.ReadAllText(keyFile);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));

        var (code, output) = await Coordinator.RunCliAsync("secrets", "rotate-key");
        Assert.True(code == 0, output);
        Assert.Contains("4 value(s) re-encrypted", output, StringComparison.Ordinal); // the parameter, two secret versions, the administrator's access key
        var after = File.ReadAllText(keyFile);
        Assert.Single(after.Split('\n'), l => l.StartsWith('k'));
        Assert.DoesNotContain(before.Split('\n').Single(l => l.StartsWith('k')), after, StringComparison.Ordinal);

        // Readable now and after a restart, with only the new key.
        await Coordinator.StopAsync();
        await Coordinator.StartAgainAsync();
        _secrets = new SecretsApi.SecretsClient(Coordinator.Channel);
        Assert.Equal("parameter-value", (await _secrets.GetParameterAsync(new GetParameterRequest { Name = "p", WithDecryption = true })).Parameter.Value);
        Assert.Equal("secret-value-2", (await _secrets.GetSecretValueAsync(new GetSecretValueRequest { SecretId = secret.ARN })).SecretString);
        Assert.Equal("secret-value", (await _secrets.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "s", VersionStage = "AWSPREVIOUS" })).SecretString);

        // The access key's secret, sealed under the new key too, still checks a SigV4 signature.
        var (cli, listed) = await ProcessRunner.RunAsync("/usr/bin/aws", ["ecs", "list-clusters", "--endpoint-url", Coordinator.Address.Replace("http://", "https://", StringComparison.Ordinal)],
            new Dictionary<string, string>
            {
                ["AWS_CONFIG_FILE"] = "/dev/null",
                ["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(Coordinator.DataDir, "admin-credentials"),
                ["AWS_CA_BUNDLE"] = Coordinator.CaFile,
                ["AWS_DEFAULT_REGION"] = "local",
            });
        Assert.True(cli == 0, listed);
        Assert.Contains("cluster/default", listed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_ECS_agents_functional_test_task_definitions_and_ecspressos_run_with_their_secrets_and_a_private_registrys_credentials()
    {
        // Their images by the names they use, from the local ones (no registry is reachable here).
        foreach (var (local, name) in new[] { (LocalImages.Busybox, "busybox:latest"), (LocalImages.Busybox, "debian:buster-slim"), (LocalImages.Httpd, "nginx:latest") })
        {
            Assert.Equal(0, (await ProcessRunner.RunAsync("docker", ["tag", local, name])).ExitCode);
        }

        await ProcessRunner.RunAsync("docker", ["rmi", "-f", "127.0.0.1:51671/busybox:latest"]);
        var directory = Path.Combine(AppContext.BaseDirectory, "TaskDefinitions", "secrets");
        string Read(string file, params (string Placeholder, string Value)[] values) =>
            values.Aggregate(File.ReadAllText(Path.Combine(directory, file)), (json, v) => json.Replace(v.Placeholder, v.Value, StringComparison.Ordinal));
        var executionRole = ("$$$EXECUTION_ROLE$$$", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole");

        // The ECS agent's: each container exits 42 when its secret (or image) arrived, 1 otherwise.
        var asm = await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = "functional-test", SecretString = "secretValue" });
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "functional-test", Value = "secretValue", Type = "SecureString" });
        var registryCredentials = await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = "registry", SecretString = """{"username":"puller","password":"registry-password"}""" });
        await using var registry = await PrivateRegistry.StartAsync(51671, "busybox", LocalImages.Busybox, "puller", "registry-password");
        foreach (var definition in new[]
        {
            Read("ecs-agent-secrets-environment-variables.json", executionRole, ("$$$SECRET_NAME$$$", "SECRET_NAME"), ("$$$SECRET_VALUE_FROM$$$", asm.ARN)),
            Read("ecs-agent-ssmsecrets-environment-variables.json", executionRole, ("$$$SECRET_NAME$$$", "SECRET_NAME"), ("$$$SSM_PARAMETER_NAME$$$", "functional-test")),
            Read("ecs-agent-private-registry-auth-asm.json", executionRole, ("$$$REPOSITORY_CREDENTIALS$$$", registryCredentials.ARN)),
        })
        {
            var family = (await _json.CallAsync(Ecs + "RegisterTaskDefinition", definition))["taskDefinition"]!["family"]!.GetValue<string>();
            var stopped = await WaitForAsync(await RunAsync(family), t => t.LastStatus == "STOPPED");
            var container = stopped.Containers.Single();
            Assert.True(container.ExitCode == 42, $"{family}: {stopped.StopCode} {stopped.StoppedReason} {container.Reason} exit {container.ExitCode}");
        }

        Assert.True(registry.ManifestsServed >= 1, "the image came from the registry");
        Assert.True(registry.Refused >= 1, "the registry asked for credentials");
        Assert.Equal(0, (await ProcessRunner.RunAsync("docker", ["image", "inspect", "127.0.0.1:51671/busybox:latest"])).ExitCode);

        // With a secret holding another password the pull is refused, and the task says so.
        await ProcessRunner.RunAsync("docker", ["rmi", "-f", "127.0.0.1:51671/busybox:latest"]);
        await _secrets.PutSecretValueAsync(new PutSecretValueRequest { SecretId = "registry", SecretString = """{"username":"puller","password":"wrong"}""" });
        var refusedBefore = registry.Refused;
        var refused = await WaitForAsync(await RunAsync("ecsftest-private-registry-auth-asm-validator-unix"), t => t.LastStatus == "STOPPED");
        Assert.Equal("TaskFailedToStart", refused.StopCode);
        Assert.StartsWith("CannotPullContainerError: ", refused.StoppedReason, StringComparison.Ordinal);
        Assert.True(registry.Refused > refusedBefore);
        Assert.DoesNotContain("registry-password", Agent.Output, StringComparison.Ordinal);

        // ecspresso's, rendered as ecspresso renders it (its ssm and secretsmanager_arn functions, its environment).
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "/ecspresso-test/foo", Value = "foo-value", Type = "String" });
        await _secrets.PutParameterAsync(new PutParameterRequest { Name = "/ecspresso-test/bar", Value = "bar-value", Type = "SecureString" });
        var baz = await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = "ecspresso-test/baz", SecretString = "baz-value" });
        var jsonSecret = await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = "ecspresso-test/json", SecretString = """{"foo":"json-foo-value"}""" });
        var ecspresso = Read("ecspresso-ci.json",
            ("{{ ssm `/ecspresso-test/foo` }}", "foo-value"),
            ("{{ secretsmanager_arn `ecspresso-test/baz` }}", baz.ARN),
            ("{{ secretsmanager_arn `ecspresso-test/json` }}", jsonSecret.ARN),
            ("{{ env `NGINX_VERSION` `latest` }}", "latest"),
            ("{{must_env `AWS_ACCOUNT_ID`}}", "123456789012"));
        await _json.CallAsync(Ecs + "RegisterTaskDefinition", ecspresso);
        var run = await _json.CallAsync(Ecs + "RunTask", """
            { "taskDefinition": "ecspresso-test", "launchType": "FARGATE",
              "networkConfiguration": { "awsvpcConfiguration": { "subnets": ["subnet-home"] } } }
            """);
        var task = await WaitForAsync(run["tasks"]![0]!["taskArn"]!.GetValue<string>(), t => t.LastStatus == "RUNNING");
        var bash = await EnvironmentAsync(task.Containers.Single(c => c.Name == "bash").RuntimeId);
        Assert.Contains("FOO=foo-value", bash);
        Assert.Contains("BAR=bar-value", bash);
        Assert.Contains("JSON_FOO=json-foo-value", bash);
        Assert.Contains("""JSON_VIA_SSM={"foo":"json-foo-value"}""", bash);
        Assert.Contains("BAZ=baz-value", await EnvironmentAsync(task.Containers.Single(c => c.Name == "nginx").RuntimeId));
    }

    private async Task<string> RunAsync(string family)
    {
        var run = await _json.CallAsync(Ecs + "RunTask", $$"""{ "taskDefinition": "{{family}}" }""");
        Assert.True(run["failures"] is null || run["failures"]!.AsArray().Count == 0, run["failures"]?.ToJsonString());
        return run["tasks"]![0]!["taskArn"]!.GetValue<string>();
    }

    private static async Task<JsonElement> InspectAsync(string containerId)
    {
        var (code, output) = await ProcessRunner.RunAsync("docker", ["inspect", containerId]);
        Assert.True(code == 0, output);
        return JsonDocument.Parse(output).RootElement[0].Clone();
    }

    private static async Task<string[]> EnvironmentAsync(string containerId) =>
        [.. (await InspectAsync(containerId)).GetProperty("Config").GetProperty("Env").EnumerateArray().Select(e => e.GetString()!)];

    /// <summary>Every file under <paramref name="directory"/> whose bytes hold one of the values (as UTF-8).</summary>
    private static List<string> FilesContaining(string directory, params string[] values) =>
        [.. Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Where(f => new FileInfo(f).LinkTarget is null && !f.EndsWith(".sock", StringComparison.Ordinal))
            .Where(f =>
            {
                var bytes = File.ReadAllBytes(f);
                return values.Any(v => bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(v)) >= 0);
            })];

    private async Task<EcsTask> WaitForAsync(string taskArn, Func<EcsTask, bool> condition)
    {
        EcsTask? found = null;
        await Eventually.HoldsAsync(async () =>
        {
            found = (await Coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { taskArn } })).Tasks.Single();
            return condition(found);
        }, TimeSpan.FromSeconds(60), $"task {taskArn} (last seen {found?.LastStatus}: {found?.StoppedReason})");
        return found!;
    }
}
