namespace EcsLite.Coordinator.Core.Validation;

/// <summary>
/// Every input is bounded. ECS's published limits that its API model does not carry are here, by
/// "Shape.member" (strings in characters, lists and maps in entries); every other string, list and map
/// in any request (the agent channel's too) gets a bound of EcsLite's own. <see cref="ShapeRules"/>
/// applies them, with the model's own rules, to every message before any handler sees it.
/// </summary>
public static class Limits
{
    /// <summary>ECS: a task definition is at most 64 KiB of JSON.</summary>
    public const int TaskDefinitionBytes = 64 * 1024;

    /// <summary>ECS: a task's overrides are at most 8,192 characters of JSON.</summary>
    public const int OverridesCharacters = 8192;

    /// <summary>Any other string: a task definition's own fields fit inside its 64 KiB.</summary>
    public const int MaxString = 64 * 1024;

    /// <summary>Any other list or map.</summary>
    public const int MaxItems = 1000;

    /// <summary>Whatever a single request may weigh, any RPC (the agent channel has its own).</summary>
    public const int MaxRequestBytes = 1024 * 1024;

    internal static readonly Dictionary<string, long> Max = new(StringComparer.Ordinal)
    {
        // Names (the task definition's own are checked, in ECS's words, by its validator).
        ["CreateServiceRequest.serviceName"] = 255,
        ["CreateClusterRequest.clusterName"] = 255,

        // Tasks (ECS's RunTask and StartTask documentation).
        ["RunTaskRequest.startedBy"] = 128,
        ["StartTaskRequest.startedBy"] = 128,
        ["RunTaskRequest.group"] = 255,
        ["StartTaskRequest.group"] = 255,
        ["StopTaskRequest.reason"] = 255,
        ["RunTaskRequest.tags"] = 50,
        ["StartTaskRequest.tags"] = 50,
        ["RunTaskRequest.placementConstraints"] = 10,
        ["RunTaskRequest.placementStrategy"] = 5,
        ["StartTaskRequest.containerInstances"] = 10,
        ["RunTaskRequest.referenceId"] = 64,
        ["StartTaskRequest.referenceId"] = 64,

        // Placement (ECS: at most 10 constraints, 5 strategies; an expression of at most 2,000 characters).
        ["CreateServiceRequest.placementConstraints"] = 10,
        ["UpdateServiceRequest.placementConstraints"] = 10,
        ["CreateServiceRequest.placementStrategy"] = 5,
        ["UpdateServiceRequest.placementStrategy"] = 5,
        ["RegisterTaskDefinitionRequest.placementConstraints"] = 10,
        ["PlacementConstraint.expression"] = 2000,
        ["TaskDefinitionPlacementConstraint.expression"] = 2000,
        ["ListContainerInstancesRequest.filter"] = 2000,

        // Tags (ECS: keys 1-128, values 0-256).
        ["Tag.key"] = 128,
        ["Tag.value"] = 256,
        ["TagResourceRequest.tags"] = 50,
        ["UntagResourceRequest.tagKeys"] = 50,

        // Describe calls (ECS: at most 100 tasks, instances or clusters, 10 services).
        ["DescribeTasksRequest.tasks"] = 100,
        ["DescribeContainerInstancesRequest.containerInstances"] = 100,
        ["DescribeClustersRequest.clusters"] = 100,
        ["DescribeServicesRequest.services"] = 10,
        ["DeleteTaskDefinitionsRequest.taskDefinitions"] = 10,
        ["UpdateContainerInstancesStateRequest.containerInstances"] = 10,
        ["PutAttributesRequest.attributes"] = 10,
        ["DeleteAttributesRequest.attributes"] = 10,

        // The agent channel: a host reports every task it has, each with at most 10 containers.
        ["AgentHello.tasks"] = 100_000,
        ["TaskStateChange.containers"] = 10,
        ["ContainerStateChange.reason"] = 4096,
        ["TaskStateChange.stoppedReason"] = 4096,
        ["LogChunk.events"] = 10_000,

        // Parameter Store and Secrets Manager (their own quotas are checked again, in their words, by SecretState).
        ["PutParameterRequest.Value"] = 8192,
        ["PutParameterRequest.Name"] = 2048,
        ["GetParameterRequest.Name"] = 2048,
        ["DeleteParameterRequest.Name"] = 2048,
        ["GetParametersRequest.Names"] = 10,
        ["CreateSecretRequest.Name"] = 512,
        ["CreateSecretRequest.SecretString"] = 65_536,
        ["PutSecretValueRequest.SecretString"] = 65_536,
        ["CreateSecretRequest.Tags"] = 50,
        ["PutParameterRequest.Tags"] = 50,
    };

    /// <summary>Names and ARNs of things (an ARN is at most 1,600 characters in AWS), wherever they appear.</summary>
    private static readonly HashSet<string> References = new(StringComparer.Ordinal)
    {
        "cluster", "clusterName", "service", "serviceName", "task", "taskArn", "taskDefinition", "taskDefinitionArn", "family", "familyPrefix",
        "containerInstance", "containerInstanceArn", "resourceArn", "nextToken", "targetId", "containerName", "serviceArn",
    };

    public const int MaxReference = 1600;

    /// <summary>The bound on a member: ECS's, or EcsLite's default for its kind.</summary>
    internal static long For(string shapeMember, bool list) =>
        Max.TryGetValue(shapeMember, out var max) ? max
            : list ? MaxItems
            : References.Contains(shapeMember[(shapeMember.IndexOf('.') + 1)..]) ? MaxReference
            : MaxString;
}

/// <summary>The check every request gets at the edge, before its handler: the model's rules and the limits.</summary>
public static class RequestRules
{
    public static void Validate(Google.Protobuf.IMessage request) => ShapeRules.Validate(request);
}
