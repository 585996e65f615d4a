using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core;

/// <summary>
/// AWS's JSON protocol (awsJson1.1) for the API's messages: members by their JSON names (ECS's and the
/// other services' own), timestamps as epoch seconds with fractions, absent members left out (lists are
/// written even when empty, as ECS does), explicit null taken as absent. A member the message does not have, or a value of the wrong type, is an
/// error naming it (SerializationException, as AWS names a body it cannot read).
/// </summary>
public static class AwsJson
{
    public const string SerializationException = nameof(SerializationException);
    private const int MaxDepth = 64;

    /// <param name="emptyLists">Gets the top-level members given as an empty list ([]), which the message alone cannot tell from absent ones.</param>
    public static IMessage Read(ReadOnlySpan<byte> json, MessageDescriptor descriptor, ISet<string>? emptyLists = null)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.Length == 0 ? "{}"u8.ToArray() : json.ToArray(), new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            throw new EcsException(SerializationException, $"The request body is not valid JSON: {e.Message}");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new EcsException(SerializationException, "The request body must be a JSON object.");
            }

            if (emptyLists is not null)
            {
                foreach (var property in document.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Array && p.Value.GetArrayLength() == 0))
                {
                    emptyLists.Add(property.Name);
                }
            }

            return ReadMessage(document.RootElement, descriptor, "");
        }
    }

    private static IMessage ReadMessage(JsonElement json, MessageDescriptor descriptor, string path)
    {
        var message = descriptor.Parser.ParseFrom(ByteString.Empty);
        foreach (var property in json.EnumerateObject())
        {
            var field = descriptor.FindFieldByName(property.Name) is { } byName && byName.JsonName == property.Name ? byName
                : descriptor.Fields.InDeclarationOrder().FirstOrDefault(f => f.JsonName == property.Name);
            var at = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
            if (field is null)
            {
                throw new EcsException(SerializationException, $"{at}: {descriptor.Name} has no member '{Bounded(property.Name)}'.", at);
            }

            if (property.Value.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            if (field.IsMap)
            {
                Expect(property.Value, JsonValueKind.Object, at);
                var map = (System.Collections.IDictionary)field.Accessor.GetValue(message);
                var valueField = field.MessageType.FindFieldByNumber(2);
                foreach (var entry in property.Value.EnumerateObject())
                {
                    map[entry.Name] = ReadValue(entry.Value, valueField, $"{at}.{entry.Name}");
                }
            }
            else if (field.IsRepeated)
            {
                Expect(property.Value, JsonValueKind.Array, at);
                var list = (System.Collections.IList)field.Accessor.GetValue(message);
                var i = 0;
                foreach (var item in property.Value.EnumerateArray())
                {
                    list.Add(ReadValue(item, field, $"{at}[{i++}]"));
                }
            }
            else
            {
                field.Accessor.SetValue(message, ReadValue(property.Value, field, at));
            }
        }

        return message;
    }

    private static object ReadValue(JsonElement json, FieldDescriptor field, string at)
    {
        try
        {
            return field.FieldType switch
            {
                FieldType.String => Expect(json, JsonValueKind.String, at).GetString()!,
                FieldType.Bool => json.ValueKind is JsonValueKind.True or JsonValueKind.False ? json.GetBoolean() : throw Wrong(at, "true or false"),
                FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => Expect(json, JsonValueKind.Number, at).GetInt32(),
                FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => Expect(json, JsonValueKind.Number, at).GetInt64(),
                FieldType.UInt32 or FieldType.Fixed32 => Expect(json, JsonValueKind.Number, at).GetUInt32(),
                FieldType.UInt64 or FieldType.Fixed64 => Expect(json, JsonValueKind.Number, at).GetUInt64(),
                FieldType.Double => Expect(json, JsonValueKind.Number, at).GetDouble(),
                FieldType.Float => Expect(json, JsonValueKind.Number, at).GetSingle(),
                FieldType.Bytes => ByteString.CopyFrom(Expect(json, JsonValueKind.String, at).GetBytesFromBase64()),
                FieldType.Enum => field.EnumType.FindValueByName(Expect(json, JsonValueKind.String, at).GetString()!)?.Number ?? throw Wrong(at, $"one of {string.Join(", ", field.EnumType.Values.Select(v => v.Name))}"),
                FieldType.Message when field.MessageType.FullName == Timestamp.Descriptor.FullName => Time(json, at),
                FieldType.Message when field.MessageType.FullName == Value.Descriptor.FullName => Value.Parser.ParseJson(json.GetRawText()),
                FieldType.Message when field.MessageType.FullName == ListValue.Descriptor.FullName => ListValue.Parser.ParseJson(json.GetRawText()),
                FieldType.Message when field.MessageType.FullName == Struct.Descriptor.FullName => Struct.Parser.ParseJson(json.GetRawText()),
                FieldType.Message => ReadMessage(Expect(json, JsonValueKind.Object, at), field.MessageType, at),
                _ => throw Wrong(at, field.FieldType.ToString()),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or InvalidProtocolBufferException)
        {
            throw Wrong(at, field.FieldType.ToString().ToLowerInvariant());
        }
    }

    /// <summary>A timestamp: epoch seconds (with a fraction), or an ISO 8601 string as some clients send.</summary>
    private static Timestamp Time(JsonElement json, string at)
    {
        if (json.ValueKind == JsonValueKind.Number && json.GetDouble() is var seconds && seconds is >= 0 and < 253402300800)
        {
            var whole = Math.Floor(seconds);
            return new Timestamp { Seconds = (long)whole, Nanos = (int)Math.Round((seconds - whole) * 1e9) % 1_000_000_000 };
        }

        if (json.ValueKind == JsonValueKind.String && DateTimeOffset.TryParse(json.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return Timestamp.FromDateTimeOffset(time);
        }

        throw Wrong(at, "a timestamp (epoch seconds)");
    }

    private static JsonElement Expect(JsonElement json, JsonValueKind kind, string at) =>
        json.ValueKind == kind ? json : throw Wrong(at, kind.ToString().ToLowerInvariant());

    private static EcsException Wrong(string at, string expected) => new(SerializationException, $"{at}: expected {expected}.", at);

    private static string Bounded(string text) => text.Length <= 64 ? text : text[..64] + "...";

    /// <summary>The message as AWS JSON: members with presence when set, others when not their default, maps when not empty, lists always.</summary>
    public static byte[] Write(IMessage message)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteMessage(writer, message);
        }

        return buffer.ToArray();
    }

    private static void WriteMessage(Utf8JsonWriter writer, IMessage message)
    {
        writer.WriteStartObject();
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                var map = (System.Collections.IDictionary)value;
                if (map.Count == 0)
                {
                    continue;
                }

                writer.WritePropertyName(field.JsonName);
                writer.WriteStartObject();
                var valueField = field.MessageType.FindFieldByNumber(2);
                foreach (System.Collections.DictionaryEntry entry in map)
                {
                    writer.WritePropertyName(Convert.ToString(entry.Key, CultureInfo.InvariantCulture)!);
                    WriteValue(writer, valueField, entry.Value!);
                }

                writer.WriteEndObject();
            }
            else if (field.IsRepeated)
            {
                // Lists are written even when empty, as ECS answers ("failures": [], "tags": []).
                var list = (System.Collections.IList)value;
                writer.WritePropertyName(field.JsonName);
                writer.WriteStartArray();
                foreach (var item in list)
                {
                    WriteValue(writer, field, item!);
                }

                writer.WriteEndArray();
            }
            else if (field.HasPresence ? field.Accessor.HasValue(message) : !IsDefault(value))
            {
                writer.WritePropertyName(field.JsonName);
                WriteValue(writer, field, value);
            }
        }

        writer.WriteEndObject();
    }

    private static bool IsDefault(object value) => value switch
    {
        string s => s.Length == 0,
        bool b => !b,
        int i => i == 0,
        long l => l == 0,
        uint u => u == 0,
        ulong u => u == 0,
        double d => d == 0,
        float f => f == 0,
        ByteString b => b.IsEmpty,
        System.Enum e => Convert.ToInt32(e, CultureInfo.InvariantCulture) == 0,
        _ => false,
    };

    private static void WriteValue(Utf8JsonWriter writer, FieldDescriptor field, object value)
    {
        switch (value)
        {
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case int i: writer.WriteNumberValue(i); break;
            case long l: writer.WriteNumberValue(l); break;
            case uint u: writer.WriteNumberValue(u); break;
            case ulong u: writer.WriteNumberValue(u); break;
            case double d: writer.WriteNumberValue(d); break;
            case float f: writer.WriteNumberValue(f); break;
            case ByteString b: writer.WriteBase64StringValue(b.Span); break;
            case System.Enum e: writer.WriteStringValue(field.EnumType.FindValueByNumber(Convert.ToInt32(e, CultureInfo.InvariantCulture))?.Name ?? e.ToString()); break;
            case Timestamp t: writer.WriteNumberValue(decimal.Round(t.Seconds + (t.Nanos / 1_000_000_000m), 3)); break;
            case Value or ListValue or Struct: writer.WriteRawValue(JsonFormatter.Default.Format((IMessage)value)); break;
            case IMessage m: WriteMessage(writer, m); break;
            default: throw new ArgumentOutOfRangeException(nameof(value), value.GetType().Name, "no JSON form");
        }
    }
}
