using System.Globalization;

namespace EcsLite.Agent.Core;

/// <summary>The mappings of a process, as <c>/proc/PID/maps</c> lists them.</summary>
public static class ProcessMaps
{
    /// <summary>
    /// The read-only mappings of files (code and constant data of the executable and its libraries):
    /// pages the kernel can drop and read again from the file, so nothing is lost by giving them back.
    /// Writable mappings are left alone (their written pages are the process's own), and so are those
    /// of no file (the heap, stacks) and the kernel's (<c>[vdso]</c>, <c>[vvar]</c>).
    /// </summary>
    public static IEnumerable<(ulong Start, ulong Length)> ReadOnlyFileMappings(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            // start-end perms offset dev inode path
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[1].Length != 4 || fields[1][1] != '-' || fields[4] == "0" || !fields[5].StartsWith('/'))
            {
                continue;
            }

            var range = fields[0].Split('-');
            if (range.Length == 2
                && ulong.TryParse(range[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start)
                && ulong.TryParse(range[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end)
                && end > start)
            {
                yield return (start, end - start);
            }
        }
    }
}
