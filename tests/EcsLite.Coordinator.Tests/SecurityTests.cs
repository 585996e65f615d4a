using System.Text;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Security;
using EcsLite.Testing;
using Grpc.Core;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// Authentication and policies on the real coordinator over real gRPC: callers without a valid key
/// get nothing and change nothing, policies decide as IAM's would, the admin socket is root's door,
/// and every refusal is in the audit log.
/// </summary>
public sealed class SecurityTests
{
    /// <summary>
    /// Services any caller may use: health probes, the schema (open source anyway), and enrollment (the
    /// join token is its credential; refused without one in JoinTests). The agent channel is not open:
    /// it takes a client certificate instead of a key.
    /// </summary>
    private static readonly string[] Open = ["grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection", "ecslite.v1.Enrollment"];

    private const string ReadOnly = """
        { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*" }] }
        """;

    private const string RunTaskOnA = """
        { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*",
          "Condition": { "ArnEquals": { "ecs:cluster": "arn:aws:ecs:local:000000000000:cluster/A" } } }] }
        """;

    private const string AllButClusterB = """
        { "Version": "2012-10-17", "Statement": [
          { "Effect": "Allow", "Action": "ecs:*", "Resource": "*" },
          { "Effect": "Deny", "Action": "ecs:*", "Resource": "*", "Condition": { "ArnLike": { "ecs:cluster": "arn:aws:ecs:*:*:cluster/B" } } },
          { "Effect": "Deny", "Action": "ecs:*", "Resource": ["arn:aws:ecs:*:*:cluster/B", "arn:aws:ecs:*:*:*/B/*"] } ] }
        """;

    [Fact]
    public async Task Every_method_refuses_a_caller_without_a_key_with_a_wrong_one_or_a_disabled_one_and_nothing_changes()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var iam = new Iam.IamClient(coordinator.Channel);
        var disabled = await KeyForAsync(coordinator, "ops", ReadOnly);
        await iam.UpdateAccessKeyAsync(new UpdateAccessKeyRequest { UserName = "ops", AccessKeyId = disabled.AccessKeyId, Status = "Inactive" });
        await coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = "kept" });
        var before = await SnapshotAsync(coordinator);

        var methods = await HardeningTests.MethodsAsync(coordinator);
        var guarded = methods.Where(m => !Open.Contains(m.Split('/')[1])).ToList();
        Assert.Contains("/ecslite.v1.Ecs/RunTask", guarded);
        Assert.Contains("/ecslite.v1.TaskLogs/GetTaskLogs", guarded);
        Assert.Contains("/ecslite.v1.Iam/CreateAccessKey", guarded);
        Assert.Contains("/ecslite.v1.Activations/CreateActivation", guarded);
        Assert.Contains("/ecslite.v1.Scheduler/CreateSchedule", guarded);
        Assert.Contains("/ecslite.v1.Events/WatchEvents", guarded);
        Assert.Contains("/ecslite.v1.AgentChannel/Connect", guarded);
        Assert.Contains("/ecslite.v1.AgentPeers/Join", guarded);
        (string Name, (string, string)? Key, string Error)[] callers =
        [
            ("no credentials", null, "MissingAuthenticationTokenException"),
            ("a wrong secret", (coordinator.AdminKey.AccessKeyId, "not-the-secret"), "UnrecognizedClientException"),
            ("an unknown key", ("AKIAAAAAAAAAAAAAAAAA", coordinator.AdminKey.Secret), "UnrecognizedClientException"),
            ("a disabled key", disabled, "UnrecognizedClientException"),
        ];
        foreach (var method in guarded)
        {
            foreach (var (name, key, error) in callers)
            {
                // An empty message is a valid request of every method (all fields are optional on the wire).
                var (status, message) = await RawGrpc.CallAsync(coordinator.Address, method, [], key);
                Assert.True(status == (int)StatusCode.Unauthenticated, $"{method} with {name}: status {status} '{message}'");
                Assert.StartsWith(method.Split('/')[1] switch
                {
                    "ecslite.v1.AgentChannel" => "The agent channel takes a client certificate",
                    "ecslite.v1.AgentPeers" => "Only a coordinator of this cluster",
                    _ => error,
                }, message, StringComparison.Ordinal);
            }
        }

        Assert.Equal(before, await SnapshotAsync(coordinator));
        var audit = await coordinator.AuditAsync(lines => lines.Count(l => l.Contains("\"result\":\"MissingAuthenticationTokenException\"", StringComparison.Ordinal)) >= guarded.Count);
        Assert.Contains(audit, l => l.Contains("\"principal\":\"anonymous\"", StringComparison.Ordinal) && l.Contains("\"action\":\"ecs:RunTask\"", StringComparison.Ordinal));
        Assert.DoesNotContain(audit, l => l.Contains(coordinator.AdminKey.Secret, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Policies_decide_over_real_gRPC_and_a_refusal_names_the_user_the_action_and_the_resource()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        foreach (var name in new[] { "A", "B" })
        {
            await coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = name });
        }

        await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
        {
            Family = "web",
            ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 64 } },
        });
        var reader = new Ecs.EcsClient(coordinator.NewChannel(await KeyForAsync(coordinator, "reader", ReadOnly)));
        var runner = new Ecs.EcsClient(coordinator.NewChannel(await KeyForAsync(coordinator, "runner", RunTaskOnA)));
        var notB = new Ecs.EcsClient(coordinator.NewChannel(await KeyForAsync(coordinator, "not-b", AllButClusterB)));

        // Read-only: reads pass, a write is refused and does nothing.
        Assert.Equal(3, (await reader.ListClustersAsync(new ListClustersRequest())).ClusterArns.Count);
        await reader.DescribeTasksAsync(new DescribeTasksRequest { Cluster = "B", Tasks = { "0123456789abcdef0123456789abcdef" } });
        var refused = await Assert.ThrowsAsync<RpcException>(() => reader.CreateClusterAsync(new CreateClusterRequest { ClusterName = "C" }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Equal(
            "AccessDeniedException: User: arn:aws:iam::000000000000:user/reader is not authorized to perform: ecs:CreateCluster on resource: "
            + "arn:aws:ecs:local:000000000000:cluster/C because no identity-based policy allows the action",
            refused.Status.Detail);

        // RunTask on A only: the call on A gets past the check to the handler (which finds no container
        // instance to place it on, as ECS would say); on B, and anything else, it is refused.
        var onA = await Assert.ThrowsAsync<RpcException>(() => runner.RunTaskAsync(new RunTaskRequest { Cluster = "A", TaskDefinition = "web" }).ResponseAsync);
        Assert.Equal("InvalidParameterException: cluster: No Container Instances were found in your cluster.", onA.Status.Detail);
        Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => runner.RunTaskAsync(new RunTaskRequest { Cluster = "B", TaskDefinition = "web" }).ResponseAsync)).StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => runner.ListClustersAsync(new ListClustersRequest()).ResponseAsync)).StatusCode);

        // Everything but cluster B: an explicit Deny beats the wildcard Allow.
        await notB.CreateServiceAsync(new CreateServiceRequest { Cluster = "A", ServiceName = "web", TaskDefinition = "web", DesiredCount = 0 });
        var denied = await Assert.ThrowsAsync<RpcException>(() => notB.CreateServiceAsync(new CreateServiceRequest { Cluster = "B", ServiceName = "web", TaskDefinition = "web", DesiredCount = 0 }).ResponseAsync);
        Assert.EndsWith("on resource: arn:aws:ecs:local:000000000000:service/B/web with an explicit deny in an identity-based policy", denied.Status.Detail, StringComparison.Ordinal);
        await Assert.ThrowsAsync<RpcException>(() => notB.DeleteClusterAsync(new DeleteClusterRequest { Cluster = "B" }).ResponseAsync);
        var b = (await coordinator.Ecs.DescribeClustersAsync(new DescribeClustersRequest { Clusters = { "B" } })).Clusters.Single();
        Assert.Equal(("ACTIVE", 0), (b.Status, b.ActiveServicesCount));

        var audit = await coordinator.AuditAsync(lines => lines.Any(l => l.Contains("user/not-b", StringComparison.Ordinal) && l.Contains("ecs:DeleteCluster", StringComparison.Ordinal)));
        Assert.Contains(audit, l => l.Contains("\"principal\":\"arn:aws:iam::000000000000:user/reader\"", StringComparison.Ordinal)
            && l.Contains("\"resources\":[\"arn:aws:ecs:local:000000000000:cluster/C\"]", StringComparison.Ordinal)
            && l.Contains("\"result\":\"AccessDeniedException\"", StringComparison.Ordinal)
            && l.Contains("\"source\":\"ipv4:127.0.0.1:", StringComparison.Ordinal));
        Assert.Contains(audit, l => l.Contains("user/not-b", StringComparison.Ordinal) && l.Contains("\"action\":\"ecs:CreateService\"", StringComparison.Ordinal)
            && l.Contains("service/A/web", StringComparison.Ordinal) && l.Contains("\"result\":\"OK\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_admin_socket_answers_as_root_and_the_key_commands_create_list_and_disable_keys()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(coordinator.AdminSocket));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(coordinator.DataDir, "admin-credentials")));
        using (var socket = AdminSocket.Dial(coordinator.AdminSocket))
        {
            await new Ecs.EcsClient(socket).CreateClusterAsync(new CreateClusterRequest { ClusterName = "from-the-socket" });
        }

        var created = await CliAsync(coordinator, "key", "create");
        var key = ParseCredentials(created);
        var ecs = new Ecs.EcsClient(coordinator.NewChannel(key));
        Assert.Contains((await ecs.ListClustersAsync(new ListClustersRequest())).ClusterArns, arn => arn.EndsWith("/from-the-socket", StringComparison.Ordinal));
        Assert.Contains($"{key.AccessKeyId}\tActive", await CliAsync(coordinator, "key", "list"), StringComparison.Ordinal);

        await CliAsync(coordinator, "key", "disable", key.AccessKeyId);
        Assert.Contains($"{key.AccessKeyId}\tInactive", await CliAsync(coordinator, "key", "list"), StringComparison.Ordinal);
        var refused = await Assert.ThrowsAsync<RpcException>(() => ecs.ListClustersAsync(new ListClustersRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);

        // The secret was shown once: the store keeps its hash only.
        var stored = Directory.EnumerateFiles(coordinator.DataDir).Where(f => f != coordinator.AdminSocket && !f.EndsWith("admin-credentials", StringComparison.Ordinal))
            .Select(File.ReadAllBytes).Select(Encoding.Latin1.GetString);
        Assert.DoesNotContain(stored, text => text.Contains(key.Secret, StringComparison.Ordinal) || text.Contains(coordinator.AdminKey.Secret, StringComparison.Ordinal));

        var (code, output) = await coordinator.RunCliAsync("key", "delete", "AKIAAAAAAAAAAAAAAAAA");
        Assert.Equal(1, code);
        Assert.Contains("NoSuchEntity: The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.", output, StringComparison.Ordinal);

        // A second coordinator may not take over a socket that still answers.
        var second = await Assert.ThrowsAsync<InvalidOperationException>(() => CoordinatorProcess.StartAsync(null, "--admin-socket", coordinator.AdminSocket));
        Assert.Contains("exited with 2", second.Message, StringComparison.Ordinal);
        Assert.Contains($"The admin socket {coordinator.AdminSocket} is in use by another coordinator", second.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_schedule_is_no_way_around_a_policy_its_creator_needs_the_RunTask_it_will_make()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        foreach (var name in new[] { "A", "B" })
        {
            await coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = name });
        }

        await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest { Family = "web", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16 } } });
        const string SchedulesAndRunTaskOnA = """
            { "Version": "2012-10-17", "Statement": [
              { "Effect": "Allow", "Action": "scheduler:*", "Resource": "arn:aws:scheduler:*:*:schedule/default/team-*" },
              { "Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*", "Condition": { "ArnEquals": { "ecs:cluster": "arn:aws:ecs:local:000000000000:cluster/A" } } } ] }
            """;
        var scheduler = new Scheduler.SchedulerClient(coordinator.NewChannel(await KeyForAsync(coordinator, "team", SchedulesAndRunTaskOnA)));
        CreateScheduleRequest Schedule(string name, string cluster) => new()
        {
            Name = name, ScheduleExpression = "rate(1 hour)", FlexibleTimeWindow = new FlexibleTimeWindow { Mode = "OFF" },
            Target = new Target { Arn = $"arn:aws:ecs:local:000000000000:cluster/{cluster}", EcsParameters = new EcsParameters { TaskDefinitionArn = "web" } },
        };

        Assert.Equal("arn:aws:scheduler:local:000000000000:schedule/default/team-a", (await scheduler.CreateScheduleAsync(Schedule("team-a", "A"))).ScheduleArn);
        var otherCluster = await Assert.ThrowsAsync<RpcException>(() => scheduler.CreateScheduleAsync(Schedule("team-b", "B")).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, otherCluster.StatusCode);
        Assert.Contains("is not authorized to perform: ecs:RunTask", otherCluster.Status.Detail, StringComparison.Ordinal);
        var otherName = await Assert.ThrowsAsync<RpcException>(() => scheduler.CreateScheduleAsync(Schedule("ops-a", "A")).ResponseAsync);
        Assert.Contains("is not authorized to perform: scheduler:CreateSchedule on resource: arn:aws:scheduler:local:000000000000:schedule/default/ops-a", otherName.Status.Detail, StringComparison.Ordinal);

        // Neither refused schedule exists; the administrator (scheduler:* in its policy) sees the one that does.
        var admin = new Scheduler.SchedulerClient(coordinator.Channel);
        Assert.Equal(["team-a"], (await admin.ListSchedulesAsync(new ListSchedulesRequest())).Schedules.Select(s => s.Name));
    }

    private static async Task<(string AccessKeyId, string Secret)> KeyForAsync(CoordinatorProcess coordinator, string user, string policy)
    {
        var iam = new Iam.IamClient(coordinator.Channel);
        await iam.CreateUserAsync(new CreateUserRequest { UserName = user });
        await iam.PutUserPolicyAsync(new PutUserPolicyRequest { UserName = user, PolicyName = "policy", PolicyDocument = policy });
        var key = (await iam.CreateAccessKeyAsync(new CreateAccessKeyRequest { UserName = user })).AccessKey;
        return (key.AccessKeyId, key.SecretAccessKey);
    }

    private static async Task<string> SnapshotAsync(CoordinatorProcess coordinator)
    {
        var clusters = await coordinator.Ecs.ListClustersAsync(new ListClustersRequest());
        var families = await coordinator.Ecs.ListTaskDefinitionFamiliesAsync(new ListTaskDefinitionFamiliesRequest());
        var users = await new Iam.IamClient(coordinator.Channel).ListUsersAsync(new ListUsersRequest());
        return $"{clusters}{families}{users}";
    }

    private static async Task<string> CliAsync(CoordinatorProcess coordinator, params string[] args)
    {
        var (code, output) = await coordinator.RunCliAsync(args);
        Assert.True(code == 0, $"ecslite-coordinator {string.Join(' ', args)} exited with {code}:\n{output}");
        return output;
    }

    private static (string AccessKeyId, string Secret) ParseCredentials(string text)
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, text);
        try
        {
            return CoordinatorProcess.ReadCredentials(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
