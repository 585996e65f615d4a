using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Store.V1;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// Tells agents about tasks once a change to them is durable: a partial desired set to each connected
/// instance concerned. An agent that is not connected learns it from the full set on its next hello.
/// </summary>
public sealed class TaskDispatcher(AgentSessions sessions)
{
    public void Send(IEnumerable<StoredTask> tasks)
    {
        foreach (var byInstance in tasks.GroupBy(t => t.Task.ContainerInstanceArn, StringComparer.Ordinal))
        {
            if (sessions.Find(byInstance.Key) is { } session)
            {
                var set = new DesiredTaskSet { Sequence = session.NextSequence(), Full = false };
                set.Tasks.Add(byInstance.Select(TaskCommands.Desired));
                session.Send(new CoordinatorMessage { DesiredTasks = set });
            }
        }
    }
}
