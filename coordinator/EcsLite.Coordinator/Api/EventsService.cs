using EcsLite.Api.V1;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.Events;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Store;
using Grpc.Core;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// WatchEvents: the cluster store's watch, each revision's writes made into ECS's EventBridge events
/// (<see cref="StateKeys.Events"/>). Made from the store rather than from memory so that a reader
/// resuming from a revision gets exactly what it missed, history first; the store's watch buffer
/// bounds what a slow reader can hold (it is ended with the revision to resume from).
/// </summary>
public sealed class EventsService(IKeyValueStore store, ClusterStateMachine state) : Events.EventsBase
{
    // A key no record has: a range over it reads only the store's revision.
    private const string NoKeys = "/\uFFFF";

    public override async Task WatchEvents(WatchEventsRequest request, IServerStreamWriter<WatchEventsResponse> responseStream, ServerCallContext context)
    {
        var cluster = request.HasCluster ? ClusterCommands.Active(state.Current, request.Cluster).ClusterName : null;
        if (request.DetailTypes.Count > EcsEvents.DetailTypes.Count)
        {
            throw EcsException.InvalidParameter("detailTypes", $"at most {EcsEvents.DetailTypes.Count} detail types.");
        }

        var unknown = request.DetailTypes.FirstOrDefault(t => !EcsEvents.DetailTypes.Contains(t));
        if (unknown is not null)
        {
            throw EcsException.InvalidParameter("detailTypes", $"{CallerText.Quote(unknown)} is not one of {string.Join(", ", EcsEvents.DetailTypes.Select(t => $"'{t}'"))}.");
        }

        if (request.FromRevision < 0)
        {
            throw EcsException.InvalidParameter("fromRevision", "must not be negative.");
        }

        var types = request.DetailTypes.Count == 0 ? EcsEvents.DetailTypes : request.DetailTypes.ToHashSet(StringComparer.Ordinal);
        var cancel = context.CancellationToken;
        var from = request.FromRevision > 0 ? request.FromRevision : (await store.RangeAsync(NoKeys, cancel)).Revision + 1;
        await using var changes = store.WatchAsync(StateKeys.Root, from, cancel).GetAsyncEnumerator(cancel);
        try
        {
            // The first step registers the watch and reads the history: a start older than the history
            // is refused before anything is sent.
            var next = changes.MoveNextAsync();
            if (next.IsFaulted)
            {
                await next;
            }

            await responseStream.WriteAsync(new WatchEventsResponse { Revision = from - 1 }, cancel);
            while (await next)
            {
                var revision = changes.Current;
                next = changes.MoveNextAsync();
                if (revision.Revision < from)
                {
                    continue; // a fromRevision ahead of the store: its live changes start there
                }

                var response = new WatchEventsResponse { Revision = revision.Revision };
                foreach (var change in revision.Events)
                {
                    response.Events.Add(StateKeys.Events(change, cluster, state.Arns).Where(e => types.Contains(e.DetailType)));
                }

                if (response.Events.Count > 0)
                {
                    await responseStream.WriteAsync(response, cancel);
                }
            }
        }
        catch (CompactedException e)
        {
            throw new RpcException(
                new Status(StatusCode.OutOfRange, $"{EcsErrorType.InvalidParameterException}: fromRevision {e.RequestedRevision} is older than the history kept; the oldest revision kept is {e.CompactRevision}. Read the current state (DescribeTasks, ...) and watch from there."),
                new Metadata { { "ecs-error-type", EcsErrorType.InvalidParameterException }, { "ecs-field", "fromRevision" }, { "ecslite-oldest-revision", $"{e.CompactRevision}" } });
        }
        catch (WatchLaggedException e)
        {
            throw new RpcException(
                new Status(StatusCode.Aborted, $"the reader fell behind the cluster's changes; resume with fromRevision {e.ResumeRevision}"),
                new Metadata { { "ecslite-resume-revision", $"{e.ResumeRevision}" } });
        }
    }
}
