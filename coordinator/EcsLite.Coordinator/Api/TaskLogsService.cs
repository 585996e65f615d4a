using EcsLite.Api.V1;
using EcsLite.Coordinator.Agents;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;
using Grpc.Core;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// GetTaskLogs: asks the agent of the task's instance over its own channel (so it works for hosts
/// behind NAT; <see cref="AgentLogs"/>) and streams its answer to the caller; the caller hanging up cancels it on the agent.
/// </summary>
public sealed class TaskLogsService(ClusterStateMachine state, AgentLogs logs) : TaskLogs.TaskLogsBase
{
    public override async Task GetTaskLogs(GetTaskLogsRequest request, IServerStreamWriter<GetTaskLogsResponse> responseStream, ServerCallContext context)
    {
        var current = state.Current;
        var cluster = ClusterCommands.Active(current, request.HasCluster ? request.Cluster : null);
        var task = TaskCommands.Find(current, request.Task, cluster.ClusterName, state.Arns, "task")
            ?? throw EcsException.InvalidParameter("task", $"The referenced task was not found: '{request.Task}' in cluster '{cluster.ClusterName}'.");
        if (request.HasTail && request.Tail < 0)
        {
            throw EcsException.InvalidParameter("tail", "must not be negative.");
        }

        var ask = new LogRequest { TaskArn = task.Task.TaskArn, ContainerName = request.HasContainerName ? request.ContainerName : "", Follow = request.HasFollow && request.Follow, Since = request.Since };
        if (request.HasTail)
        {
            ask.Tail = request.Tail;
        }

        try
        {
            await foreach (var chunk in logs.ReadAsync(task.Task.ContainerInstanceArn, ask, hereOnly: false, context.CancellationToken))
            {
                if (chunk.Error.Length > 0)
                {
                    throw Error(chunk.Error);
                }

                var response = new GetTaskLogsResponse { Events = { chunk.Events } };
                if (chunk.LogGroupName.Length > 0)
                {
                    response.LogGroupName = chunk.LogGroupName;
                }

                if (chunk.LogStreamName.Length > 0)
                {
                    response.LogStreamName = chunk.LogStreamName;
                }

                if (response.Events.Count > 0 || response.HasLogStreamName || response.HasLogGroupName)
                {
                    await responseStream.WriteAsync(response, context.CancellationToken);
                }
            }
        }
        catch (IOException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
        }
    }

    /// <summary>The agent's "Type: message" answer as the same ECS error the rest of the API gives.</summary>
    private static EcsException Error(string error)
    {
        var colon = error.IndexOf(": ", StringComparison.Ordinal);
        var type = colon > 0 ? error[..colon] : EcsErrorType.ServerException;
        var message = colon > 0 ? error[(colon + 2)..] : error;
        var field = message.StartsWith("containerName:", StringComparison.Ordinal) ? "containerName" : null;
        return new EcsException(type, message, field);
    }
}
