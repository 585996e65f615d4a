using System.Text.RegularExpressions;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Store.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Schedules;

/// <summary>EventBridge Scheduler's error words.</summary>
public static class SchedulerErrors
{
    public const string ValidationException = nameof(ValidationException);
    public const string ConflictException = nameof(ConflictException);
    public const string ResourceNotFoundException = nameof(ResourceNotFoundException);
    public const string ServiceQuotaExceededException = nameof(ServiceQuotaExceededException);

    public static EcsException Validation(string field, string message) => new(ValidationException, $"{field}: {message}", field);
}

/// <summary>
/// CreateSchedule, UpdateSchedule, DeleteSchedule, GetSchedule and ListSchedules: the checks (in
/// EventBridge Scheduler's words, naming the member at fault) and the stored schedule with its next slot.
/// Firing is <see cref="ScheduleRunner"/>'s.
/// </summary>
public static partial class ScheduleCommands
{
    public const string DefaultGroup = "default";
    public const int MaxSchedules = 100_000;
    public const int MaxFiresShown = 10;

    public static Mutation<CreateScheduleResponse> Create(CoordinatorState state, CreateScheduleRequest request, CommandContext context)
    {
        var (definition, expression) = Checked(request, context);
        if (state.Schedules.ContainsKey(request.Name))
        {
            throw new EcsException(SchedulerErrors.ConflictException, $"Schedule {request.Name} already exists.", "Name");
        }

        if (state.Schedules.Count >= MaxSchedules)
        {
            throw new EcsException(SchedulerErrors.ServiceQuotaExceededException, $"At most {MaxSchedules} schedules can exist; delete some first.");
        }

        definition.CreationDate = definition.LastModificationDate = Timestamp.FromDateTimeOffset(context.Now);
        var stored = new StoredSchedule { Schedule = definition };
        Plan(stored, expression, context.Now);
        return new([new SchedulePut(stored)], new CreateScheduleResponse { ScheduleArn = definition.Arn });
    }

    /// <summary>Replaces every field (an optional one left out returns to its default); the last fires stay.</summary>
    public static Mutation<UpdateScheduleResponse> Update(CoordinatorState state, UpdateScheduleRequest request, CommandContext context)
    {
        // The same members under the same numbers as CreateSchedule's: checked as one.
        var (definition, expression) = Checked(CreateScheduleRequest.Parser.ParseFrom(request.ToByteString()), context);
        var existing = Find(state, request.Name);
        definition.CreationDate = existing.Schedule.CreationDate;
        definition.LastModificationDate = Timestamp.FromDateTimeOffset(context.Now);
        definition.LastFires.Add(existing.Schedule.LastFires);
        var stored = new StoredSchedule { Schedule = definition };
        Plan(stored, expression, context.Now);
        return new([new SchedulePut(stored)], new UpdateScheduleResponse { ScheduleArn = definition.Arn });
    }

    public static Mutation<DeleteScheduleResponse> Delete(CoordinatorState state, DeleteScheduleRequest request)
    {
        CheckName(request.Name, "Name");
        CheckGroup(request.HasGroupName ? request.GroupName : null);
        CheckClientToken(request.HasClientToken ? request.ClientToken : null);
        Find(state, request.Name);
        return new([new ScheduleRemoved(request.Name)], new DeleteScheduleResponse());
    }

    public static GetScheduleResponse Get(CoordinatorState state, GetScheduleRequest request)
    {
        CheckName(request.Name, "Name");
        CheckGroup(request.HasGroupName ? request.GroupName : null);
        return Find(state, request.Name).Schedule;
    }

    public static ListSchedulesResponse List(CoordinatorState state, ListSchedulesRequest request)
    {
        CheckGroup(request.HasGroupName ? request.GroupName : null);
        if (request.HasNamePrefix)
        {
            CheckName(request.NamePrefix, "NamePrefix");
        }

        if (request.HasState)
        {
            CheckWord(request.State, "State", ScheduleStates);
        }

        if (request.HasMaxResults && request.MaxResults is < 1 or > 100)
        {
            throw SchedulerErrors.Validation("MaxResults", $"must be 1 to 100 (got {request.MaxResults}).");
        }

        var matching = state.Schedules.Values.Select(s => s.Schedule)
            .Where(s => (!request.HasNamePrefix || s.Name.StartsWith(request.NamePrefix, StringComparison.Ordinal)) && (!request.HasState || s.State == request.State));
        List<GetScheduleResponse> page;
        string? next;
        try
        {
            (page, next) = Paging.Take(matching, s => s.Name, request.HasMaxResults, request.MaxResults, request.HasNextToken ? request.NextToken : null);
        }
        catch (EcsException e) when (e.Field == "nextToken")
        {
            throw SchedulerErrors.Validation("NextToken", "is not a token this API returned.");
        }

        var response = new ListSchedulesResponse
        {
            Schedules =
            {
                page.Select(s => new ScheduleSummary
                {
                    Arn = s.Arn, Name = s.Name, GroupName = s.GroupName, State = s.State, CreationDate = s.CreationDate,
                    LastModificationDate = s.LastModificationDate, Target = new TargetSummary { Arn = s.Target.Arn },
                }),
            },
        };
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    public static string ScheduleArn(ArnFormat arns, string name) => $"arn:aws:scheduler:{arns.Region}:{arns.AccountId}:schedule/{DefaultGroup}/{name}";

    /// <summary>The schedule's time zone (checked when it was stored).</summary>
    public static TimeZoneInfo Zone(GetScheduleResponse schedule) => TimeZoneInfo.FindSystemTimeZoneById(schedule.ScheduleExpressionTimezone);

    /// <summary>The first slot after <paramref name="after"/> within the schedule's start and end dates (a one-time schedule has none).</summary>
    public static DateTimeOffset? NextSlot(GetScheduleResponse schedule, ScheduleExpression expression, DateTimeOffset after)
    {
        if (expression.OneTime)
        {
            return expression.Next(after, Zone(schedule), after);
        }

        // A rate's slots start at its StartDate, or after its creation (not at the moment of it).
        var anchor = schedule.StartDate?.ToDateTimeOffset() ?? schedule.CreationDate.ToDateTimeOffset().AddTicks(1);
        var from = schedule.StartDate is { } start && start.ToDateTimeOffset().AddTicks(-1) > after ? start.ToDateTimeOffset().AddTicks(-1) : after;
        var slot = expression.Next(from, Zone(schedule), anchor);
        return slot is { } s && schedule.EndDate is { } end && s > end.ToDateTimeOffset() ? null : slot;
    }

    /// <summary>Sets a new or replaced schedule's next slot: the first after now (a one-time one's, even if past: the runner fires or skips it).</summary>
    private static void Plan(StoredSchedule stored, ScheduleExpression expression, DateTimeOffset now)
    {
        var schedule = stored.Schedule;
        var next = expression is AtExpression at ? AtExpression.Instant(at.Local, Zone(schedule)) : NextSlot(schedule, expression, now);
        schedule.NextInvocation = next is { } slot ? Timestamp.FromDateTimeOffset(slot) : null;
    }

    private static StoredSchedule Find(CoordinatorState state, string name) =>
        state.Schedules.GetValueOrDefault(name)
        ?? throw new EcsException(SchedulerErrors.ResourceNotFoundException, $"Schedule {CallerText.Quote(name)} does not exist.", "Name");

    private static readonly string[] ScheduleStates = ["ENABLED", "DISABLED"];

    /// <summary>Every member checked; the schedule as GetSchedule will show it (defaults filled in), and its expression.</summary>
    private static (GetScheduleResponse Schedule, ScheduleExpression Expression) Checked(CreateScheduleRequest input, CommandContext context)
    {
        CheckName(input.Name, "Name");
        CheckGroup(input.HasGroupName ? input.GroupName : null);
        CheckClientToken(input.HasClientToken ? input.ClientToken : null);
        var expression = ScheduleExpression.Parse(input.ScheduleExpression);
        var timezone = input.HasScheduleExpressionTimezone ? input.ScheduleExpressionTimezone : "UTC";
        if (timezone.Length is 0 or > 50 || !TimeZoneInfo.TryFindSystemTimeZoneById(timezone, out _))
        {
            throw SchedulerErrors.Validation("ScheduleExpressionTimezone", $"{CallerText.Quote(timezone)} is not a time zone this host knows (an IANA name such as Europe/Berlin, or UTC).");
        }

        CheckDate(input.StartDate, "StartDate");
        CheckDate(input.EndDate, "EndDate");
        if (input.StartDate is not null && input.EndDate is not null && input.EndDate.ToDateTimeOffset() <= input.StartDate.ToDateTimeOffset())
        {
            throw SchedulerErrors.Validation("EndDate", "must be after StartDate.");
        }

        if (!expression.OneTime && input.EndDate is not null && input.EndDate.ToDateTimeOffset() <= context.Now)
        {
            throw SchedulerErrors.Validation("EndDate", "cannot be earlier than the current time.");
        }

        var state = input.HasState ? input.State : "ENABLED";
        CheckWord(state, "State", ScheduleStates);
        var window = input.FlexibleTimeWindow ?? throw SchedulerErrors.Validation("FlexibleTimeWindow", "is required: {\"Mode\": \"OFF\"}, or {\"Mode\": \"FLEXIBLE\", \"MaximumWindowInMinutes\": 1 to 1440}.");
        CheckWord(window.Mode, "FlexibleTimeWindow.Mode", ["OFF", "FLEXIBLE"]);
        if (window.Mode == "FLEXIBLE" && (!window.HasMaximumWindowInMinutes || window.MaximumWindowInMinutes is < 1 or > 1440))
        {
            throw SchedulerErrors.Validation("FlexibleTimeWindow.MaximumWindowInMinutes", "must be 1 to 1440 with Mode FLEXIBLE.");
        }

        if (window.Mode == "OFF" && window.HasMaximumWindowInMinutes)
        {
            throw SchedulerErrors.Validation("FlexibleTimeWindow.MaximumWindowInMinutes", "is only for Mode FLEXIBLE.");
        }

        if (input.Description.Length > 512)
        {
            throw SchedulerErrors.Validation("Description", $"must be at most 512 characters (got {input.Description.Length}).");
        }

        var action = input.HasActionAfterCompletion ? input.ActionAfterCompletion : "NONE";
        CheckWord(action, "ActionAfterCompletion", ["NONE", "DELETE"]);
        if (input.HasKmsKeyArn && !KmsKeyArn().IsMatch(input.KmsKeyArn))
        {
            throw SchedulerErrors.Validation("KmsKeyArn", "must be a KMS key or alias ARN.");
        }

        var target = CheckedTarget(input.Target, context);
        var schedule = new GetScheduleResponse
        {
            Arn = ScheduleArn(context.Arns, input.Name),
            Name = input.Name,
            GroupName = DefaultGroup,
            ScheduleExpression = input.ScheduleExpression,
            ScheduleExpressionTimezone = timezone,
            StartDate = input.StartDate,
            EndDate = input.EndDate,
            State = state,
            FlexibleTimeWindow = window,
            Description = input.Description,
            Target = target,
            ActionAfterCompletion = action,
            KmsKeyArn = input.KmsKeyArn,
        };
        return (schedule, expression);
    }

    private static Target CheckedTarget(Target? target, CommandContext context)
    {
        if (target is null)
        {
            throw SchedulerErrors.Validation("Target", "is required: the cluster's ARN as Arn, and EcsParameters with the TaskDefinitionArn.");
        }

        if (!ArnFormat.TryParse(target.Arn, out var type, out var cluster) || type != "cluster" || target.Arn != context.Arns.Cluster(cluster))
        {
            throw SchedulerErrors.Validation("Target.Arn", $"must be a cluster's ARN ({context.Arns.Cluster("NAME")}); got {CallerText.Quote(target.Arn)}.");
        }

        if (target.EcsParameters is null)
        {
            throw SchedulerErrors.Validation("Target.EcsParameters", "is required: EcsLite runs ECS tasks (EventBridge Scheduler's ECS RunTask target).");
        }

        if (target.HasRoleArn && !RoleArn().IsMatch(target.RoleArn))
        {
            throw SchedulerErrors.Validation("Target.RoleArn", "must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME).");
        }

        if (target.DeadLetterConfig is { } deadLetter && !SqsArn().IsMatch(deadLetter.Arn))
        {
            throw SchedulerErrors.Validation("Target.DeadLetterConfig.Arn", "must be an SQS queue ARN.");
        }

        if (target.RetryPolicy is { } retry)
        {
            if (retry.HasMaximumEventAgeInSeconds && retry.MaximumEventAgeInSeconds is < 60 or > 86400)
            {
                throw SchedulerErrors.Validation("Target.RetryPolicy.MaximumEventAgeInSeconds", $"must be 60 to 86400 (got {retry.MaximumEventAgeInSeconds}).");
            }

            if (retry.HasMaximumRetryAttempts && retry.MaximumRetryAttempts is < 0 or > 185)
            {
                throw SchedulerErrors.Validation("Target.RetryPolicy.MaximumRetryAttempts", $"must be 0 to 185 (got {retry.MaximumRetryAttempts}).");
            }
        }

        // What the target asks of RunTask is checked now, as RunTask would check it, not at its first fire.
        RunTaskRequest run;
        try
        {
            run = ScheduleRunner.RunTaskRequest("check", target, 1);
            RequestRules.Validate(run);
        }
        catch (EcsException e) when (e.ErrorType != SchedulerErrors.ValidationException)
        {
            throw SchedulerErrors.Validation($"Target.EcsParameters{(e.Field is null ? "" : "." + e.Field)}", e.Message);
        }

        var parameters = target.EcsParameters;
        if (parameters.HasTaskCount && parameters.TaskCount is < 1 or > 10)
        {
            throw SchedulerErrors.Validation("Target.EcsParameters.TaskCount", $"must be 1 to 10 (got {parameters.TaskCount}).");
        }

        if (parameters.HasPropagateTags)
        {
            CheckWord(parameters.PropagateTags, "Target.EcsParameters.PropagateTags", ["TASK_DEFINITION"]);
        }

        if (parameters.TaskDefinitionArn.Length is 0 or > 1600)
        {
            throw SchedulerErrors.Validation("Target.EcsParameters.TaskDefinitionArn", "is required (a task definition ARN, or family:revision, or a family).");
        }

        return target;
    }

    private static readonly DateTimeOffset FirstDate = new(CronScheduleExpression.FirstYear, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset EndOfDates = new(CronScheduleExpression.LastYear + 1, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A date a schedule can use: a valid timestamp within the years cron expressions have.</summary>
    private static void CheckDate(Timestamp? date, string field)
    {
        if (date is not null && (date.Nanos is < 0 or > 999_999_999 || date.Seconds < FirstDate.ToUnixTimeSeconds() || date.Seconds >= EndOfDates.ToUnixTimeSeconds()))
        {
            throw SchedulerErrors.Validation(field, $"must be a time from {FirstDate:yyyy-MM-dd} to before {EndOfDates:yyyy-MM-dd} (got seconds {date.Seconds}, nanos {date.Nanos}).");
        }
    }

    private static void CheckName(string name, string field)
    {
        if (name.Length is 0 or > 64 || !NameForm().IsMatch(name))
        {
            throw SchedulerErrors.Validation(field, $"must be 1 to 64 letters, digits, '-', '_' or '.' (got {CallerText.Quote(name)}).");
        }
    }

    private static void CheckGroup(string? group)
    {
        if (group is not null && group != DefaultGroup)
        {
            throw new EcsException(SchedulerErrors.ResourceNotFoundException, $"Schedule group {CallerText.Quote(group)} does not exist (only the default group does).", "GroupName");
        }
    }

    private static void CheckClientToken(string? token)
    {
        if (token is not null && (token.Length is 0 or > 64 || !ClientTokenForm().IsMatch(token)))
        {
            throw SchedulerErrors.Validation("ClientToken", "must be 1 to 64 letters, digits, '-' or '_'.");
        }
    }

    private static void CheckWord(string value, string field, string[] words)
    {
        if (!words.Contains(value, StringComparer.Ordinal))
        {
            throw SchedulerErrors.Validation(field, $"must be one of {string.Join(", ", words)} (got {CallerText.Quote(value)}).");
        }
    }

    [GeneratedRegex("^[0-9a-zA-Z-_.]+$")]
    private static partial Regex NameForm();

    [GeneratedRegex("^[a-zA-Z0-9-_]+$")]
    private static partial Regex ClientTokenForm();

    [GeneratedRegex(@"^arn:aws(-[a-z]+)?:iam::\d{12}:role\/[\w+=,.@\/-]+$")]
    private static partial Regex RoleArn();

    [GeneratedRegex(@"^arn:aws(-[a-z]+)?:sqs:[a-z0-9\-]+:\d{12}:[a-zA-Z0-9\-_]+$")]
    private static partial Regex SqsArn();

    [GeneratedRegex(@"^arn:aws(-[a-z]+)?:kms:[a-z0-9\-]+:\d{12}:(key|alias)\/[0-9a-zA-Z-_]*$")]
    private static partial Regex KmsKeyArn();
}
