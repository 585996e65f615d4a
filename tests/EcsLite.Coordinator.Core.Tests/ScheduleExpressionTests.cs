using System.Globalization;
using CsCheck;
using EcsLite.Coordinator.Core.Schedules;

namespace EcsLite.Coordinator.Core.Tests;

public class ScheduleExpressionTests
{
    private static readonly TimeZoneInfo Utc = TimeZoneInfo.Utc;
    private static readonly TimeZoneInfo Berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
    private static readonly TimeZoneInfo NewYork = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");

    private static DateTimeOffset T(string utc) => DateTimeOffset.Parse(utc, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    /// <summary>The first <paramref name="count"/> slots after <paramref name="after"/>, in UTC (ISO 8601).</summary>
    private static string[] Slots(string expression, string after, int count, TimeZoneInfo? zone = null)
    {
        var parsed = ScheduleExpression.Parse(expression);
        var slots = new List<string>();
        var from = T(after);
        for (var i = 0; i < count && parsed.Next(from, zone ?? Utc, from) is { } next; i++)
        {
            slots.Add(next.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture));
            from = next;
        }

        return [.. slots];
    }

    // EventBridge's own examples (the Scheduler and CloudWatch Events guides), from Wednesday 2026-12-02 00:00 UTC.
    [Theory]
    [InlineData("cron(0 10 * * ? *)", "2026-12-02 10:00,2026-12-03 10:00")] // 10:00 every day
    [InlineData("cron(15 12 * * ? *)", "2026-12-02 12:15,2026-12-03 12:15")] // 12:15 every day
    [InlineData("cron(0 18 ? * MON-FRI *)", "2026-12-02 18:00,2026-12-03 18:00,2026-12-04 18:00,2026-12-07 18:00")] // 18:00 on weekdays
    [InlineData("cron(0 8 1 * ? *)", "2027-01-01 08:00,2027-02-01 08:00")] // 08:00 on the first of each month
    [InlineData("cron(0/15 * * * ? *)", "2026-12-02 00:15,2026-12-02 00:30,2026-12-02 00:45,2026-12-02 01:00")] // every 15 minutes
    [InlineData("cron(0/10 * ? * MON-FRI *)", "2026-12-02 00:10,2026-12-02 00:20")] // every 10 minutes on weekdays
    [InlineData("cron(0/5 8-17 ? * MON-FRI *)", "2026-12-02 08:00,2026-12-02 08:05")] // every 5 minutes, 08:00 to 17:55, weekdays
    [InlineData("cron(0 9 ? * 2#1 *)", "2026-12-07 09:00,2027-01-04 09:00,2027-02-01 09:00")] // 09:00 on the first Monday
    [InlineData("cron(0 12 L * ? *)", "2026-12-31 12:00,2027-01-31 12:00,2027-02-28 12:00")] // noon on the last day of the month
    [InlineData("cron(0 12 ? * 6L *)", "2026-12-25 12:00,2027-01-29 12:00")] // noon on the last Friday
    [InlineData("cron(0 12 15W * ? *)", "2026-12-15 12:00,2027-01-15 12:00,2027-02-15 12:00,2027-03-15 12:00,2027-04-15 12:00,2027-05-14 12:00")] // the weekday nearest the 15th (15 May 2027 is a Saturday)
    [InlineData("cron(30 6 ? * SUN,7 2027)", "2027-01-02 06:30,2027-01-03 06:30")] // Saturday (7) and Sunday, only in 2027
    [InlineData("cron(0 0 29 2 ? 2027-2030)", "2028-02-29 00:00")] // the 29th of February: only leap years have one
    [InlineData("rate(1 minute)", "2026-12-02 00:01,2026-12-02 00:02")]
    [InlineData("rate(3 hours)", "2026-12-02 03:00,2026-12-02 06:00")]
    [InlineData("rate(2 days)", "2026-12-04 00:00,2026-12-06 00:00")]
    [InlineData("at(2026-12-24T18:00:00)", "2026-12-24 18:00")]
    public void Next_slots_match_EventBridge_examples(string expression, string expected)
    {
        Assert.Equal(expected.Split(','), Slots(expression, "2026-12-02 00:00", expected.Split(',').Length));
    }

    [Fact]
    public void Cron_reads_local_time_across_both_DST_changes()
    {
        // Berlin: 28 March 2027 02:00 becomes 03:00 (02:30 does not exist); 31 October 03:00 becomes 02:00 (02:30 happens twice).
        Assert.Equal(["2027-03-27 01:30", "2027-03-28 01:00", "2027-03-29 00:30"], Slots("cron(30 2 * * ? *)", "2027-03-27 00:00", 3, Berlin));
        Assert.Equal(["2027-10-30 00:30", "2027-10-31 00:30", "2027-11-01 01:30"], Slots("cron(30 2 * * ? *)", "2027-10-30 00:00", 3, Berlin));
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer (from 14 March 2027).
        Assert.Equal(["2027-03-12 14:00", "2027-03-15 13:00"], Slots("cron(0 9 ? * MON-FRI *)", "2027-03-12 00:00", 2, NewYork));
    }

    [Fact]
    public void At_is_read_in_the_schedule_zone_and_fires_once()
    {
        Assert.Equal(["2026-12-24 17:00"], Slots("at(2026-12-24T18:00:00)", "2026-12-01 00:00", 3, Berlin));
        Assert.Empty(Slots("at(2026-12-24T18:00:00)", "2026-12-25 00:00", 1));
        // A time the spring change skips is taken at the end of the gap.
        Assert.Equal(["2027-03-28 01:00"], Slots("at(2027-03-28T02:30:00)", "2027-01-01 00:00", 1, Berlin));
    }

    [Fact]
    public void Rate_slots_start_at_the_first_whole_unit_after_the_anchor()
    {
        var rate = ScheduleExpression.Parse("rate(5 minutes)");
        var anchor = T("2026-12-02 10:03:20");
        Assert.Equal(T("2026-12-02 10:04"), rate.Next(T("2026-12-02 09:00"), Utc, anchor));
        Assert.Equal(T("2026-12-02 10:09"), rate.Next(T("2026-12-02 10:04"), Utc, anchor));
        Assert.Equal(T("2026-12-02 10:14"), rate.Next(T("2026-12-02 10:13:59"), Utc, anchor));
    }

    [Theory]
    [InlineData("cron(0 25 * * ? *)", "hours must be 0 to 23 (got 25) (the hours field, at position 8)")]
    [InlineData("cron(60 * * * ? *)", "minutes must be 0 to 59 (got 60) (the minutes field, at position 6)")]
    [InlineData("cron(0 8 1 * MON *)", "exactly one of day-of-month and day-of-week must be '?' (at position 14)")]
    [InlineData("cron(0 8 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?' (at position 10)")]
    [InlineData("cron(0 8 * * ?)", "has six fields")]
    [InlineData("cron(0 8 ? * FOO *)", "'FOO' is not a day-of-week value (1-7 or SUN-SAT, L, nL, n#k or ?) (the day-of-week field, at position 14)")]
    [InlineData("cron(0 8 ? JAN-XYZ MON *)", "'XYZ' is not a month value (1-12 or JAN-DEC) (the month field, at position 16)")]
    [InlineData("cron(0 8 ? * 2#6 *)", "the week after '#' must be 1 to 5 (got '6') (the day-of-week field, at position 16)")]
    [InlineData("cron(0/0 * * * ? *)", "the step after '/' must be 1 to 60 (got '0') (the minutes field, at position 8)")]
    [InlineData("cron(0 8 1 * ? 1969)", "year must be 1970 to 2199 (got 1969) (the year field, at position 16)")]
    [InlineData("cron(0 20-10 * * ? *)", "the range '20-10' runs backwards (the hours field, at position 8)")]
    [InlineData("cron(? 8 * * ? *)", "'?' is allowed only in day-of-month and day-of-week (the minutes field, at position 6)")]
    [InlineData("cron(0 8 * * ? *", "ends with ')'")]
    [InlineData("rate(1 minutes)", "singular for a value of 1")]
    [InlineData("rate(5 minute)", "singular for a value of 1")]
    [InlineData("rate(0 minutes)", "positive whole number")]
    [InlineData("rate(5 weeks)", "unit minute, minutes, hour, hours, day or days")]
    [InlineData("rate(4000 days)", "at most 3650 days")]
    [InlineData("at(2026-13-01T00:00:00)", "at(yyyy-mm-ddThh:mm:ss)")]
    [InlineData("at(2026-12-01 00:00:00)", "at(yyyy-mm-ddThh:mm:ss)")]
    [InlineData("every day", "is not at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(")]
    [InlineData("", "must be 1 to 256 characters")]
    public void Bad_expressions_are_refused_naming_the_field_and_position(string expression, string problem)
    {
        var error = Assert.Throws<EcsException>(() => ScheduleExpression.Parse(expression));
        Assert.Equal(SchedulerErrors.ValidationException, error.ErrorType);
        Assert.Equal("ScheduleExpression", error.Field);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Cron expressions of numbers, lists, ranges, steps, names and years, each next slot checked against
    /// a minute-by-minute search that matches the fields by their plain meaning: an oracle that shares
    /// nothing with the translation to Cronos.
    /// </summary>
    [Fact]
    public void Next_slots_agree_with_a_minute_by_minute_search()
    {
        Gen.Select(Field(0, 59), Field(0, 23), Field(1, 31), Field(1, 12), Field(1, 7), Gen.Bool, Gen.Int[0, 2000])
            .Sample((minute, hour, day, month, weekday, byWeekday, startHours) =>
            {
                var (dom, dow) = byWeekday ? ("?", weekday) : (day, "?");
                var years = "2026-2027";
                var text = $"cron({minute} {hour} {dom} {month} {dow} {years})";
                var expression = ScheduleExpression.Parse(text);
                var from = T("2026-06-01 00:00").AddHours(startHours);
                var expected = Search(from, minute, hour, dom, month, dow);
                var actual = expression.Next(from, Utc, from);
                return expected == actual;
            }, iter: 300);
    }

    /// <summary>A field: *, a value, a range, a list of values, or a step.</summary>
    private static Gen<string> Field(int min, int max) =>
        Gen.OneOf(
            Gen.Const("*"),
            Gen.Int[min, max].Select(v => $"{v}"),
            Gen.Int[min, max].SelectMany(a => Gen.Int[a, max].Select(b => $"{a}-{b}")),
            Gen.Int[min, max].Array[2, 3].Select(vs => string.Join(',', vs.Distinct())),
            Gen.Int[min, max].SelectMany(a => Gen.Int[1, Math.Max(1, (max - min) / 2)].Select(s => $"{a}/{s}")));

    private static DateTimeOffset? Search(DateTimeOffset from, string minute, string hour, string dom, string month, string dow)
    {
        var t = new DateTimeOffset(from.UtcTicks / TimeSpan.TicksPerMinute * TimeSpan.TicksPerMinute, TimeSpan.Zero).AddMinutes(1);
        for (var end = T("2028-01-01 00:00"); t < end; t = t.AddMinutes(1))
        {
            // Skip whole days that cannot match, minute by minute only within a day that can.
            if (!Matches(month, t.Month, 12) || (dom != "?" && !Matches(dom, t.Day, 31)) || (dow != "?" && !Matches(dow, (int)t.DayOfWeek + 1, 7)))
            {
                t = new DateTimeOffset(t.Date, TimeSpan.Zero).AddDays(1).AddMinutes(-1);
                continue;
            }

            if (Matches(hour, t.Hour, 23) && Matches(minute, t.Minute, 59))
            {
                return t;
            }
        }

        return null;
    }

    private static bool Matches(string field, int value, int max) => field.Split(',').Any(item =>
    {
        if (item == "*")
        {
            return true;
        }

        var slash = item.Split('/');
        var range = slash[0].Split('-');
        var from = int.Parse(range[0], CultureInfo.InvariantCulture);
        var to = range.Length > 1 ? int.Parse(range[1], CultureInfo.InvariantCulture) : slash.Length > 1 ? max : from;
        var step = slash.Length > 1 ? int.Parse(slash[1], CultureInfo.InvariantCulture) : 1;
        return value >= from && value <= to && (value - from) % step == 0;
    });
}
