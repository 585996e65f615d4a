using System.Collections.Immutable;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Secrets;
using Google.Protobuf;

namespace EcsLite.Coordinator.Core.Security;

/// <summary>
/// Which IAM action and resources each call is, following ECS's table of actions and resource types
/// (the Service Authorization Reference): e.g. RunTask acts on a task-definition ARN, StopTask on a
/// task ARN, both with the cluster's ARN as the <c>ecs:cluster</c> condition key; actions ECS gives no
/// resource-level permissions (ListClusters, RegisterTaskDefinition, ...) need <c>Resource: "*"</c>.
/// EcsLite's own GetTaskLogs is <c>ecs:GetTaskLogs</c> on the task, WatchEvents <c>ecs:WatchEvents</c> on
/// the cluster it is limited to (else "*"); the Iam service's calls are IAM's
/// actions on the user they are about (ListUsers on "*"); join tokens are SSM's activation actions on "*";
/// schedules are EventBridge Scheduler's actions on the schedule's ARN; parameters and secrets are
/// Parameter Store's and Secrets Manager's actions on their ARNs (DescribeParameters and ListSecrets on "*");
/// CloudWatch Logs' on the log group's ARN (DescribeLogGroups on "*").
/// </summary>
public static class ApiActions
{
    public const string ClusterKey = "ecs:cluster";

    /// <summary>
    /// Describes a call. <paramref name="latestRevision"/> resolves a task definition given by family
    /// alone to its ARN (the latest ACTIVE revision), or null if there is none. IAM calls without a
    /// UserName are about <paramref name="caller"/>'s own user, as in IAM.
    /// </summary>
    public static AuthorizationRequest Describe(string method, IMessage request, ArnFormat arns, Func<string, string?> latestRevision, string caller = "", SecretState? secrets = null)
    {
        secrets ??= SecretState.Empty;
        string Parameter(string name) => secrets.ParameterArnOf(name, arns);
        string Secret(string id) => secrets.SecretArnOf(id, arns);
        var r = new Describer(arns, latestRevision);
        string User(string name) => IamState.UserArn(arns, name.Length > 0 ? name : caller);
        return request switch
        {
            CreateClusterRequest m => r.Make("CreateCluster", [arns.Cluster(Name(m.ClusterName))]),
            DescribeClustersRequest m => r.Make("DescribeClusters", m.Clusters.Count == 0 ? [arns.Cluster("default")] : [.. m.Clusters.Select(c => arns.Cluster(Name(c)))]),
            ListClustersRequest => r.Make("ListClusters", []),
            DeleteClusterRequest m => r.Make("DeleteCluster", [arns.Cluster(Name(m.Cluster))], m.Cluster),

            RegisterTaskDefinitionRequest => r.Make("RegisterTaskDefinition", []),
            DescribeTaskDefinitionRequest => r.Make("DescribeTaskDefinition", []),
            ListTaskDefinitionsRequest => r.Make("ListTaskDefinitions", []),
            ListTaskDefinitionFamiliesRequest => r.Make("ListTaskDefinitionFamilies", []),
            DeregisterTaskDefinitionRequest => r.Make("DeregisterTaskDefinition", []),
            DeleteTaskDefinitionsRequest m => r.Make("DeleteTaskDefinitions", [.. m.TaskDefinitions.Select(r.TaskDefinition)]),

            TagResourceRequest m => r.Make("TagResource", [m.ResourceArn]),
            UntagResourceRequest m => r.Make("UntagResource", [m.ResourceArn]),
            ListTagsForResourceRequest m => r.Make("ListTagsForResource", [m.ResourceArn]),

            ListContainerInstancesRequest m => r.Make("ListContainerInstances", [arns.Cluster(Name(m.Cluster))], m.Cluster),
            DescribeContainerInstancesRequest m => r.Make("DescribeContainerInstances", [.. m.ContainerInstances.Select(i => r.Scoped(m.Cluster, "container-instance", i))], m.Cluster),
            DeregisterContainerInstanceRequest m => r.Make("DeregisterContainerInstance", [arns.Cluster(Name(m.Cluster))], m.Cluster),
            UpdateContainerInstancesStateRequest m => r.Make("UpdateContainerInstancesState", [.. m.ContainerInstances.Select(i => r.Scoped(m.Cluster, "container-instance", i))], m.Cluster),
            PutAttributesRequest m => r.Make("PutAttributes", [.. m.Attributes.Select(a => r.Scoped(m.Cluster, "container-instance", a.TargetId))], m.Cluster),
            DeleteAttributesRequest m => r.Make("DeleteAttributes", [.. m.Attributes.Select(a => r.Scoped(m.Cluster, "container-instance", a.TargetId))], m.Cluster),
            ListAttributesRequest m => r.Make("ListAttributes", [arns.Cluster(Name(m.Cluster))], m.Cluster),

            RunTaskRequest m => r.Make("RunTask", [r.TaskDefinition(m.TaskDefinition)], m.Cluster),
            StartTaskRequest m => r.Make("StartTask", [r.TaskDefinition(m.TaskDefinition)], m.Cluster),
            StopTaskRequest m => r.Make("StopTask", [r.Scoped(m.Cluster, "task", m.Task)], m.Cluster),
            DescribeTasksRequest m => r.Make("DescribeTasks", [.. m.Tasks.Select(t => r.Scoped(m.Cluster, "task", t))], m.Cluster),
            ListTasksRequest m => r.Make("ListTasks", m.HasContainerInstance ? [r.Scoped(m.Cluster, "container-instance", m.ContainerInstance)] : [], m.Cluster),
            GetTaskLogsRequest m => r.Make("GetTaskLogs", [r.Scoped(m.Cluster, "task", m.Task)], m.Cluster),
            WatchEventsRequest m => m.HasCluster ? r.Make("WatchEvents", [arns.Cluster(Name(m.Cluster))], m.Cluster) : r.Make("WatchEvents", []),

            CreateServiceRequest m => r.Make("CreateService", [r.Scoped(m.Cluster, "service", m.ServiceName)], m.Cluster),
            UpdateServiceRequest m => r.Make("UpdateService", [r.Scoped(m.Cluster, "service", m.Service)], m.Cluster),
            DeleteServiceRequest m => r.Make("DeleteService", [r.Scoped(m.Cluster, "service", m.Service)], m.Cluster),
            DescribeServicesRequest m => r.Make("DescribeServices", [.. m.Services.Select(s => r.Scoped(m.Cluster, "service", s))], m.Cluster),
            ListServicesRequest m => r.Make("ListServices", [], m.Cluster),

            CreateUserRequest m => Iam("CreateUser", User(m.UserName)),
            GetUserRequest m => Iam("GetUser", User(m.UserName)),
            ListUsersRequest => Iam("ListUsers", null),
            DeleteUserRequest m => Iam("DeleteUser", User(m.UserName)),
            PutUserPolicyRequest m => Iam("PutUserPolicy", User(m.UserName)),
            GetUserPolicyRequest m => Iam("GetUserPolicy", User(m.UserName)),
            ListUserPoliciesRequest m => Iam("ListUserPolicies", User(m.UserName)),
            DeleteUserPolicyRequest m => Iam("DeleteUserPolicy", User(m.UserName)),
            CreateAccessKeyRequest m => Iam("CreateAccessKey", User(m.UserName)),
            ListAccessKeysRequest m => Iam("ListAccessKeys", User(m.UserName)),
            UpdateAccessKeyRequest m => Iam("UpdateAccessKey", User(m.UserName)),
            DeleteAccessKeyRequest m => Iam("DeleteAccessKey", User(m.UserName)),

            CreateScheduleRequest m => Scheduler("CreateSchedule", arns, m.Name),
            GetScheduleRequest m => Scheduler("GetSchedule", arns, m.Name),
            UpdateScheduleRequest m => Scheduler("UpdateSchedule", arns, m.Name),
            DeleteScheduleRequest m => Scheduler("DeleteSchedule", arns, m.Name),
            ListSchedulesRequest => Scheduler("ListSchedules", arns, null),

            CreateActivationRequest => Ssm("CreateActivation"),
            DescribeActivationsRequest => Ssm("DescribeActivations"),
            DeleteActivationRequest => Ssm("DeleteActivation"),

            PutParameterRequest m => Simple("ssm:PutParameter", Parameter(m.Name)),
            GetParameterRequest m => Simple("ssm:GetParameter", Parameter(m.Name)),
            GetParametersRequest m => new("ssm:GetParameters", [.. m.Names.Select(Parameter)], ImmutableDictionary<string, string>.Empty),
            DeleteParameterRequest m => Simple("ssm:DeleteParameter", Parameter(m.Name)),
            DescribeParametersRequest => Simple("ssm:DescribeParameters", null),
            CreateSecretRequest m => Simple("secretsmanager:CreateSecret", Secret(m.Name)),
            PutSecretValueRequest m => Simple("secretsmanager:PutSecretValue", Secret(m.SecretId)),
            GetSecretValueRequest m => Simple("secretsmanager:GetSecretValue", Secret(m.SecretId)),
            DescribeSecretRequest m => Simple("secretsmanager:DescribeSecret", Secret(m.SecretId)),
            DeleteSecretRequest m => Simple("secretsmanager:DeleteSecret", Secret(m.SecretId)),
            ListSecretsRequest => Simple("secretsmanager:ListSecrets", null),
            RotateKeyOnDemandRequest => Simple("kms:RotateKeyOnDemand", null),

            DescribeLogGroupsRequest => Simple("logs:DescribeLogGroups", null),
            DescribeLogStreamsRequest m => Simple("logs:DescribeLogStreams", Logs.LogStreams.GroupArn(arns, m.LogGroupName)),
            GetLogEventsRequest m => Simple("logs:GetLogEvents", Logs.LogStreams.GroupArn(arns, m.LogGroupName)),
            FilterLogEventsRequest m => Simple("logs:FilterLogEvents", Logs.LogStreams.GroupArn(arns, m.LogGroupName)),

            _ => throw new ArgumentException($"{method}: no IAM action is defined for {request.Descriptor.FullName}.", nameof(request)),
        };
    }

    /// <summary>EventBridge Scheduler's actions act on the schedule's ARN; ListSchedules on "*".</summary>
    private static AuthorizationRequest Scheduler(string action, ArnFormat arns, string? name) =>
        new($"scheduler:{action}", name is null ? [] : [Schedules.ScheduleCommands.ScheduleArn(arns, name)], ImmutableDictionary<string, string>.Empty);

    /// <summary>SSM gives its activation calls no resource-level permissions: they need <c>Resource: "*"</c>.</summary>
    private static AuthorizationRequest Ssm(string action) => new($"ssm:{action}", [], ImmutableDictionary<string, string>.Empty);

    private static AuthorizationRequest Iam(string action, string? user) => Simple($"iam:{action}", user);

    private static AuthorizationRequest Simple(string action, string? resource) =>
        new(action, resource is null ? [] : [resource], ImmutableDictionary<string, string>.Empty);

    /// <summary>
    /// The IAM action a gRPC method ("/package.Service/Method") is: the Iam service's are iam:, the
    /// Activations service's ssm:, the Scheduler's scheduler:, the Secrets service's ssm: (parameters),
    /// secretsmanager: (secrets) and kms: (its key), all others ecs:, with the method's own name (the RPCs are named as their actions).
    /// </summary>
    public static string ActionOf(string method)
    {
        var parts = method.Split('/');
        var prefix = parts[1] switch
        {
            "ecslite.v1.Iam" => "iam",
            "ecslite.v1.Activations" => "ssm",
            "ecslite.v1.Scheduler" => "scheduler",
            "ecslite.v1.Secrets" => parts[^1].Contains("Parameter", StringComparison.Ordinal) ? "ssm" : parts[^1] == "RotateKeyOnDemand" ? "kms" : "secretsmanager",
            "ecslite.v1.CloudWatchLogs" => "logs",
            _ => "ecs",
        };
        return $"{prefix}:{parts[^1]}";
    }

    /// <summary>A cluster name from a name or an ARN, without refusing a bad ARN here (the handler does, in its own words).</summary>
    private static string Name(string? cluster) =>
        string.IsNullOrEmpty(cluster) ? "default"
        : ArnFormat.TryParse(cluster, out var type, out var id) && type == "cluster" ? id
        : cluster;

    private sealed class Describer(ArnFormat arns, Func<string, string?> latestRevision)
    {
        /// <summary>The call; <paramref name="cluster"/> (null for calls not about one cluster) becomes ecs:cluster.</summary>
        public AuthorizationRequest Make(string action, ImmutableArray<string> resources, string? cluster = null) =>
            new($"ecs:{action}", resources, cluster is null
                ? ImmutableDictionary<string, string>.Empty
                : ImmutableDictionary<string, string>.Empty.Add(ClusterKey, arns.Cluster(Name(cluster))));

        /// <summary>A task, service or container instance by id, name or ARN; ids and names are in the request's cluster.</summary>
        public string Scoped(string? cluster, string type, string? reference) =>
            reference is not null && reference.StartsWith("arn:", StringComparison.Ordinal) ? reference
            : $"{arns.Prefix}{type}/{Name(cluster)}/{reference}";

        /// <summary>A task definition as family:revision or ARN; a family alone is its latest ACTIVE revision.</summary>
        public string TaskDefinition(string? reference)
        {
            if (string.IsNullOrEmpty(reference) || reference.StartsWith("arn:", StringComparison.Ordinal))
            {
                return reference ?? "";
            }

            return reference.Contains(':', StringComparison.Ordinal)
                ? $"{arns.Prefix}task-definition/{reference}"
                : latestRevision(reference) ?? $"{arns.Prefix}task-definition/{reference}";
        }
    }
}
