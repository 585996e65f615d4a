using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Secrets;
using EcsLite.Coordinator.Core.Secrets;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// Tells agents about tasks once a change to them is durable (every command's, through the state
/// machine's <see cref="ClusterStateMachine.TasksForAgents"/>): a partial desired set (in as many parts
/// as it takes) to each connected instance concerned, as the newest published state has the tasks. An
/// agent that is not connected learns it from the full set on its next hello. A task too large to be
/// sent at all is stopped, with the reason. A task to run goes with the values of its secrets, resolved
/// for this message alone (or the reason they cannot be), so they reach only the agent that runs it.
/// A coordinator that follows the leader of an etcd store tells its own agents, from the changes its
/// watch of the store applies.
/// </summary>
public sealed class TaskDispatcher
{
    private readonly AgentSessions sessions;
    private readonly ClusterStateMachine state;
    private readonly SecretStore secrets;
    private readonly CoordinatorRole role;

    public TaskDispatcher(AgentSessions sessions, ClusterStateMachine state, SecretStore secrets, CoordinatorRole role)
    {
        this.sessions = sessions;
        this.state = state;
        this.secrets = secrets;
        this.role = role;
        state.TasksForAgents = Send;
    }

    private DesiredTask WithSecrets(DesiredTask task)
    {
        if (task.DesiredStatus != "RUNNING" || task.TaskDefinition is null || !SecretReferences.Of(task.TaskDefinition).Any())
        {
            return task;
        }

        var (values, error) = SecretReferences.Resolve(task.TaskDefinition, secrets.State, secrets.Arns, secrets.Open);
        // A copy that shares the definition (never changed in the state): the values are in this message only.
        return new DesiredTask { TaskArn = task.TaskArn, DesiredStatus = task.DesiredStatus, TaskDefinition = task.TaskDefinition, Secrets = { values }, SecretsError = error ?? "" };
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

    /// <summary>Sends every agent connected here its full desired set, as the published state has it.</summary>
    public void SendFullSets()
    {
        var current = state.Current;
        foreach (var session in sessions.All)
        {
            Send(session, TaskCommands.DesiredFor(current, session.ContainerInstanceArn), full: true);
        }
    }

    /// <summary>Sends a desired set to one agent, in parts that fit its stream.</summary>
    public void Send(AgentSession session, IEnumerable<DesiredTask> tasks, bool full)
    {
        var (parts, undeliverable) = DesiredSets.Split(tasks.Select(WithSecrets), full, session.NextSequence);
        foreach (var part in parts)
        {
            session.Send(new CoordinatorMessage { DesiredTasks = part });
        }

        // Only the leader writes: on a follower such a task stays PENDING (only a definition stored before
        // sizes were limited can make one).
        if (undeliverable.Count > 0 && role.IsLeader)
        {
            _ = state.ApplyAsync((s, c) => TaskCommands.Undeliverable(s, undeliverable.Select(t => t.TaskArn), AgentChannelService.DesiredChunkBytes, c), CancellationToken.None);
        }
    }
}
