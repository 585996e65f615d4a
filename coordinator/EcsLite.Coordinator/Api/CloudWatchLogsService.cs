using EcsLite.Api.V1;
using EcsLite.Coordinator.Agents;
using EcsLite.Coordinator.Core.Logs;
using EcsLite.Coordinator.State;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace EcsLite.Coordinator.Api;

/// <summary>
/// CloudWatch Logs' reading calls over the logs the agents keep: the streams come from the tasks the
/// coordinator knows; their lines are asked of each stream's agent over its channel (as GetTaskLogs
/// does), within a bound, so a slow or absent agent costs a call at most that long.
/// </summary>
public sealed class CloudWatchLogsService(ClusterStateMachine state, AgentLogs logs) : CloudWatchLogs.CloudWatchLogsBase
{
    private static readonly TimeSpan AgentAnswer = TimeSpan.FromSeconds(10);
    private const int MaxEvents = 10_000;

    public override Task<DescribeLogGroupsResponse> DescribeLogGroups(DescribeLogGroupsRequest request, ServerCallContext context) =>
        Task.FromResult(LogStreams.DescribeGroups(state.Current, request, state.Arns));

    public override Task<DescribeLogStreamsResponse> DescribeLogStreams(DescribeLogStreamsRequest request, ServerCallContext context) =>
        Task.FromResult(LogStreams.DescribeStreams(state.Current, request, state.Arns));

    public override async Task<GetLogEventsResponse> GetLogEvents(GetLogEventsRequest request, ServerCallContext context)
    {
        var stream = LogStreams.Stream(state.Current, request.LogGroupName, request.LogStreamName);
        var limit = LogStreams.Limit(request.HasLimit, request.Limit, MaxEvents);
        var fromToken = request.HasNextToken && request.NextToken.StartsWith("f/", StringComparison.Ordinal) && long.TryParse(request.NextToken[2..], out var t) ? t : (long?)null;
        var start = fromToken ?? (request.HasStartTime ? request.StartTime : (long?)null);
        var (events, _) = await ReadAsync(stream, start, request.HasEndTime ? request.EndTime : null, context.CancellationToken);
        var chosen = request.HasStartFromHead && request.StartFromHead || fromToken is not null ? events.Take(limit).ToList() : events.TakeLast(limit).ToList();
        var response = new GetLogEventsResponse
        {
            Events = { chosen.Select(e => new OutputLogEvent { Timestamp = LogStreams.Millis(e), Message = e.Message, IngestionTime = LogStreams.Millis(e) }) },
            // Reading on from just after the last line; with no new line, the same token (how clients know they are at the end).
            NextForwardToken = chosen.Count > 0 ? $"f/{LogStreams.Millis(chosen[^1]) + 1}" : request.HasNextToken ? request.NextToken : $"f/{start ?? 0}",
            NextBackwardToken = $"b/{(chosen.Count > 0 ? LogStreams.Millis(chosen[0]) : start ?? 0)}",
        };
        return response;
    }

    public override async Task<FilterLogEventsResponse> FilterLogEvents(FilterLogEventsRequest request, ServerCallContext context)
    {
        var streams = LogStreams.Group(state.Current, request.LogGroupName)
            .Where(s => request.LogStreamNames.Count == 0 || request.LogStreamNames.Contains(s.Stream))
            .Where(s => !request.HasLogStreamNamePrefix || s.Stream.StartsWith(request.LogStreamNamePrefix, StringComparison.Ordinal))
            .ToList();
        var limit = LogStreams.Limit(request.HasLimit, request.Limit, MaxEvents);
        var matches = LogStreams.Pattern(request.HasFilterPattern ? request.FilterPattern : null);
        var after = request.HasNextToken && long.TryParse(request.NextToken, out var token) ? token : (long?)null;
        var start = after ?? (request.HasStartTime ? request.StartTime : null);
        var read = await Task.WhenAll(streams.Select(s => ReadAsync(s, start, request.HasEndTime ? request.EndTime : null, context.CancellationToken)));
        var events = streams.Zip(read)
            .SelectMany(p => p.Second.Events.Where(e => matches(e.Message)).Select(e => (Stream: p.First.Stream, Event: e)))
            .OrderBy(p => p.Event.Timestamp)
            .ToList();
        var response = new FilterLogEventsResponse
        {
            Events =
            {
                events.Take(limit).Select(p => new FilteredLogEvent
                {
                    LogStreamName = p.Stream,
                    Timestamp = LogStreams.Millis(p.Event),
                    Message = p.Event.Message,
                    IngestionTime = LogStreams.Millis(p.Event),
                    EventId = LogStreams.EventId(p.Stream, p.Event),
                }),
            },
            SearchedLogStreams = { streams.Zip(read).Select(p => new SearchedLogStream { LogStreamName = p.First.Stream, SearchedCompletely = p.Second.Complete }) },
        };
        if (events.Count > limit)
        {
            response.NextToken = LogStreams.Millis(events[limit - 1].Event).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return response;
    }

    /// <summary>A stream's lines from its agent, oldest first, within [start, end] (epoch ms); not complete when the agent could not answer.</summary>
    private async Task<(List<LogEvent> Events, bool Complete)> ReadAsync(LogStreamRef stream, long? start, long? end, CancellationToken cancellationToken)
    {
        var ask = new LogRequest { TaskArn = stream.TaskArn, ContainerName = stream.ContainerName };
        if (start is { } s)
        {
            ask.Since = Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(s));
        }

        var events = new List<LogEvent>();
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(AgentAnswer);
        try
        {
            await foreach (var chunk in logs.ReadAsync(stream.ContainerInstanceArn, ask, hereOnly: false, bounded.Token))
            {
                if (chunk.Error.Length > 0)
                {
                    return (events, false);
                }

                events.AddRange(chunk.Events.Where(e => (start is null || LogStreams.Millis(e) >= start) && (end is null || LogStreams.Millis(e) <= end)));
                if (events.Count > MaxEvents * 2)
                {
                    events.RemoveRange(0, events.Count - MaxEvents);
                }
            }

            return (events, true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (events, false);
        }
        catch (IOException)
        {
            return (events, false);
        }
    }
}
