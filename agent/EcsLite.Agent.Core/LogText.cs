using System.Text;

namespace EcsLite.Agent.Core;

/// <summary>Text from outside (an engine's message, a task definition's field) as a log line or a report may carry it.</summary>
public static class LogText
{
    /// <summary>At most <paramref name="max"/> characters, control characters (NUL, newlines, escapes) written as \uXXXX.</summary>
    public static string Printable(string text, int max = 1024)
    {
        var cut = text.Length <= max ? text.AsSpan() : text.AsSpan(0, max);
        var printable = new StringBuilder(cut.Length + 3);
        foreach (var c in cut)
        {
            if (char.IsControl(c))
            {
                printable.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
            else
            {
                printable.Append(c);
            }
        }

        return text.Length <= max ? printable.ToString() : printable.Append("...").ToString();
    }
}
