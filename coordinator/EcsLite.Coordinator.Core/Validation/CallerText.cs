using System.Text;

namespace EcsLite.Coordinator.Core.Validation;

/// <summary>A caller's text as an error message or a log line quotes it.</summary>
public static class CallerText
{
    /// <summary>At most <paramref name="max"/> characters of it, control characters (NUL, newlines, escapes) written as \uXXXX.</summary>
    public static string Quote(string text, int max = 100)
    {
        var quoted = new StringBuilder(Math.Min(text.Length, max) + 3);
        foreach (var c in text.Length <= max ? text.AsSpan() : text.AsSpan(0, max))
        {
            _ = char.IsControl(c) ? quoted.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}") : quoted.Append(c);
        }

        return text.Length <= max ? quoted.ToString() : quoted.Append("...").ToString();
    }
}
