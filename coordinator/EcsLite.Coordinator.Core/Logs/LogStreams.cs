using System.Security.Cryptography;
using System.Text;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;

namespace EcsLite.Coordinator.Core.Logs;

/// <summary>One container's log stream, as CloudWatch Logs would name it, and where its lines are.</summary>
public sealed record LogStreamRef(string Group, string Stream, string TaskArn, string ContainerName, string ContainerInstanceArn, long CreationTime);

/// <summary>
/// CloudWatch Logs' view of the tasks the coordinator knows: every container logging with awslogs is a
/// stream (<c>PREFIX/CONTAINER/TASK-ID</c>, as the ECS agent names it) in its awslogs-group. Pure.
/// </summary>
public static class LogStreams
{
    public const string ResourceNotFoundException = nameof(ResourceNotFoundException);
    public const string InvalidParameterException = nameof(InvalidParameterException);

    public static IEnumerable<LogStreamRef> All(CoordinatorState state) =>
        state.Tasks.Values.Where(t => t.TaskDefinition is not null).SelectMany(t => t.TaskDefinition.ContainerDefinitions
            .Where(c => c.LogConfiguration is { LogDriver: "awslogs" } l && l.Options.ContainsKey("awslogs-group"))
            .Select(c =>
            {
                var options = c.LogConfiguration.Options;
                var prefix = options.GetValueOrDefault("awslogs-stream-prefix");
                var taskId = t.Task.TaskArn[(t.Task.TaskArn.LastIndexOf('/') + 1)..];
                return new LogStreamRef(options["awslogs-group"], $"{(string.IsNullOrEmpty(prefix) ? "" : prefix + "/")}{c.Name}/{taskId}",
                    t.Task.TaskArn, c.Name, t.Task.ContainerInstanceArn, t.Task.CreatedAt?.ToDateTimeOffset().ToUnixTimeMilliseconds() ?? 0);
            }));

    public static string GroupArn(ArnFormat arns, string group) => $"arn:aws:logs:{arns.Region}:{arns.AccountId}:log-group:{group}";

    public static DescribeLogGroupsResponse DescribeGroups(CoordinatorState state, DescribeLogGroupsRequest request, ArnFormat arns)
    {
        var limit = Limit(request.HasLimit, request.Limit, 50);
        var groups = All(state).GroupBy(s => s.Group, StringComparer.Ordinal)
            .Where(g => !request.HasLogGroupNamePrefix || g.Key.StartsWith(request.LogGroupNamePrefix, StringComparison.Ordinal))
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new LogGroup { LogGroupName = g.Key, CreationTime = g.Min(s => s.CreationTime), Arn = GroupArn(arns, g.Key) + ":*" });
        var (page, next) = Paging.Take(groups, g => g.LogGroupName, true, limit, request.HasNextToken ? request.NextToken : null);
        var response = new DescribeLogGroupsResponse { LogGroups = { page } };
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    public static DescribeLogStreamsResponse DescribeStreams(CoordinatorState state, DescribeLogStreamsRequest request, ArnFormat arns)
    {
        var limit = Limit(request.HasLimit, request.Limit, 50);
        var streams = Group(state, request.LogGroupName)
            .Where(s => !request.HasLogStreamNamePrefix || s.Stream.StartsWith(request.LogStreamNamePrefix, StringComparison.Ordinal));
        var byTime = request.HasOrderBy && request.OrderBy == "LastEventTime";
        if (request.HasOrderBy && request.OrderBy is not ("LogStreamName" or "LastEventTime"))
        {
            throw new EcsException(InvalidParameterException, "orderBy: LogStreamName or LastEventTime.", "orderBy");
        }

        var ordered = byTime ? streams.OrderBy(s => s.CreationTime).ThenBy(s => s.Stream, StringComparer.Ordinal) : streams.OrderBy(s => s.Stream, StringComparer.Ordinal);
        var list = (request.HasDescending && request.Descending ? ordered.Reverse() : ordered).ToList();
        var start = request.HasNextToken && int.TryParse(request.NextToken, out var n) && n >= 0 ? n : 0;
        var response = new DescribeLogStreamsResponse();
        response.LogStreams.Add(list.Skip(start).Take(limit).Select(s => new LogStream
        {
            LogStreamName = s.Stream,
            CreationTime = s.CreationTime,
            Arn = $"{GroupArn(arns, s.Group)}:log-stream:{s.Stream}",
        }));
        if (start + limit < list.Count)
        {
            response.NextToken = (start + limit).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return response;
    }

    /// <summary>A group's streams; a group no task logs to does not exist.</summary>
    public static List<LogStreamRef> Group(CoordinatorState state, string group)
    {
        var streams = All(state).Where(s => s.Group == group).ToList();
        return streams.Count > 0 ? streams : throw new EcsException(ResourceNotFoundException, "The specified log group does not exist.", "logGroupName");
    }

    public static LogStreamRef Stream(CoordinatorState state, string group, string stream) =>
        Group(state, group).FirstOrDefault(s => s.Stream == stream)
            ?? throw new EcsException(ResourceNotFoundException, "The specified log stream does not exist.", "logStreamName");

    public static int Limit(bool has, int value, int max)
    {
        if (has && (value < 1 || value > max))
        {
            throw new EcsException(InvalidParameterException, $"limit: must be between 1 and {max} (got {value}).", "limit");
        }

        return has ? value : max;
    }

    /// <summary>CloudWatch's plain term patterns: every term (a quoted phrase kept whole) must be in the message.</summary>
    public static Func<string, bool> Pattern(string? pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern))
        {
            return _ => true;
        }

        var terms = new List<string>();
        var parts = pattern.Split('"');
        for (var i = 0; i < parts.Length; i++)
        {
            terms.AddRange(i % 2 == 1 ? [parts[i]] : parts[i].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }

        return message => terms.All(t => message.Contains(t, StringComparison.Ordinal));
    }

    /// <summary>An event's id, the same in every answer that has it (aws logs tail leaves out the ones it has seen).</summary>
    public static string EventId(string stream, LogEvent e) =>
        $"{e.Timestamp.Seconds:D12}{e.Timestamp.Nanos:D9}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{stream}\n{e.Message}")))[..16]}";

    public static long Millis(LogEvent e) => (e.Timestamp.Seconds * 1000) + (e.Timestamp.Nanos / 1_000_000);
}
