using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// Tells agents about tasks once a change to them is durable (every command's, through the state
/// machine's <see cref="ClusterStateMachine.TasksForAgents"/>): a partial desired set (in as many parts
/// as it takes) to each connected instance concerned, as the newest published state has the tasks. An
/// agent that is not connected learns it from the full set on its next hello. A task too large to be
/// sent at all is stopped, with the reason.
/// </summary>
public sealed class TaskDispatcher
{
    private readonly AgentSessions sessions;
    private readonly ClusterStateMachine state;

    public TaskDispatcher(AgentSessions sessions, ClusterStateMachine state)
    {
        this.sessions = sessions;
        this.state = state;
        state.TasksForAgents = Send;
    }

    private void Send(IReadOnlyList<string> taskArns)
    {
        var current = state.Current;
        var tasks = taskArns.Select(current.Tasks.GetValueOrDefault).OfType<StoredTask>();
        foreach (var byInstance in tasks.GroupBy(t => t.Task.ContainerInstanceArn, StringComparer.Ordinal))
        {
            if (sessions.Find(byInstance.Key) is { } session)
            {
                Send(session, byInstance.Select(TaskCommands.Desired), full: false);
            }
        }
    }

    /// <summary>Sends a desired set to one agent, in parts that fit its stream.</summary>
    public void Send(AgentSession session, IEnumerable<DesiredTask> tasks, bool full)
    {
        var (parts, undeliverable) = DesiredSets.Split(tasks, full, session.NextSequence);
        foreach (var part in parts)
        {
            session.Send(new CoordinatorMessage { DesiredTasks = part });
        }

        if (undeliverable.Count > 0)
        {
            _ = state.ApplyAsync((s, c) => TaskCommands.Undeliverable(s, undeliverable.Select(t => t.TaskArn), AgentChannelService.DesiredChunkBytes, c), CancellationToken.None);
        }
    }
}
