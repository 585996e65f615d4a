using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// Applies agents' task reports many agents to a command (a group commit): while one command's write
/// commits, the reports that arrive from every agent wait, and then go as the next command. When a
/// thousand hosts are handed tasks at once (a schedule's slot, a service scaled out) their reports cost
/// a few commands and store writes instead of a thousand, and leave the command thread to the work that
/// placed the tasks. With little going on a report still goes at once, as its own command.
/// </summary>
public sealed class AgentReports(ClusterStateMachine state)
{
    /// <summary>At most about this many reports go into one command (an agent's batch is never split).</summary>
    public const int MaxPerCommand = 2000;

    private readonly Lock _gate = new();
    private List<Waiting> _waiting = [];
    private bool _applying;

    /// <summary>Applies one agent's reports, in order, with those of other agents; done once they are durable.</summary>
    public Task ApplyAsync(string containerInstanceArn, IReadOnlyList<TaskStateChange> reports)
    {
        var waiting = new Waiting(containerInstanceArn, [.. reports], new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_gate)
        {
            _waiting.Add(waiting);
            if (_applying)
            {
                return waiting.Done.Task;
            }

            _applying = true;
        }

        _ = Task.Run(ApplyWaitingAsync);
        return waiting.Done.Task;
    }

    private async Task ApplyWaitingAsync()
    {
        while (true)
        {
            List<Waiting> batch;
            lock (_gate)
            {
                if (_waiting.Count == 0)
                {
                    _applying = false;
                    return;
                }

                batch = Take();
            }

            try
            {
                await state.ApplyAsync((s, c) => TaskCommands.ReportMany(s, batch.Select(w => (w.ContainerInstanceArn, (IEnumerable<TaskStateChange>)w.Reports)), c), CancellationToken.None);
                batch.ForEach(w => w.Done.SetResult());
            }
            catch (Exception e)
            {
                batch.ForEach(w => w.Done.SetException(e));
            }
        }
    }

    /// <summary>The oldest waiting batches, up to about <see cref="MaxPerCommand"/> reports (at least one batch).</summary>
    private List<Waiting> Take()
    {
        var count = 0;
        var taken = 0;
        while (taken < _waiting.Count && (taken == 0 || count + _waiting[taken].Reports.Length <= MaxPerCommand))
        {
            count += _waiting[taken++].Reports.Length;
        }

        var batch = _waiting.GetRange(0, taken);
        _waiting.RemoveRange(0, taken);
        return batch;
    }

    private sealed record Waiting(string ContainerInstanceArn, TaskStateChange[] Reports, TaskCompletionSource Done);
}
