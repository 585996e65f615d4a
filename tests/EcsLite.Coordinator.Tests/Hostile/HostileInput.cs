using System.Collections;
using CsCheck;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace EcsLite.Coordinator.Tests.Hostile;

/// <summary>
/// Generators of hostile input (CsCheck's, driven by a seeded PCG so a run can be repeated): strings that
/// are too long, full of control characters or shaped like attacks on the cluster query language, and a
/// mutator that takes any valid request message and breaks it through protobuf reflection: oversized and
/// hostile strings, extreme numbers, undefined enum values, lists and maps of thousands of entries,
/// nested messages filled the same way. Bytes can be broken too: flipped, cut short, or random.
/// </summary>
public static class HostileInput
{
    private static readonly string[] Words =
    [
        "agentConnected", "agentVersion", "attribute:ecs.os-type", "attribute:", "ec2InstanceId", "registeredAt", "runningTasksCount", "task:group",
        "==", "!=", ">", ">=", "<", "<=", "=~", "!~", "exists", "!exists", "in", "!in", "[", "]", ",", "(", ")", "and", "or", "not", "!", "&&", "||",
        "true", "linux", "'quoted", "\"x\"", "1e308", "-1", "(a+)+$", "2026-13-45T25:61:00Z",
    ];

    /// <summary>A cluster query that is too long, nested too deep, a regular expression built to backtrack, or tokens in any order.</summary>
    public static readonly Gen<string> Expression = Gen.Frequency(
        (2, Gen.Int[1, 120_000].Select(n => new string('(', n) + "agentConnected == true" + new string(')', n))),
        (1, Gen.Int[1, 300_000].Select(n => new string('!', n) + "agentConnected == true")),
        (1, Gen.Int[20, 40].Select(n => new string('(', n) + "agentConnected == true" + new string(')', n))),
        (1, Gen.Int[1, 30].Select(n => $"attribute:ecs.os-type =~ {string.Concat(Enumerable.Repeat("(a+)+", n))}$")),
        (1, Gen.Int[1, 40_000].Select(n => $"attribute:rack in [{string.Join(",", Enumerable.Range(0, n))}]")),
        (4, Gen.OneOf(Words).Array[1, 60].Select(tokens => string.Join(" ", tokens))));

    /// <summary>Text of every kind a field should never have to hold, and some it should.</summary>
    public static readonly Gen<string> Text = Gen.Frequency(
        (4, Gen.String.AlphaNumeric),
        (2, Gen.Int[70_000, 400_000].Select(n => new string('x', n))),
        (2, Gen.String[Gen.Char['\0', '\u001f'], 1, 64]),
        (1, Gen.String[Gen.Char['\u0080', '\ud7ff'], 1, 256]),
        (2, Expression),
        (1, Gen.OneOf("", " ", "${IMAGE_URL}", "arn:aws:ecs:local:000000000000:task/default/0", "default", "fuzz-base", "-1", "1 vCPU", ".5 GB", "awsvpc", "FARGATE")));

    /// <summary>Text for one of thousands of entries: short, so a request of many stays near the 1 MiB a request may weigh.</summary>
    private static readonly Gen<string> ShortText = Gen.Frequency(
        (4, Gen.String.AlphaNumeric),
        (1, Gen.String[Gen.Char['\0', '\u001f'], 1, 16]),
        (1, Gen.String[Gen.Char['\u0080', '\ud7ff'], 1, 16]));

    private static readonly Gen<long> Number = Gen.Frequency(
        (3, Gen.OneOf(0L, -1L, 1L, int.MaxValue, int.MinValue, long.MaxValue, long.MinValue, 65536L, 1_048_576L)),
        (2, Gen.Int[-1_000, 1_000_000].Select(i => (long)i)));

    /// <summary>Breaks a valid message in 1 to 6 places.</summary>
    public static void Mutate(IMessage message, PCG pcg)
    {
        var count = (int)pcg.Next(6) + 1;
        for (var i = 0; i < count; i++)
        {
            MutateOnce(message, pcg, depth: 0);
        }
    }

    /// <summary>Bytes of a serialized message, broken: flipped, cut short, extended with noise, or noise alone.</summary>
    public static byte[] Break(byte[] valid, PCG pcg)
    {
        var bytes = valid.ToArray();
        switch (pcg.Next(4))
        {
            case 0:
                for (var i = 0; i < Math.Max(1, bytes.Length / 20); i++)
                {
                    if (bytes.Length > 0)
                    {
                        bytes[pcg.Next((uint)bytes.Length)] ^= (byte)(1 << (int)pcg.Next(8));
                    }
                }

                return bytes;
            case 1:
                return bytes[..(int)pcg.Next((uint)Math.Max(1, bytes.Length))];
            case 2:
                return [.. bytes, .. Noise(pcg, (int)pcg.Next(64) + 1)];
            default:
                return Noise(pcg, (int)pcg.Next(256) + 1);
        }
    }

    private static byte[] Noise(PCG pcg, int length)
    {
        var noise = new byte[length];
        for (var i = 0; i < length; i++)
        {
            noise[i] = (byte)pcg.Next(256);
        }

        return noise;
    }

    private static T Sample<T>(Gen<T> gen, PCG pcg) => gen.Generate(pcg, null!, out _);

    private static void MutateOnce(IMessage message, PCG pcg, int depth)
    {
        var fields = message.Descriptor.Fields.InDeclarationOrder();
        if (fields.Count == 0)
        {
            return;
        }

        var field = fields[(int)pcg.Next((uint)fields.Count)];
        var accessor = field.Accessor;
        if (field.IsMap)
        {
            var map = (IDictionary)accessor.GetValue(message);
            var entries = pcg.Next(4) == 0 ? (int)pcg.Next(3000) : (int)pcg.Next(4);
            var text = entries > 3 ? ShortText : Text;
            var valueType = field.MessageType.FindFieldByNumber(2);
            for (var i = 0; i < entries; i++)
            {
                map[Sample(text, pcg) + i] = valueType.FieldType == FieldType.String ? Sample(text, pcg) : Value(valueType, pcg, depth, many: entries > 3);
            }

            return;
        }

        if (field.IsRepeated)
        {
            var list = (IList)accessor.GetValue(message);
            if (list.Count > 0 && field.FieldType == FieldType.Message && pcg.Next(2) == 0)
            {
                MutateOnce((IMessage)list[(int)pcg.Next((uint)list.Count)]!, pcg, depth + 1);
                return;
            }

            var items = pcg.Next(4) == 0 ? (int)pcg.Next(3000) : (int)pcg.Next(4) + 1;
            for (var i = 0; i < items; i++)
            {
                list.Add(Value(field, pcg, depth, many: items > 3));
            }

            return;
        }

        if (field.FieldType == FieldType.Message)
        {
            var nested = (IMessage?)accessor.GetValue(message);
            if (nested is null)
            {
                accessor.SetValue(message, Value(field, pcg, depth, many: false));
            }
            else if (depth < 5)
            {
                MutateOnce(nested, pcg, depth + 1);
            }

            return;
        }

        if (pcg.Next(8) == 0 && field.HasPresence)
        {
            accessor.Clear(message); // a required field gone
            return;
        }

        accessor.SetValue(message, Value(field, pcg, depth, many: false));
    }

    /// <param name="many">One of thousands: kept small (and a nested message is left empty).</param>
    private static object Value(FieldDescriptor field, PCG pcg, int depth, bool many)
    {
        switch (field.FieldType)
        {
            case FieldType.String:
                return Sample(many ? ShortText : Text, pcg);
            case FieldType.Bool:
                return pcg.Next(2) == 0;
            case FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32:
                return (int)Math.Clamp(Sample(Number, pcg), int.MinValue, int.MaxValue);
            case FieldType.UInt32 or FieldType.Fixed32:
                return (uint)Math.Clamp(Sample(Number, pcg), 0, uint.MaxValue);
            case FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64:
                return Sample(Number, pcg);
            case FieldType.UInt64 or FieldType.Fixed64:
                return (ulong)Math.Max(0, Sample(Number, pcg));
            case FieldType.Double:
                return new[] { double.NaN, double.PositiveInfinity, -0.0, 1e308, 0.5 }[pcg.Next(5)];
            case FieldType.Float:
                return new[] { float.NaN, float.NegativeInfinity, 3.4e38f, 0.25f }[pcg.Next(4)];
            case FieldType.Enum:
                return (int)Math.Clamp(Sample(Number, pcg), int.MinValue, int.MaxValue);
            case FieldType.Bytes:
                return ByteString.CopyFrom(Noise(pcg, (int)pcg.Next(64)));
            default:
                var nested = (IMessage)Activator.CreateInstance(field.MessageType.ClrType)!;
                if (!many && depth < 4 && field.MessageType.File.Package == "ecslite.v1")
                {
                    MutateOnce(nested, pcg, depth + 1);
                }

                return nested;
        }
    }
}
