using EcsLite.Api.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsLite.Examples.CustomScheduler;

/// <summary>What to keep running, and where.</summary>
/// <param name="Cluster">The cluster's name or ARN.</param>
/// <param name="TaskDefinition">family, family:revision or ARN.</param>
/// <param name="Filter">A cluster query expression choosing the instances, e.g. <c>attribute:role == edge</c>.</param>
/// <param name="StartedBy">Marks this scheduler's tasks, so it finds them again (and only them).</param>
public sealed record SchedulerSettings(string Cluster, string TaskDefinition, string Filter, string StartedBy = "custom-scheduler");

/// <summary>
/// A custom scheduler as ECS's work: it watches the cluster's events and places tasks itself with
/// StartTask. This one keeps one task on every ACTIVE container instance the filter matches, and
/// stops its task on an instance that no longer matches.
///
/// Events only say when to look: each pass reads the whole picture (ListContainerInstances with the
/// filter, ListTasks by startedBy) and mends the difference, so a missed or repeated event, a restart
/// of this program or of the coordinator, costs nothing but a pass.
/// </summary>
public sealed class PerInstanceScheduler(GrpcChannel channel, SchedulerSettings settings, TextWriter log)
{
    private readonly Ecs.EcsClient _ecs = new(channel);
    private readonly Events.EventsClient _events = new(channel);

    /// <summary>Passes made so far (each one after the watch was (re)established or a relevant change).</summary>
    public int Passes { get; private set; }

    public async Task RunAsync(CancellationToken cancel)
    {
        long? resumeFrom = null;
        while (!cancel.IsCancellationRequested)
        {
            try
            {
                var request = new WatchEventsRequest
                {
                    Cluster = settings.Cluster,
                    DetailTypes = { "ECS Container Instance State Change", "ECS Task State Change" },
                };
                if (resumeFrom is { } revision)
                {
                    request.FromRevision = revision;
                }

                using var call = _events.WatchEvents(request, cancellationToken: cancel);
                await foreach (var message in call.ResponseStream.ReadAllAsync(cancel))
                {
                    resumeFrom = message.Revision + 1;

                    // The first message (no events) says the watch is on: look now, and nothing after it is missed.
                    if (message.Events.Count == 0 || message.Events.Any(Matters))
                    {
                        await PassAsync(cancel);
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange)
            {
                resumeFrom = null; // away too long for the history kept: watch from now (the first pass reads everything)
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Aborted or StatusCode.Unavailable or StatusCode.Internal)
            {
                await log.WriteLineAsync($"event stream ended ({e.Status.Detail}); resuming");
                await Task.Delay(TimeSpan.FromSeconds(1), cancel);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
            }
            catch (RpcException) when (cancel.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>Instances changing, and this scheduler's tasks stopping, are what can change the picture.</summary>
    private bool Matters(EcsEvent e) =>
        e.DetailType == "ECS Container Instance State Change"
        || (e.Detail.Fields.TryGetValue("startedBy", out var by) && by.StringValue == settings.StartedBy
            && e.Detail.Fields["lastStatus"].StringValue == "STOPPED");

    /// <summary>One task on each matching instance that has none; none on the others.</summary>
    public async Task PassAsync(CancellationToken cancel)
    {
        Passes++;
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        var list = new ListContainerInstancesRequest { Cluster = settings.Cluster, Filter = settings.Filter, Status = "ACTIVE" };
        do
        {
            var page = await _ecs.ListContainerInstancesAsync(list, cancellationToken: cancel);
            wanted.UnionWith(page.ContainerInstanceArns);
            list.NextToken = page.NextToken;
        }
        while (list.NextToken.Length > 0);

        var mine = new List<EcsLite.Api.V1.Task>();
        var tasks = new ListTasksRequest { Cluster = settings.Cluster, StartedBy = settings.StartedBy, DesiredStatus = "RUNNING" };
        do
        {
            var page = await _ecs.ListTasksAsync(tasks, cancellationToken: cancel);
            if (page.TaskArns.Count > 0)
            {
                var described = await _ecs.DescribeTasksAsync(new DescribeTasksRequest { Cluster = settings.Cluster, Tasks = { page.TaskArns } }, cancellationToken: cancel);
                mine.AddRange(described.Tasks);
            }

            tasks.NextToken = page.NextToken;
        }
        while (tasks.NextToken.Length > 0);

        foreach (var task in mine.Where(t => !wanted.Contains(t.ContainerInstanceArn)))
        {
            await _ecs.StopTaskAsync(new StopTaskRequest { Cluster = settings.Cluster, Task = task.TaskArn, Reason = "custom-scheduler: the instance no longer matches its filter" }, cancellationToken: cancel);
            await log.WriteLineAsync($"stopped {task.TaskArn}: {task.ContainerInstanceArn} no longer matches");
        }

        var covered = mine.Select(t => t.ContainerInstanceArn).ToHashSet(StringComparer.Ordinal);
        var missing = wanted.Except(covered).ToList();
        // StartTask takes up to 10 instances, one task on each.
        foreach (var batch in missing.Chunk(10))
        {
            var started = await _ecs.StartTaskAsync(new StartTaskRequest
            {
                Cluster = settings.Cluster, TaskDefinition = settings.TaskDefinition, ContainerInstances = { batch }, StartedBy = settings.StartedBy,
            }, cancellationToken: cancel);
            foreach (var task in started.Tasks)
            {
                await log.WriteLineAsync($"started {task.TaskArn} on {task.ContainerInstanceArn}");
            }

            foreach (var failure in started.Failures)
            {
                await log.WriteLineAsync($"could not start on {failure.Arn}: {failure.Reason} {failure.Detail}");
            }
        }
    }
}
