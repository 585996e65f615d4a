using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Secrets;
using EcsLite.Coordinator.Core.Secrets;
using EcsLite.Store.V1;
using EcsLite.Coordinator.Core;
using Grpc.Core;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// Tells agents about tasks once a change to them is durable (every command's, through the state
/// machine's <see cref="ClusterStateMachine.TasksForAgents"/>): a partial desired set (in as many parts
/// as it takes) to each connected instance concerned, as the newest published state has the tasks. An
/// agent that is not connected learns it from the full set on its next hello. A task too large to be
/// sent at all is stopped, with the reason, by the leader. A task to run goes with the values of its secrets,
/// resolved for this message alone (or the reason they cannot be), so they reach only the agent that runs it.
/// A coordinator that follows the leader of an etcd store tells its own agents, from the changes its
/// watch of the store applies (and asks the leader to stop what it cannot send).
/// </summary>
public sealed partial class TaskDispatcher
{
    private readonly AgentSessions sessions;
    private readonly ClusterStateMachine state;
    private readonly SecretStore secrets;
    private readonly CoordinatorRole role;
    private readonly AgentLedger ledger;
    private readonly ILogger<TaskDispatcher> logger;

    public TaskDispatcher(AgentSessions sessions, ClusterStateMachine state, SecretStore secrets, CoordinatorRole role, AgentLedger ledger, ILogger<TaskDispatcher> logger)
    {
        this.sessions = sessions;
        this.state = state;
        this.secrets = secrets;
        this.role = role;
        this.ledger = ledger;
        this.logger = logger;
        state.TasksForAgents = taskArns => SendChanged(taskArns, secretsRead: false);
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

    private void SendChanged(IReadOnlyList<string> taskArns, bool secretsRead)
    {
        var current = state.Current;
        var tasks = taskArns.Select(current.Tasks.GetValueOrDefault).OfType<StoredTask>();
        var waiting = new List<string>();
        foreach (var byInstance in tasks.GroupBy(t => t.Task.ContainerInstanceArn, StringComparer.Ordinal))
        {
            if (sessions.Find(byInstance.Key) is { } session)
            {
                var desired = byInstance.Select(TaskCommands.Desired).Select(WithSecrets).ToList();
                if (!secretsRead && !role.IsLeader)
                {
                    // A follower reads the secrets again when they change, apart from its watch of the state: one made
                    // just before its task may not be here yet. Such a task waits for one fresh read of them.
                    waiting.AddRange(desired.Where(t => t.SecretsError.Length > 0).Select(t => t.TaskArn));
                    desired.RemoveAll(t => t.SecretsError.Length > 0);
                }

                SendResolved(session, desired, full: false);
            }
        }

        if (waiting.Count > 0)
        {
            _ = ReadSecretsThenSendAsync(waiting);
        }
    }

    private async Task ReadSecretsThenSendAsync(IReadOnlyList<string> taskArns)
    {
        try
        {
            await secrets.LoadAsync(CancellationToken.None, following: true);
        }
        catch (Exception e) when (e is RpcException or IOException)
        {
            LogSecretsNotRead(logger, taskArns.Count, e.Message); // sent as they are: the agent reports why they cannot start
        }

        SendChanged(taskArns, secretsRead: true);
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
    public void Send(AgentSession session, IEnumerable<DesiredTask> tasks, bool full) => SendResolved(session, tasks.Select(WithSecrets), full);

    private void SendResolved(AgentSession session, IEnumerable<DesiredTask> tasks, bool full)
    {
        var (parts, undeliverable) = DesiredSets.Split(tasks, full, session.NextSequence);
        foreach (var part in parts)
        {
            session.Send(new CoordinatorMessage { DesiredTasks = part });
        }

        if (undeliverable.Count > 0)
        {
            _ = StopUndeliverableAsync([.. undeliverable.Select(t => t.TaskArn)]);
        }
    }

    // By the leader (a follower asks it). Not stopped now (no leader within an election's time), the tasks are
    // tried again, and found too large again, when their agent next connects.
    private async Task StopUndeliverableAsync(IReadOnlyList<string> taskArns)
    {
        try
        {
            await ledger.UndeliverableAsync(taskArns, CancellationToken.None);
        }
        catch (Exception e) when (e is RpcException or EcsException or OperationCanceledException)
        {
            LogNotStopped(logger, taskArns.Count, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The secrets of {Count} tasks could not be read again from the store ({Reason}): the tasks are sent without them")]
    private static partial void LogSecretsNotRead(ILogger logger, int count, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} tasks too large to send to their agent could not be stopped yet: {Reason}")]
    private static partial void LogNotStopped(ILogger logger, int count, string reason);
}
