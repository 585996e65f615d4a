using EcsLite.Api.V1;
using EcsLite.Coordinator.Agents;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Services;
using EcsLite.Coordinator.Core.Tagging;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;
using Grpc.Core;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// The public API, one RPC per ECS action. Thin: reads go to the durable in-memory snapshot, writes
/// through the state machine; the core decides everything. Errors are mapped by <see cref="EcsErrorInterceptor"/>.
/// </summary>
public sealed class EcsService(ClusterStateMachine state, AgentSessions sessions) : Ecs.EcsBase
{
    public override Task<CreateClusterResponse> CreateCluster(CreateClusterRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => ClusterCommands.Create(s, request, c), context.CancellationToken);

    public override Task<DescribeClustersResponse> DescribeClusters(DescribeClustersRequest request, ServerCallContext context) =>
        Task.FromResult(ClusterCommands.Describe(state.Current, request, state.Arns));

    public override Task<ListClustersResponse> ListClusters(ListClustersRequest request, ServerCallContext context) =>
        Task.FromResult(ClusterCommands.List(state.Current, request));

    public override Task<DeleteClusterResponse> DeleteCluster(DeleteClusterRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, _) => ClusterCommands.Delete(s, request), context.CancellationToken);

    public override Task<RegisterTaskDefinitionResponse> RegisterTaskDefinition(RegisterTaskDefinitionRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => TaskDefinitionCommands.Register(s, request, c), context.CancellationToken);

    public override Task<DescribeTaskDefinitionResponse> DescribeTaskDefinition(DescribeTaskDefinitionRequest request, ServerCallContext context) =>
        Task.FromResult(TaskDefinitionCommands.Describe(state.Current, request));

    public override Task<ListTaskDefinitionsResponse> ListTaskDefinitions(ListTaskDefinitionsRequest request, ServerCallContext context) =>
        Task.FromResult(TaskDefinitionCommands.List(state.Current, request));

    public override Task<ListTaskDefinitionFamiliesResponse> ListTaskDefinitionFamilies(ListTaskDefinitionFamiliesRequest request, ServerCallContext context) =>
        Task.FromResult(TaskDefinitionCommands.ListFamilies(state.Current, request));

    public override Task<DeregisterTaskDefinitionResponse> DeregisterTaskDefinition(DeregisterTaskDefinitionRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => TaskDefinitionCommands.Deregister(s, request, c), context.CancellationToken);

    public override Task<DeleteTaskDefinitionsResponse> DeleteTaskDefinitions(DeleteTaskDefinitionsRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => TaskDefinitionCommands.Delete(s, request, c), context.CancellationToken);

    public override Task<TagResourceResponse> TagResource(TagResourceRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, _) => TagCommands.Tag(s, request), context.CancellationToken);

    public override Task<UntagResourceResponse> UntagResource(UntagResourceRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, _) => TagCommands.Untag(s, request), context.CancellationToken);

    public override Task<ListTagsForResourceResponse> ListTagsForResource(ListTagsForResourceRequest request, ServerCallContext context) =>
        Task.FromResult(TagCommands.List(state.Current, request));

    public override Task<ListContainerInstancesResponse> ListContainerInstances(ListContainerInstancesRequest request, ServerCallContext context) =>
        Task.FromResult(ContainerInstanceCommands.List(state.Current, request));

    public override Task<DescribeContainerInstancesResponse> DescribeContainerInstances(DescribeContainerInstancesRequest request, ServerCallContext context) =>
        Task.FromResult(ContainerInstanceCommands.Describe(state.Current, request, state.Arns));

    public override async Task<DeregisterContainerInstanceResponse> DeregisterContainerInstance(DeregisterContainerInstanceRequest request, ServerCallContext context)
    {
        var response = await state.ApplyAsync((s, c) => ContainerInstanceCommands.Deregister(s, request, c), context.CancellationToken);
        sessions.Find(response.ContainerInstance.ContainerInstanceArn)?.Close("the container instance was deregistered");
        return response;
    }

    public override Task<UpdateContainerInstancesStateResponse> UpdateContainerInstancesState(UpdateContainerInstancesStateRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => ContainerInstanceCommands.UpdateState(s, request, c), context.CancellationToken);

    public override Task<PutAttributesResponse> PutAttributes(PutAttributesRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => ContainerInstanceCommands.PutAttributes(s, request, c), context.CancellationToken);

    public override Task<DeleteAttributesResponse> DeleteAttributes(DeleteAttributesRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => ContainerInstanceCommands.DeleteAttributes(s, request, c), context.CancellationToken);

    public override Task<ListAttributesResponse> ListAttributes(ListAttributesRequest request, ServerCallContext context) =>
        Task.FromResult(ContainerInstanceCommands.ListAttributes(state.Current, request));

    public override Task<RunTaskResponse> RunTask(RunTaskRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => TaskCommands.Run(s, request, c, Random.Shared, NewId), context.CancellationToken);

    public override Task<StartTaskResponse> StartTask(StartTaskRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => TaskCommands.Start(s, request, c, NewId), context.CancellationToken);

    public override Task<StopTaskResponse> StopTask(StopTaskRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => TaskCommands.Stop(s, request, c), context.CancellationToken);

    public override Task<DescribeTasksResponse> DescribeTasks(DescribeTasksRequest request, ServerCallContext context) =>
        Task.FromResult(TaskCommands.Describe(state.Current, request, state.Arns));

    public override Task<ListTasksResponse> ListTasks(ListTasksRequest request, ServerCallContext context) =>
        Task.FromResult(TaskCommands.List(state.Current, request, state.Arns));

    public override Task<CreateServiceResponse> CreateService(CreateServiceRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, c) => ServiceCommands.Create(s, request, c, Random.Shared), context.CancellationToken);

    public override Task<UpdateServiceResponse> UpdateService(UpdateServiceRequest request, ServerCallContext context)
    {
        var emptyLists = EmptyLists(context);
        return state.ApplyAsync((s, c) => ServiceCommands.Update(s, request, c, Random.Shared, emptyLists), context.CancellationToken);
    }

    public override Task<DeleteServiceResponse> DeleteService(DeleteServiceRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, _) => ServiceCommands.Delete(s, request), context.CancellationToken);

    public override Task<DescribeServicesResponse> DescribeServices(DescribeServicesRequest request, ServerCallContext context) =>
        Task.FromResult(ServiceCommands.Describe(state.Current, request));

    public override Task<ListServicesResponse> ListServices(ListServicesRequest request, ServerCallContext context) =>
        Task.FromResult(ServiceCommands.List(state.Current, request));

    private static string NewId() => Guid.NewGuid().ToString("N");

    private const string EmptyListsKey = "ecslite-empty-lists";

    /// <summary>The members the JSON API's caller gave as an empty list ([]), for the handler to tell from absent ones.</summary>
    public static void SetEmptyLists(ServerCallContext context, IReadOnlySet<string> members) => context.UserState[EmptyListsKey] = members;

    /// <summary>
    /// Members given as an empty list: from the JSON API, or over gRPC (where proto3 cannot say so) in the
    /// "x-ecslite-empty-lists" header, comma-separated (e.g. placementStrategy to clear a service's).
    /// </summary>
    private static IReadOnlySet<string> EmptyLists(ServerCallContext context) =>
        context.UserState.TryGetValue(EmptyListsKey, out var set) ? (IReadOnlySet<string>)set
        : context.RequestHeaders.GetValue("x-ecslite-empty-lists") is { } header
            ? header.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal)
            : new HashSet<string>();
}
