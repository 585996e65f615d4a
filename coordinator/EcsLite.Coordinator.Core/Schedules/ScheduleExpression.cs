using System.Globalization;
using System.Text.RegularExpressions;
using Cronos;

namespace EcsLite.Coordinator.Core.Schedules;

/// <summary>
/// EventBridge Scheduler's schedule expressions: <c>at(yyyy-mm-ddThh:mm:ss)</c>, <c>rate(N unit)</c> and
/// <c>cron(minutes hours day-of-month month day-of-week year)</c>. Each field of a cron expression is
/// checked here, so an error names the field and its position in the expression (1-based); the next-slot
/// arithmetic is Cronos's, on a translation of EventBridge's form (days of the week 1-7 from Sunday
/// become Cronos's 0-6; the year field, which Cronos lacks, is applied here).
/// </summary>
public abstract partial record ScheduleExpression(string Text)
{
    public const int MaxLength = 256;
    public const string Field = "ScheduleExpression";

    /// <summary>The first slot strictly after <paramref name="after"/>; null if there is none.</summary>
    /// <param name="zone">The schedule's time zone (cron and at expressions are read in it).</param>
    /// <param name="anchor">Where a rate's slots start (its StartDate, else its creation).</param>
    public abstract DateTimeOffset? Next(DateTimeOffset after, TimeZoneInfo zone, DateTimeOffset anchor);

    public bool OneTime => this is AtExpression;

    public static ScheduleExpression Parse(string text)
    {
        if (text.Length is 0 or > MaxLength)
        {
            throw Invalid($"must be 1 to {MaxLength} characters (got {text.Length}).");
        }

        if (text.StartsWith("at(", StringComparison.Ordinal))
        {
            return AtExpression.Parse(text);
        }

        if (text.StartsWith("rate(", StringComparison.Ordinal))
        {
            return RateExpression.Parse(text);
        }

        if (text.StartsWith("cron(", StringComparison.Ordinal))
        {
            return CronScheduleExpression.Parse(text);
        }

        throw Invalid($"{Quote(text)} is not at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(minutes hours day-of-month month day-of-week year).");
    }

    internal static EcsException Invalid(string message) => SchedulerErrors.Validation(Field, message);

    internal static string Quote(string text) => $"'{Validation.CallerText.Quote(text)}'";
}

/// <summary>A one-time schedule: the local time in the schedule's zone.</summary>
public sealed record AtExpression(string Text, DateTime Local) : ScheduleExpression(Text)
{
    internal static new AtExpression Parse(string text)
    {
        if (!text.EndsWith(')') || !DateTime.TryParseExact(text[3..^1], "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
        {
            throw Invalid($"{Quote(text)}: a one-time schedule is at(yyyy-mm-ddThh:mm:ss), e.g. at(2026-12-24T18:00:00).");
        }

        return new AtExpression(text, local);
    }

    public override DateTimeOffset? Next(DateTimeOffset after, TimeZoneInfo zone, DateTimeOffset anchor)
    {
        var slot = Instant(Local, zone);
        return slot > after ? slot : null;
    }

    /// <summary>
    /// A local time as an instant: a time that a DST change skips is taken at the end of the gap (as
    /// Cronos does), a time that happens twice at its first occurrence.
    /// </summary>
    public static DateTimeOffset Instant(DateTime local, TimeZoneInfo zone)
    {
        var shifted = local;
        for (var i = 0; i < 24 * 60 && zone.IsInvalidTime(shifted); i++)
        {
            shifted = shifted.AddMinutes(1);
        }

        var offset = zone.IsAmbiguousTime(shifted) ? zone.GetAmbiguousTimeOffsets(shifted).Max() : zone.GetUtcOffset(shifted);
        return new DateTimeOffset(DateTime.SpecifyKind(shifted, DateTimeKind.Unspecified), offset);
    }
}

/// <summary>
/// A recurring schedule every <see cref="Period"/>: its slots start at the first whole unit (minute,
/// hour or day, in UTC) at or after its anchor (its StartDate, else just after its creation), and follow
/// each other exactly one period apart.
/// </summary>
public sealed partial record RateExpression(string Text, int Value, string Unit, TimeSpan Period) : ScheduleExpression(Text)
{
    private static readonly TimeSpan Longest = TimeSpan.FromDays(3650);

    internal static new RateExpression Parse(string text)
    {
        var match = RateForm().Match(text);
        if (!match.Success)
        {
            throw Invalid($"{Quote(text)}: a rate is rate(value unit), value a positive whole number, unit minute, minutes, hour, hours, day or days (e.g. rate(5 minutes)).");
        }

        var unit = match.Groups[2].Value;
        if (!int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < 1)
        {
            throw Invalid($"{Quote(text)}: the value must be a positive whole number (at position 6).");
        }

        var singular = !unit.EndsWith('s');
        if (singular != (value == 1))
        {
            throw Invalid($"{Quote(text)}: the unit must be singular for a value of 1 and plural otherwise (rate(1 hour), rate(2 hours)).");
        }

        var one = unit.TrimEnd('s') switch { "minute" => TimeSpan.FromMinutes(1), "hour" => TimeSpan.FromHours(1), _ => TimeSpan.FromDays(1) };
        if (value > Longest / one)
        {
            throw Invalid($"{Quote(text)}: a rate may be at most {Longest.TotalDays:0} days.");
        }

        return new RateExpression(text, value, unit, one * value);
    }

    public override DateTimeOffset? Next(DateTimeOffset after, TimeZoneInfo zone, DateTimeOffset anchor)
    {
        var unit = Unit.StartsWith("minute", StringComparison.Ordinal) ? TimeSpan.TicksPerMinute
            : Unit.StartsWith("hour", StringComparison.Ordinal) ? TimeSpan.TicksPerHour
            : TimeSpan.TicksPerDay;
        var utc = anchor.UtcTicks;
        var first = new DateTimeOffset((utc + unit - 1) / unit * unit, TimeSpan.Zero);
        if (after < first)
        {
            return first;
        }

        var periods = (after - first).Ticks / Period.Ticks + 1;
        return periods > (DateTimeOffset.MaxValue - first).Ticks / Period.Ticks ? null : first + Period * periods;
    }

    [GeneratedRegex(@"^rate\(([0-9]{1,9}) (minutes?|hours?|days?)\)$", RegexOptions.CultureInvariant)]
    private static partial Regex RateForm();
}

/// <summary>A cron schedule: Cronos's expression for the first five fields and the years allowed.</summary>
public sealed record CronScheduleExpression(string Text, CronExpression Cron, bool[] Years) : ScheduleExpression(Text)
{
    public const int FirstYear = 1970;
    public const int LastYear = 2199;

    private static readonly string[] MonthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    private static readonly string[] DayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

    private static readonly CronField[] Fields =
    [
        new("minutes", 0, 59, null),
        new("hours", 0, 23, null),
        new("day-of-month", 1, 31, null),
        new("month", 1, 12, MonthNames),
        new("day-of-week", 1, 7, DayNames),
        new("year", FirstYear, LastYear, null),
    ];

    internal static new CronScheduleExpression Parse(string text)
    {
        if (!text.EndsWith(')'))
        {
            throw Invalid($"{Quote(text)}: a cron expression ends with ')' (at position {text.Length}).");
        }

        // Each field with its position (1-based, in the whole expression).
        var fields = new List<(string Text, int Position)>();
        var body = text[5..^1];
        for (var i = 0; i < body.Length;)
        {
            if (body[i] == ' ')
            {
                i++;
                continue;
            }

            var end = body.IndexOf(' ', i);
            end = end < 0 ? body.Length : end;
            fields.Add((body[i..end], i + 6));
            i = end;
        }

        if (fields.Count != 6)
        {
            throw Invalid($"{Quote(text)}: a cron expression has six fields, minutes hours day-of-month month day-of-week year (got {fields.Count}); e.g. cron(0 8 1 * ? *).");
        }

        var translated = new string[5];
        for (var f = 0; f < 5; f++)
        {
            translated[f] = Fields[f].Translate(fields[f].Text, fields[f].Position, text);
        }

        var (dayOfMonth, dayOfWeek) = (fields[2], fields[4]);
        if ((dayOfMonth.Text == "?") == (dayOfWeek.Text == "?"))
        {
            throw Invalid($"{Quote(text)}: exactly one of day-of-month and day-of-week must be '?' (at position {(dayOfMonth.Text == "?" ? dayOfMonth.Position : dayOfWeek.Position)}).");
        }

        var years = new bool[LastYear - FirstYear + 1];
        Fields[5].Mark(fields[5].Text, fields[5].Position, text, years);

        try
        {
            return new CronScheduleExpression(text, CronExpression.Parse(string.Join(' ', translated), CronFormat.Standard), years);
        }
        catch (CronFormatException e)
        {
            throw Invalid($"{Quote(text)}: {e.Message}");
        }
    }

    public override DateTimeOffset? Next(DateTimeOffset after, TimeZoneInfo zone, DateTimeOffset anchor)
    {
        var from = after;
        // Each turn either returns or moves to a later allowed year: bounded by the years there are.
        for (var turns = 0; turns <= Years.Length; turns++)
        {
            if (Cron.GetNextOccurrence(from, zone) is not { } next)
            {
                return null;
            }

            var year = TimeZoneInfo.ConvertTime(next, zone).Year;
            if (year > LastYear)
            {
                return null;
            }

            if (Years[year - FirstYear])
            {
                return next;
            }

            var later = Array.IndexOf(Years, true, year - FirstYear + 1);
            if (later < 0)
            {
                return null;
            }

            from = AtExpression.Instant(new DateTime(FirstYear + later, 1, 1), zone).AddTicks(-1);
        }

        return null;
    }

    /// <summary>One field's rules: its range, its names, and the special characters it takes.</summary>
    private sealed record CronField(string Name, int Min, int Max, string[]? Names)
    {
        private bool DayOfMonth => Name == "day-of-month";

        private bool DayOfWeek => Name == "day-of-week";

        /// <summary>The field checked and in Cronos's form.</summary>
        public string Translate(string field, int position, string text)
        {
            if (field == "?")
            {
                return DayOfMonth || DayOfWeek ? "?" : throw Error(text, position, "'?' is allowed only in day-of-month and day-of-week");
            }

            if (Special(field, position, text) is { } special)
            {
                return special;
            }

            var items = new List<string>();
            var offset = 0;
            foreach (var item in field.Split(','))
            {
                items.Add(Item(item, position + offset, text));
                offset += item.Length + 1;
            }

            return string.Join(',', items);
        }

        /// <summary>The year field: marks the years it allows.</summary>
        public void Mark(string field, int position, string text, bool[] years)
        {
            var offset = 0;
            foreach (var item in field.Split(','))
            {
                var (from, to, step) = Range(item, position + offset, text);
                for (var year = from; year <= to; year += step)
                {
                    years[year - Min] = true;
                }

                offset += item.Length + 1;
            }
        }

        /// <summary>L, LW and nW in day-of-month; L, nL and n#k in day-of-week: alone in their field.</summary>
        private string? Special(string field, int position, string text)
        {
            if (DayOfMonth)
            {
                if (field is "L" or "LW")
                {
                    return field;
                }

                if (field.EndsWith('W'))
                {
                    return $"{Value(field[..^1], position, text)}W";
                }
            }

            if (DayOfWeek)
            {
                if (field == "L")
                {
                    return "6"; // the last day of the week: Saturday
                }

                if (field.Length > 1 && field.EndsWith('L'))
                {
                    return $"{Value(field[..^1], position, text) - 1}L";
                }

                var hash = field.IndexOf('#', StringComparison.Ordinal);
                if (hash >= 0)
                {
                    var day = Value(field[..hash], position, text);
                    var nth = field[(hash + 1)..];
                    if (nth is not ("1" or "2" or "3" or "4" or "5"))
                    {
                        throw Error(text, position + hash + 1, $"the week after '#' must be 1 to 5 (got {Quote(nth)})");
                    }

                    return $"{day - 1}#{nth}";
                }
            }

            return null;
        }

        /// <summary>One list item (*, a value, a range, either with a step) in Cronos's form.</summary>
        private string Item(string item, int position, string text)
        {
            var (from, to, step) = Range(item, position, text);
            var shift = DayOfWeek ? 1 : 0;
            var range = item.StartsWith('*') ? "*" : from == to && !item.Contains('/', StringComparison.Ordinal) ? $"{from - shift}" : $"{from - shift}-{to - shift}";
            return step == 1 ? range : $"{range}/{step}";
        }

        /// <summary>The values an item covers: first, last and step.</summary>
        private (int From, int To, int Step) Range(string item, int position, string text)
        {
            var slash = item.IndexOf('/', StringComparison.Ordinal);
            var step = 1;
            var span = item;
            if (slash >= 0)
            {
                var stepText = item[(slash + 1)..];
                if (!int.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out step) || step < 1 || step > Max - Min + 1)
                {
                    throw Error(text, position + slash + 1, $"the step after '/' must be 1 to {Max - Min + 1} (got {Quote(stepText)})");
                }

                span = item[..slash];
            }

            if (span == "*")
            {
                return (Min, Max, step);
            }

            var dash = span.IndexOf('-', 1);
            if (dash < 0)
            {
                var value = Value(span, position, text);
                // "5/15" runs from 5 to the end of the range, as in cron.
                return (value, slash >= 0 ? Max : value, step);
            }

            var from = Value(span[..dash], position, text);
            var to = Value(span[(dash + 1)..], position + dash + 1, text);
            if (from > to)
            {
                throw Error(text, position, $"the range {Quote(span)} runs backwards");
            }

            return (from, to, step);
        }

        private int Value(string value, int position, string text)
        {
            if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                return number >= Min && number <= Max ? number : throw Error(text, position, $"{Name} must be {Min} to {Max} (got {number})");
            }

            var named = Names is null ? -1 : Array.FindIndex(Names, n => n.Equals(value, StringComparison.OrdinalIgnoreCase));
            if (named >= 0)
            {
                return named + Min;
            }

            var allowed = Names is null ? "" : $" or {Names[0]}-{Names[^1]}";
            throw Error(text, position, $"{Quote(value)} is not a {Name} value ({Min}-{Max}{allowed}{Specials()})");
        }

        private string Specials() =>
            DayOfMonth ? ", L, LW, nW or ?" : DayOfWeek ? ", L, nL, n#k or ?" : "";

        private EcsException Error(string text, int position, string problem) =>
            Invalid($"{Quote(text)}: {problem} (the {Name} field, at position {position}).");
    }
}
