using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;
using Google.Protobuf;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>
/// Five policies x every RPC (the Ecs, TaskLogs, Events and Iam services) x two clusters, each outcome written out: the evaluator and ECS's table of
/// actions and resources together decide exactly these, no more and no less.
/// </summary>
public sealed class PolicyMatrixTests
{
    private static readonly ArnFormat Arns = new();

    /// <summary>The policies, in the order of the letters in <see cref="Expected"/>.</summary>
    public static readonly (string Name, string Json)[] Policies =
    [
        ("admin", """{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "ecs:*", "Resource": "*" }] }"""),
        ("read-only", """
            { "Version": "2012-10-17", "Statement": [
              { "Sid": "Read", "Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*" } ] }
            """),
        ("run-task-on-A", """
            { "Version": "2012-10-17", "Statement": [
              { "Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*",
                "Condition": { "ArnEquals": { "ecs:cluster": "arn:aws:ecs:local:000000000000:cluster/A" } } } ] }
            """),
        ("all-but-DeleteCluster", """
            { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "NotAction": "ecs:DeleteCluster", "Resource": "*" }] }
            """),
        ("allow-all-deny-B", """
            { "Version": "2012-10-17", "Statement": [
              { "Effect": "Allow", "Action": "ecs:*", "Resource": "*" },
              { "Effect": "Deny", "Action": "ecs:*", "Resource": "*",
                "Condition": { "ArnLike": { "ecs:cluster": "arn:aws:ecs:*:*:cluster/B" } } },
              { "Effect": "Deny", "Action": "ecs:*", "Resource": ["arn:aws:ecs:*:*:cluster/B", "arn:aws:ecs:*:*:*/B/*"] } ] }
            """),
    ];

    /// <summary>
    /// Per RPC, the outcome of each policy (Y allowed, N denied) in cluster A, then in cluster B. Calls
    /// that are about no cluster (task definitions, ListClusters) have the same outcome in both.
    /// </summary>
    public static readonly Dictionary<string, (string A, string B)> Expected = new()
    {
        //                                       admin, read-only, run-on-A, all-but-Delete, deny-B
        ["CreateCluster"] = ("YNNYY", "YNNYN"),
        ["DescribeClusters"] = ("YYNYY", "YYNYN"),
        ["ListClusters"] = ("YYNYY", "YYNYY"),
        ["DeleteCluster"] = ("YNNNY", "YNNNN"),
        ["RegisterTaskDefinition"] = ("YNNYY", "YNNYY"),
        ["DescribeTaskDefinition"] = ("YYNYY", "YYNYY"),
        ["ListTaskDefinitions"] = ("YYNYY", "YYNYY"),
        ["ListTaskDefinitionFamilies"] = ("YYNYY", "YYNYY"),
        ["DeregisterTaskDefinition"] = ("YNNYY", "YNNYY"),
        ["DeleteTaskDefinitions"] = ("YNNYY", "YNNYY"),
        ["TagResource"] = ("YNNYY", "YNNYN"),
        ["UntagResource"] = ("YNNYY", "YNNYN"),
        ["ListTagsForResource"] = ("YYNYY", "YYNYN"),
        ["ListContainerInstances"] = ("YYNYY", "YYNYN"),
        ["DescribeContainerInstances"] = ("YYNYY", "YYNYN"),
        ["DeregisterContainerInstance"] = ("YNNYY", "YNNYN"),
        ["UpdateContainerInstancesState"] = ("YNNYY", "YNNYN"),
        ["PutAttributes"] = ("YNNYY", "YNNYN"),
        ["DeleteAttributes"] = ("YNNYY", "YNNYN"),
        ["ListAttributes"] = ("YYNYY", "YYNYN"),
        ["RunTask"] = ("YNYYY", "YNNYN"),
        ["StartTask"] = ("YNNYY", "YNNYN"),
        ["StopTask"] = ("YNNYY", "YNNYN"),
        ["DescribeTasks"] = ("YYNYY", "YYNYN"),
        ["ListTasks"] = ("YYNYY", "YYNYN"),
        ["GetTaskLogs"] = ("YNNYY", "YNNYN"),
        ["WatchEvents"] = ("YNNYY", "YNNYN"),
        ["CreateService"] = ("YNNYY", "YNNYN"),
        ["UpdateService"] = ("YNNYY", "YNNYN"),
        ["DeleteService"] = ("YNNYY", "YNNYN"),
        ["DescribeServices"] = ("YYNYY", "YYNYN"),
        ["ListServices"] = ("YYNYY", "YYNYN"),

        // IAM's calls are iam: actions: only NotAction (everything but one ecs: action) reaches them.
        ["CreateUser"] = ("NNNYN", "NNNYN"),
        ["GetUser"] = ("NNNYN", "NNNYN"),
        ["ListUsers"] = ("NNNYN", "NNNYN"),
        ["DeleteUser"] = ("NNNYN", "NNNYN"),
        ["PutUserPolicy"] = ("NNNYN", "NNNYN"),
        ["GetUserPolicy"] = ("NNNYN", "NNNYN"),
        ["ListUserPolicies"] = ("NNNYN", "NNNYN"),
        ["DeleteUserPolicy"] = ("NNNYN", "NNNYN"),
        ["CreateAccessKey"] = ("NNNYN", "NNNYN"),
        ["ListAccessKeys"] = ("NNNYN", "NNNYN"),
        ["UpdateAccessKey"] = ("NNNYN", "NNNYN"),
        ["DeleteAccessKey"] = ("NNNYN", "NNNYN"),

        // CloudWatch Logs' calls are logs: actions, likewise.
        ["DescribeLogGroups"] = ("NNNYN", "NNNYN"),
        ["DescribeLogStreams"] = ("NNNYN", "NNNYN"),
        ["GetLogEvents"] = ("NNNYN", "NNNYN"),
        ["FilterLogEvents"] = ("NNNYN", "NNNYN"),
    };

    /// <summary>A request of each RPC about cluster <paramref name="c"/>: A by name, B by ARN, as callers write either.</summary>
    public static IMessage Request(string rpc, string c)
    {
        var cluster = c == "A" ? "A" : Arns.Cluster(c);
        var taskArn = Arns.Task(c, "0123456789abcdef0123456789abcdef");
        return rpc switch
        {
            "CreateCluster" => new CreateClusterRequest { ClusterName = c },
            "DescribeClusters" => new DescribeClustersRequest { Clusters = { cluster } },
            "ListClusters" => new ListClustersRequest(),
            "DeleteCluster" => new DeleteClusterRequest { Cluster = cluster },
            "RegisterTaskDefinition" => Fixtures.Simple("web"),
            "DescribeTaskDefinition" => new DescribeTaskDefinitionRequest { TaskDefinition = "web" },
            "ListTaskDefinitions" => new ListTaskDefinitionsRequest(),
            "ListTaskDefinitionFamilies" => new ListTaskDefinitionFamiliesRequest(),
            "DeregisterTaskDefinition" => new DeregisterTaskDefinitionRequest { TaskDefinition = "web:1" },
            "DeleteTaskDefinitions" => new DeleteTaskDefinitionsRequest { TaskDefinitions = { "web:1" } },
            "TagResource" => new TagResourceRequest { ResourceArn = taskArn, Tags = { new Tag { Key = "k", Value = "v" } } },
            "UntagResource" => new UntagResourceRequest { ResourceArn = taskArn, TagKeys = { "k" } },
            "ListTagsForResource" => new ListTagsForResourceRequest { ResourceArn = taskArn },
            "ListContainerInstances" => new ListContainerInstancesRequest { Cluster = cluster },
            "DescribeContainerInstances" => new DescribeContainerInstancesRequest { Cluster = cluster, ContainerInstances = { "i-1" } },
            "DeregisterContainerInstance" => new DeregisterContainerInstanceRequest { Cluster = cluster, ContainerInstance = "i-1" },
            "UpdateContainerInstancesState" => new UpdateContainerInstancesStateRequest { Cluster = cluster, ContainerInstances = { "i-1" }, Status = "DRAINING" },
            "PutAttributes" => new PutAttributesRequest { Cluster = cluster, Attributes = { new EcsLite.Api.V1.Attribute { Name = "rack", Value = "1", TargetId = "i-1" } } },
            "DeleteAttributes" => new DeleteAttributesRequest { Cluster = cluster, Attributes = { new EcsLite.Api.V1.Attribute { Name = "rack", TargetId = "i-1" } } },
            "ListAttributes" => new ListAttributesRequest { Cluster = cluster, TargetType = "container-instance" },
            "RunTask" => new RunTaskRequest { Cluster = cluster, TaskDefinition = "web" },
            "StartTask" => new StartTaskRequest { Cluster = cluster, TaskDefinition = "web:1", ContainerInstances = { "i-1" } },
            "StopTask" => new StopTaskRequest { Cluster = cluster, Task = "0123456789abcdef0123456789abcdef" },
            "DescribeTasks" => new DescribeTasksRequest { Cluster = cluster, Tasks = { taskArn } },
            "ListTasks" => new ListTasksRequest { Cluster = cluster },
            "GetTaskLogs" => new GetTaskLogsRequest { Cluster = cluster, Task = "0123456789abcdef0123456789abcdef" },
            "WatchEvents" => new WatchEventsRequest { Cluster = cluster },
            "CreateService" => new CreateServiceRequest { Cluster = cluster, ServiceName = "web", TaskDefinition = "web" },
            "UpdateService" => new UpdateServiceRequest { Cluster = cluster, Service = "web", DesiredCount = 2 },
            "DeleteService" => new DeleteServiceRequest { Cluster = cluster, Service = "web" },
            "DescribeServices" => new DescribeServicesRequest { Cluster = cluster, Services = { "web" } },
            "ListServices" => new ListServicesRequest { Cluster = cluster },
            "DescribeLogGroups" => new DescribeLogGroupsRequest(),
            "DescribeLogStreams" => new DescribeLogStreamsRequest { LogGroupName = "/ecs/web" },
            "GetLogEvents" => new GetLogEventsRequest { LogGroupName = "/ecs/web", LogStreamName = "ecs/web/0123" },
            "FilterLogEvents" => new FilterLogEventsRequest { LogGroupName = "/ecs/web" },
            "CreateUser" => new CreateUserRequest { UserName = "alice" },
            "GetUser" => new GetUserRequest(),
            "ListUsers" => new ListUsersRequest(),
            "DeleteUser" => new DeleteUserRequest { UserName = "alice" },
            "PutUserPolicy" => new PutUserPolicyRequest { UserName = "alice", PolicyName = "p", PolicyDocument = Policies[0].Json },
            "GetUserPolicy" => new GetUserPolicyRequest { UserName = "alice", PolicyName = "p" },
            "ListUserPolicies" => new ListUserPoliciesRequest { UserName = "alice" },
            "DeleteUserPolicy" => new DeleteUserPolicyRequest { UserName = "alice", PolicyName = "p" },
            "CreateAccessKey" => new CreateAccessKeyRequest(),
            "ListAccessKeys" => new ListAccessKeysRequest(),
            "UpdateAccessKey" => new UpdateAccessKeyRequest { AccessKeyId = "AKIAAAAAAAAAAAAAAAAA", Status = "Inactive" },
            "DeleteAccessKey" => new DeleteAccessKeyRequest { AccessKeyId = "AKIAAAAAAAAAAAAAAAAA" },
            _ => throw new ArgumentException(rpc),
        };
    }

    public static string? LatestRevision(string family) => family == "web" ? Arns.TaskDefinition("web", 3) : null;

    [Fact]
    public void The_table_covers_every_RPC_of_the_API_services()
    {
        var rpcs = EcsReflection.Descriptor.Services.Concat(LogsReflection.Descriptor.Services).Concat(IamReflection.Descriptor.Services).Concat(EventsReflection.Descriptor.Services)
            .SelectMany(s => s.Methods).Select(m => m.Name).Order().ToList();
        Assert.Equal(rpcs, Expected.Keys.Order());
    }

    public static TheoryData<string, string> Cells()
    {
        var cells = new TheoryData<string, string>();
        foreach (var rpc in Expected.Keys)
        {
            cells.Add(rpc, "A");
            cells.Add(rpc, "B");
        }

        return cells;
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void Each_policy_decides_each_call_as_written(string rpc, string cluster)
    {
        var request = ApiActions.Describe(rpc, Request(rpc, cluster), Arns, LatestRevision, caller: "bob");
        Assert.EndsWith($":{rpc}", request.Action, StringComparison.Ordinal);
        var expected = cluster == "A" ? Expected[rpc].A : Expected[rpc].B;
        var actual = string.Concat(Policies.Select(p =>
            PolicyEvaluator.Evaluate([PolicyDocument.Parse(p.Json)], request).Allowed ? 'Y' : 'N'));
        Assert.True(expected == actual, $"{rpc} in cluster {cluster}: expected {expected}, got {actual} (policies {string.Join(", ", Policies.Select(p => p.Name))})");
    }
}
