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
}
