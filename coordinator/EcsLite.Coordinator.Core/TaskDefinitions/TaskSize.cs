using System.Globalization;
using System.Text.RegularExpressions;

namespace EcsLite.Coordinator.Core.TaskDefinitions;

/// <summary>
/// Task-level cpu and memory as ECS accepts them: CPU units ("256") or vCPUs ("1 vCPU", "0.25 vcpu", ".25 VCPU"),
/// MiB ("512") or GB ("2 GB", ".5 gb", "0.5GB"); ECS stores the numeric form.
/// </summary>
public static partial class TaskSize
{
    // ECS takes a leading-dot decimal (".25 vCPU") and any letter case ("0.5GB", "1 VCPU").
    [GeneratedRegex(@"^\s*(?<n>\d+(\.\d*)?|\.\d+)\s*(?<unit>vcpu|gb)?\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Quantity();

    /// <summary>CPU units (1024 per vCPU), or null if the text is not a CPU quantity.</summary>
    public static int? ParseCpu(string text) => Parse(text, "vcpu", 1024);

    /// <summary>Memory in MiB (1024 per GB), or null if the text is not a memory quantity.</summary>
    public static int? ParseMemory(string text) => Parse(text, "gb", 1024);

    private static int? Parse(string text, string unit, int perUnit)
    {
        var match = Quantity().Match(text);
        if (!match.Success)
        {
            return null;
        }

        var givenUnit = match.Groups["unit"];
        if (givenUnit.Success && !givenUnit.Value.Equals(unit, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var number = decimal.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture);
        var value = givenUnit.Success ? number * perUnit : number;
        if (value != decimal.Truncate(value) || value <= 0 || value > int.MaxValue)
        {
            return null;
        }

        return (int)value;
    }

    /// <summary>Fargate's valid task sizes: for each CPU value, the memory values (MiB) it accepts.</summary>
    public static bool IsFargateSize(int cpu, int memory) => cpu switch
    {
        256 => memory is 512 or 1024 or 2048,
        512 => InSteps(memory, 1024, 4096, 1024),
        1024 => InSteps(memory, 2048, 8192, 1024),
        2048 => InSteps(memory, 4096, 16384, 1024),
        4096 => InSteps(memory, 8192, 30720, 1024),
        8192 => InSteps(memory, 16384, 61440, 4096),
        16384 => InSteps(memory, 32768, 122880, 8192),
        _ => false,
    };

    public const string FargateSizes =
        "cpu 256: memory 512, 1024, 2048; cpu 512: 1024-4096; cpu 1024: 2048-8192; cpu 2048: 4096-16384 (steps of 1024); " +
        "cpu 4096: 8192-30720 (steps of 1024); cpu 8192: 16384-61440 (steps of 4096); cpu 16384: 32768-122880 (steps of 8192)";

    private static bool InSteps(int value, int min, int max, int step) => value >= min && value <= max && (value - min) % step == 0;
}
