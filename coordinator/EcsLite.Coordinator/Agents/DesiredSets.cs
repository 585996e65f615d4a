using System.Threading.Channels;
using EcsLite.Api.V1;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// Cuts what an agent is told into messages that fit its stream, whatever the number and size of the
/// tasks: each part holds as many tasks as fit in <see cref="AgentChannelService.DesiredChunkBytes"/>.
/// A task that alone would not fit cannot be delivered at all, and is returned apart.
/// </summary>
public static class DesiredSets
{
    public static (IReadOnlyList<DesiredTaskSet> Parts, IReadOnlyList<DesiredTask> Undeliverable) Split(
        IEnumerable<DesiredTask> tasks, bool full, Func<ulong> nextSequence, int chunkBytes = AgentChannelService.DesiredChunkBytes)
    {
        var parts = new List<DesiredTaskSet>();
        var undeliverable = new List<DesiredTask>();
        var current = new DesiredTaskSet { Full = full };
        var size = 0;
        foreach (var task in tasks)
        {
            var taskSize = task.CalculateSize() + 8; // and its tag and length prefix
            if (taskSize > chunkBytes)
            {
                undeliverable.Add(task);
                continue;
            }

            if (size + taskSize > chunkBytes)
            {
                parts.Add(current);
                current = new DesiredTaskSet { Full = full };
                size = 0;
            }

            current.Tasks.Add(task);
            size += taskSize;
        }

        // A full set is sent even when empty: it is what stops every task the agent should no longer run.
        if (current.Tasks.Count > 0 || full && parts.Count == 0)
        {
            parts.Add(current);
        }

        for (var i = 0; i < parts.Count; i++)
        {
            parts[i].Sequence = nextSequence();
            parts[i].Part = (uint)i;
            parts[i].More = i < parts.Count - 1;
        }

        return (parts, undeliverable);
    }

    /// <summary>
    /// Adds to the partial set <paramref name="set"/> the partial sets queued right behind it, as far as
    /// they fit in one message, and takes them off the queue: the sets of a burst of commits (a schedule's
    /// slot) reach an agent as one, which it answers with one burst of reports. The tasks stay in order,
    /// and the set takes the last one's sequence, so the agent's acknowledgement covers them all.
    /// </summary>
    public static void TakeQueued(DesiredTaskSet set, ChannelReader<CoordinatorMessage> queued, int chunkBytes = AgentChannelService.DesiredChunkBytes)
    {
        var size = set.CalculateSize();
        while (!set.Full && queued.TryPeek(out var next) && next.DesiredTasks is { Full: false } following
            && following.CalculateSize() is var more && size + more <= chunkBytes)
        {
            queued.TryRead(out _);
            set.Tasks.Add(following.Tasks);
            set.Sequence = following.Sequence;
            size += more;
        }
    }
}
