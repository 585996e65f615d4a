namespace EcsLite.Coordinator.Core;

/// <summary>ECS's error words. The names are the exception shapes of the ECS API model.</summary>
public static class EcsErrorType
{
    public const string ClientException = nameof(ClientException);
    public const string InvalidParameterException = nameof(InvalidParameterException);
    public const string ServerException = nameof(ServerException);
    public const string ClusterNotFoundException = nameof(ClusterNotFoundException);
    public const string ResourceNotFoundException = nameof(ResourceNotFoundException);
    public const string ClusterContainsContainerInstancesException = nameof(ClusterContainsContainerInstancesException);
    public const string ClusterContainsServicesException = nameof(ClusterContainsServicesException);
    public const string ClusterContainsTasksException = nameof(ClusterContainsTasksException);
    public const string LimitExceededException = nameof(LimitExceededException);
    public const string ServiceNotFoundException = nameof(ServiceNotFoundException);
    public const string ServiceNotActiveException = nameof(ServiceNotActiveException);
}

/// <summary>An error a caller sees, in ECS's words, naming the field at fault where there is one.</summary>
public sealed class EcsException(string errorType, string message, string? field = null) : Exception(message)
{
    public string ErrorType { get; } = errorType;

    /// <summary>The request field at fault, as a JSON path (e.g. containerDefinitions[1].portMappings[0].hostPort).</summary>
    public string? Field { get; } = field;

    public static EcsException InvalidParameter(string field, string message) =>
        new(EcsErrorType.InvalidParameterException, $"{field}: {message}", field);

    public static EcsException Client(string field, string message) =>
        new(EcsErrorType.ClientException, $"{field}: {message}", field);

    public static EcsException ClusterNotFound(string field = "cluster") =>
        new(EcsErrorType.ClusterNotFoundException, $"{field}: Cluster not found.", field);

    public override string ToString() => $"{ErrorType}: {Message}";
}
