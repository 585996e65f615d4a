using System.Threading.Channels;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Agents;

namespace EcsLite.Coordinator.Tests;

public class DesiredSetsTests
{
    private static DesiredTask Task(int i, int bytes) => new()
    {
        TaskArn = $"arn:aws:ecs:local:000000000000:task/default/{i:D32}",
        DesiredStatus = "RUNNING",
        TaskDefinition = new TaskDefinition { Family = "f", ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = new string('i', bytes) } } },
    };

    [Fact]
    public void A_set_is_cut_into_numbered_parts_that_each_fit_and_a_task_too_large_for_any_is_set_apart()
    {
        ulong sequence = 40;
        var tasks = Enumerable.Range(0, 100).Select(i => Task(i, 60_000)).Append(Task(100, 2_000_000)).ToList();
        var (parts, undeliverable) = DesiredSets.Split(tasks, full: true, () => ++sequence);

        Assert.Equal(tasks[100].TaskArn, Assert.Single(undeliverable).TaskArn);
        Assert.InRange(parts.Count, 6, 8);
        Assert.All(parts, p => Assert.True(p.CalculateSize() <= AgentChannelService.DesiredChunkBytes + 64, $"part of {p.CalculateSize()} bytes"));
        Assert.Equal(Enumerable.Range(0, parts.Count).Select(i => (uint)i), parts.Select(p => p.Part));
        Assert.Equal(Enumerable.Repeat(true, parts.Count - 1).Append(false), parts.Select(p => p.More));
        Assert.Equal(Enumerable.Range(41, parts.Count).Select(i => (ulong)i), parts.Select(p => p.Sequence));
        Assert.All(parts, p => Assert.True(p.Full));
        Assert.Equal(tasks.Take(100).Select(t => t.TaskArn), parts.SelectMany(p => p.Tasks).Select(t => t.TaskArn));
    }

    [Fact]
    public void An_empty_full_set_is_still_sent_and_an_empty_change_is_not()
    {
        ulong sequence = 0;
        var (full, _) = DesiredSets.Split([], full: true, () => ++sequence);
        Assert.Equal((true, false, 0), (Assert.Single(full).Full, full[0].More, full[0].Tasks.Count));
        Assert.Empty(DesiredSets.Split([], full: false, () => ++sequence).Parts);
    }

    [Fact]
    public void Partial_sets_queued_one_behind_another_go_as_one_in_order_as_far_as_they_fit_and_never_past_a_full_set()
    {
        var queue = Channel.CreateUnbounded<CoordinatorMessage>();
        CoordinatorMessage Partial(ulong sequence, params DesiredTask[] tasks) => new() { DesiredTasks = new DesiredTaskSet { Sequence = sequence, Tasks = { tasks } } };
        foreach (var message in new[]
        {
            Partial(2, Task(2, 100)), Partial(3, Task(1, 100)), // task 1 again, later: its last word must come last
            Partial(4, Task(3, 600_000)), Partial(5, Task(4, 600_000)), // the second of these no longer fits
            new CoordinatorMessage { Welcome = new Welcome() },
        })
        {
            queue.Writer.TryWrite(message);
        }

        var first = Partial(1, Task(0, 100), Task(1, 100)).DesiredTasks;
        DesiredSets.TakeQueued(first, queue.Reader, chunkBytes: 1_000_000);
        Assert.Equal([0, 1, 2, 1, 3], first.Tasks.Select(t => int.Parse(t.TaskArn[^32..])));
        Assert.Equal(4ul, first.Sequence); // the agent's acknowledgement covers every set taken
        Assert.True(first.CalculateSize() <= 1_000_000);

        Assert.True(queue.Reader.TryRead(out var next));
        Assert.Equal(5ul, next.DesiredTasks.Sequence);
        DesiredSets.TakeQueued(next.DesiredTasks, queue.Reader);
        Assert.Single(next.DesiredTasks.Tasks); // a welcome is no set: it stays where it is
        Assert.True(queue.Reader.TryPeek(out var welcome) && welcome.Welcome is not null);

        // A full set takes nothing: its parts say what the agent keeps, and only they.
        queue.Writer.TryWrite(Partial(7, Task(5, 100)));
        var full = new DesiredTaskSet { Full = true, Sequence = 6 };
        queue.Reader.TryRead(out _);
        DesiredSets.TakeQueued(full, queue.Reader);
        Assert.Empty(full.Tasks);
        Assert.True(queue.Reader.TryPeek(out _));

        // Nor is a full set taken into a partial one.
        var partial = new DesiredTaskSet { Sequence = 8 };
        queue.Reader.TryRead(out _);
        queue.Writer.TryWrite(new CoordinatorMessage { DesiredTasks = new DesiredTaskSet { Full = true, Sequence = 9 } });
        DesiredSets.TakeQueued(partial, queue.Reader);
        Assert.Equal(8ul, partial.Sequence);
    }
}
