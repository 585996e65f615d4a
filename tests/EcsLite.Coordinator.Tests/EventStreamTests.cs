using EcsLite.Api.V1;
using EcsLite.FleetSimulator;
using EcsLite.Testing;
using Grpc.Core;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// WatchEvents against the real coordinator and simulated agents (the agent's own channel code): every
/// task change once, in revision order, through disconnections; a slow reader ended with a revision to
/// resume from; history too old refused with the oldest revision kept.
/// </summary>
public sealed class EventStreamTests
{
    private const string TaskStateChange = "ECS Task State Change";

    [Fact]
    public async Task A_reader_disconnected_and_resumed_during_a_thousand_task_run_sees_every_task_change_once_in_revision_order()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, 20, memoryMiB: 1024, runFor: TimeSpan.FromSeconds(3));
        var events = new Events.EventsClient(coordinator.Channel);
        var tasksOnly = new WatchEventsRequest { DetailTypes = { TaskStateChange } };
        using var stop = new CancellationTokenSource();

        // One reader stays connected; the other hangs up every 700 ms and comes back 200 ms later.
        var whole = new List<WatchEventsResponse>();
        var wholeReading = ReadAsync(events, tasksOnly, whole, stop.Token);
        var resumed = new List<WatchEventsResponse>();
        var resumes = 0;
        var resumedReading = Task.Run(async () =>
        {
            var request = tasksOnly.Clone();
            while (!stop.IsCancellationRequested)
            {
                using var hangUp = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                hangUp.CancelAfter(TimeSpan.FromMilliseconds(700));
                await ReadAsync(events, request, resumed, hangUp.Token);
                request.FromRevision = resumed[^1].Revision + 1; // the last revision it got, even a first message with no events
                resumes++;
                await Task.Delay(200, CancellationToken.None);
            }
        });
        await Eventually.HoldsAsync(() => whole.Count > 0 && Volatile.Read(ref resumes) > 0, TimeSpan.FromSeconds(10), "both readers connected");

        var run = new ScaleRun(coordinator, fleet);
        await run.RegisterAsync(memoryMiB: 16);
        await run.RunTasksAsync(1_000, perCall: 10, callers: 8);
        var arns = run.RepliedAt.Keys.ToList();
        Assert.Equal(1_000, arns.Count);

        // Every task ran 3 s and stopped; both readers have its last version. A stopped task may still be
        // written once more (its agent's last report), so each check describes the tasks afresh; a reader
        // that ended with an error says so at once.
        var described = new Dictionary<string, EcsLite.Api.V1.Task>();
        async Task DescribeAsync()
        {
            foreach (var chunk in arns.Chunk(100))
            {
                foreach (var task in (await coordinator.Ecs.DescribeTasksAsync(new DescribeTasksRequest { Tasks = { chunk } })).Tasks)
                {
                    described[task.TaskArn] = task;
                }
            }
        }

        await Eventually.HoldsAsync(async () =>
        {
            await DescribeAsync();
            return described.Values.All(t => t.LastStatus == "STOPPED");
        }, TimeSpan.FromSeconds(60), "every task STOPPED");
        try
        {
            await Eventually.HoldsAsync(async () =>
            {
                if (wholeReading.IsFaulted || resumedReading.IsFaulted)
                {
                    await Task.WhenAll(wholeReading, resumedReading);
                }

                await DescribeAsync();
                return Caught(whole, described) && Caught(resumed, described);
            }, TimeSpan.FromSeconds(30), "both readers at each task's last version");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; behind: {Behind(whole, described)} (the connected reader), {Behind(resumed, described)} (the resuming one)", e);
        }
        await stop.CancelAsync();
        await Task.WhenAll(wholeReading, resumedReading);

        Assert.True(resumes >= 5, $"{resumes} resumes");
        var seen = Changes(whole);
        Assert.Equal(seen, Changes(resumed));                                    // nothing missed, nothing twice
        Assert.Equal(seen.Count, seen.Select(c => c.Id).Distinct().Count());
        Assert.True(Increasing(whole.Select(r => r.Revision)), "revisions in order");
        Assert.Equal(1_000, seen.Select(c => c.Task).Distinct().Count());
        foreach (var task in seen.GroupBy(c => c.Task))
        {
            var versions = task.Select(c => c.Version).ToList();
            Assert.True(Increasing(versions), $"{task.Key}: versions {string.Join(",", versions)}");
            Assert.Equal(1, versions[0]);                                        // from its creation
            Assert.Equal(described[task.Key].Version, versions[^1]);
            Assert.Equal("STOPPED", task.Last().Status);
        }

        // The same from history: a reader started afterwards from the first revision.
        var history = new List<WatchEventsResponse>();
        using var caughtUp = new CancellationTokenSource();
        var reading = ReadAsync(events, new WatchEventsRequest { DetailTypes = { TaskStateChange }, FromRevision = whole[0].Revision + 1 }, history, caughtUp.Token);
        await Eventually.HoldsAsync(() => history.Count > 0 && history[^1].Revision >= whole[^1].Revision, TimeSpan.FromSeconds(30), "history read");
        await caughtUp.CancelAsync();
        await reading;
        Assert.Equal(seen, Changes(history).Where(c => c.Revision <= whole[^1].Revision).ToList());
    }

    [Fact]
    public async Task A_reader_that_falls_behind_is_ended_with_a_revision_to_resume_from_and_history_too_old_is_refused_with_the_oldest_kept()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync(null, "--EventStreamBuffer=100");
        await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, 4, memoryMiB: 1024);
        var run = new ScaleRun(coordinator, fleet);
        await run.RegisterAsync(memoryMiB: 16);
        var events = new Events.EventsClient(coordinator.Channel);

        // A reader that reads nothing while 200 tasks start (several hundred changes).
        using var stalled = events.WatchEvents(new WatchEventsRequest());
        Assert.True(await stalled.ResponseStream.MoveNext());
        var start = stalled.ResponseStream.Current.Revision;
        await run.RunTasksAsync(200, perCall: 10, callers: 4);
        var got = new List<WatchEventsResponse>();
        var lagged = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await stalled.ResponseStream.MoveNext())
            {
                got.Add(stalled.ResponseStream.Current);
            }
        });
        Assert.Equal(StatusCode.Aborted, lagged.StatusCode);
        var resume = long.Parse(lagged.Trailers.GetValue("ecslite-resume-revision")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"resume with fromRevision {resume}", lagged.Status.Detail, StringComparison.Ordinal);
        Assert.True(got.Count == 0 || got[^1].Revision < resume);

        // What it got and what it reads from there are what a reader of the whole range reads.
        got.AddRange(await ReadUntilQuietAsync(events, new WatchEventsRequest { FromRevision = resume }));
        var all = await ReadUntilQuietAsync(events, new WatchEventsRequest { FromRevision = start + 1 });
        Assert.True(all.Sum(r => r.Events.Count) >= 400, $"{all.Sum(r => r.Events.Count)} events");
        Assert.Equal(Changes(all), Changes(got));
        Assert.Contains(all.SelectMany(r => r.Events), e => e.DetailType == "ECS Container Instance State Change" || e.DetailType == TaskStateChange);

        // Bad requests, in ECS's words.
        var badType = await Assert.ThrowsAsync<RpcException>(() => FirstAsync(events, new WatchEventsRequest { DetailTypes = { "ECS Nonsense" } }));
        Assert.Equal(("InvalidParameterException", "detailTypes"), (badType.Trailers.GetValue("ecs-error-type"), badType.Trailers.GetValue("ecs-field")));
        var negative = await Assert.ThrowsAsync<RpcException>(() => FirstAsync(events, new WatchEventsRequest { FromRevision = -1 }));
        Assert.Equal("fromRevision", negative.Trailers.GetValue("ecs-field"));
        var noCluster = await Assert.ThrowsAsync<RpcException>(() => FirstAsync(events, new WatchEventsRequest { Cluster = "nowhere" }));
        Assert.Equal("ClusterNotFoundException", noCluster.Trailers.GetValue("ecs-error-type"));

        // History is kept to 16 MiB: 1,000 writes of a task carrying 50 large tags (about 19 KB each) cut it.
        var task = run.RepliedAt.Keys.First();
        for (var i = 0; i < 1_000; i++)
        {
            await coordinator.Ecs.TagResourceAsync(new TagResourceRequest
            {
                ResourceArn = task,
                Tags = { Enumerable.Range(0, 50).Select(t => new Tag { Key = $"k{t}-{new string('k', 120)}", Value = $"{i}-{new string('v', 250)}" }) },
            });
        }

        var tooOld = await Assert.ThrowsAsync<RpcException>(() => FirstAsync(events, new WatchEventsRequest { FromRevision = 1 }));
        Assert.Equal(StatusCode.OutOfRange, tooOld.StatusCode);
        var oldest = long.Parse(tooOld.Trailers.GetValue("ecslite-oldest-revision")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(oldest > start, $"oldest kept {oldest}");
        Assert.Contains($"the oldest revision kept is {oldest}", tooOld.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(oldest - 1, (await FirstAsync(events, new WatchEventsRequest { FromRevision = oldest })).Revision);
    }

    private sealed record Change(long Revision, string Id, string Task, long Version, string Status);

    private static List<Change> Changes(List<WatchEventsResponse> responses) =>
    [
        .. responses.SelectMany(r => r.Events.Select(e => new Change(
            r.Revision, e.Id, e.Resources[0],
            e.Detail.Fields.TryGetValue("version", out var v) ? (long)v.NumberValue : 0,
            e.Detail.Fields.TryGetValue("lastStatus", out var s) ? s.StringValue : e.DetailType))),
    ];

    private static bool Increasing(IEnumerable<long> values) => values.Zip(values.Skip(1)).All(p => p.First < p.Second);

    private static bool Caught(List<WatchEventsResponse> responses, Dictionary<string, EcsLite.Api.V1.Task> described) =>
        NotCaught(responses, described).Count == 0;

    /// <summary>How many tasks a reader has not seen at their described version, and one of them.</summary>
    private static string Behind(List<WatchEventsResponse> responses, Dictionary<string, EcsLite.Api.V1.Task> described) =>
        NotCaught(responses, described) is [var first, ..] behind
            ? $"{behind.Count} tasks, e.g. {first.Arn} seen at version {first.Seen}, described at {first.Described}"
            : "none";

    /// <summary>The tasks whose last change a reader has is not the version DescribeTasks shows.</summary>
    private static List<(string Arn, long Seen, long Described)> NotCaught(List<WatchEventsResponse> responses, Dictionary<string, EcsLite.Api.V1.Task> described)
    {
        List<Change> changes;
        lock (responses)
        {
            changes = Changes(responses);
        }

        var last = changes.GroupBy(c => c.Task).ToDictionary(g => g.Key, g => g.Last().Version);
        return [.. described.Values.Select(t => (t.TaskArn, last.GetValueOrDefault(t.TaskArn), t.Version)).Where(t => t.Item2 != t.Version)];
    }

    /// <summary>Reads a call into <paramref name="into"/> until the caller hangs up.</summary>
    private static async Task ReadAsync(Events.EventsClient events, WatchEventsRequest request, List<WatchEventsResponse> into, CancellationToken cancel)
    {
        try
        {
            using var call = events.WatchEvents(request, cancellationToken: cancel);
            while (await call.ResponseStream.MoveNext(cancel))
            {
                lock (into)
                {
                    into.Add(call.ResponseStream.Current);
                }
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Every message of a call until none has come for two seconds (nothing else is changing).</summary>
    internal static async Task<List<WatchEventsResponse>> ReadUntilQuietAsync(Events.EventsClient events, WatchEventsRequest request)
    {
        var read = new List<WatchEventsResponse>();
        using var call = events.WatchEvents(request);
        Assert.True(await call.ResponseStream.MoveNext());
        while (true)
        {
            using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                if (!await call.ResponseStream.MoveNext(quiet.Token))
                {
                    return read;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
                return read;
            }

            read.Add(call.ResponseStream.Current);
        }
    }

    private static async Task<WatchEventsResponse> FirstAsync(Events.EventsClient events, WatchEventsRequest request)
    {
        using var call = events.WatchEvents(request);
        Assert.True(await call.ResponseStream.MoveNext());
        return call.ResponseStream.Current;
    }
}
