using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using Timestamp = Google.Protobuf.WellKnownTypes.Timestamp;

namespace EcsLite.Testing;

/// <summary>
/// Calls a gRPC method knowing only its name, as grpcurl does: the schema comes from the server's
/// reflection service, the request is JSON turned into protobuf by walking the descriptors (unknown
/// fields are an error, as in grpcurl), and the reply comes back as proto3 JSON.
/// It shares no generated code with the server, so it proves what a grpcurl user would see.
/// </summary>
public sealed class DynamicJsonClient
{
    private readonly GrpcChannel _channel;
    private readonly Dictionary<string, ServiceDescriptor> _services = new(StringComparer.Ordinal);

    private DynamicJsonClient(GrpcChannel channel) => _channel = channel;

    public static async Task<DynamicJsonClient> ConnectAsync(GrpcChannel channel, CancellationToken cancellationToken = default)
    {
        var client = new DynamicJsonClient(channel);
        var reflection = new ServerReflection.ServerReflectionClient(channel);
        using var call = reflection.ServerReflectionInfo(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" }, cancellationToken);
        await call.ResponseStream.MoveNext(cancellationToken);
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();

        var files = new Dictionary<string, FileDescriptorProto>(StringComparer.Ordinal);
        var raw = new Dictionary<string, ByteString>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = name }, cancellationToken);
            await call.ResponseStream.MoveNext(cancellationToken);
            foreach (var bytes in call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto)
            {
                var proto = FileDescriptorProto.Parser.ParseFrom(bytes);
                files[proto.Name] = proto;
                raw[proto.Name] = bytes;
            }
        }

        await call.RequestStream.CompleteAsync();
        var ordered = new List<string>();
        void Visit(string file)
        {
            if (ordered.Contains(file) || !files.TryGetValue(file, out var proto))
            {
                return;
            }

            foreach (var dependency in proto.Dependency)
            {
                Visit(dependency);
            }

            ordered.Add(file);
        }

        foreach (var file in files.Keys)
        {
            Visit(file);
        }

        foreach (var descriptor in FileDescriptor.BuildFromByteStrings(ordered.Select(f => raw[f])))
        {
            foreach (var service in descriptor.Services)
            {
                client._services[service.FullName] = service;
            }
        }

        return client;
    }

    public IReadOnlyCollection<string> Services => _services.Keys;

    public MethodDescriptor Method(string fullMethod)
    {
        var slash = fullMethod.LastIndexOf('/');
        var service = _services.GetValueOrDefault(fullMethod[..slash]) ?? throw new ArgumentException($"server does not expose service {fullMethod[..slash]}");
        return service.FindMethodByName(fullMethod[(slash + 1)..]) ?? throw new ArgumentException($"service has no method {fullMethod}");
    }

    /// <summary>Invokes "package.Service/Method" with a JSON request and returns the JSON reply.</summary>
    public async Task<JsonObject> CallAsync(string fullMethod, string json, CancellationToken cancellationToken = default)
    {
        var method = Method(fullMethod);
        var request = ProtoJson.Encode(method.InputType, JsonNode.Parse(json) as JsonObject ?? throw new FormatException("the request must be a JSON object"));
        var marshaller = Marshallers.Create(static (byte[] b) => b, static b => b);
        var call = new Method<byte[], byte[]>(MethodType.Unary, method.Service.FullName, method.Name, marshaller, marshaller);
        var reply = await _channel.CreateCallInvoker().AsyncUnaryCall(call, null, new CallOptions(cancellationToken: cancellationToken), request);
        return ProtoJson.Decode(method.OutputType, reply);
    }
}

/// <summary>proto3 JSON to and from the protobuf wire format, driven by descriptors alone.</summary>
public static class ProtoJson
{
    public static byte[] Encode(MessageDescriptor type, JsonObject json)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        WriteMessage(output, type, json);
        output.Flush();
        return buffer.ToArray();
    }

    public static JsonObject Decode(MessageDescriptor type, byte[] bytes) => ReadMessage(type, new CodedInputStream(bytes));

    private static void WriteMessage(CodedOutputStream output, MessageDescriptor type, JsonObject json)
    {
        if (type.FullName == Timestamp.Descriptor.FullName)
        {
            throw new FormatException("a Timestamp must be a JSON string");
        }

        foreach (var (name, value) in json)
        {
            var field = type.Fields.InDeclarationOrder().FirstOrDefault(f => f.JsonName == name || f.Name == name)
                ?? throw new FormatException($"message type {type.FullName} has no known field named {name}");
            if (value is null)
            {
                continue;
            }

            if (field.IsMap)
            {
                var entryType = field.MessageType;
                foreach (var (key, entryValue) in value.AsObject())
                {
                    var entry = Encode(entryType, new JsonObject { ["key"] = key, ["value"] = entryValue?.DeepClone() });
                    output.WriteTag(field.FieldNumber, WireFormat.WireType.LengthDelimited);
                    output.WriteBytes(ByteString.CopyFrom(entry));
                }
            }
            else if (field.IsRepeated)
            {
                if (value is not JsonArray array)
                {
                    throw new FormatException($"field {name} of {type.FullName} must be a JSON array");
                }

                foreach (var item in array)
                {
                    WriteValue(output, field, item!);
                }
            }
            else
            {
                WriteValue(output, field, value);
            }
        }
    }

    private static void WriteValue(CodedOutputStream output, FieldDescriptor field, JsonNode value)
    {
        var n = field.FieldNumber;
        switch (field.FieldType)
        {
            case FieldType.String:
                output.WriteTag(n, WireFormat.WireType.LengthDelimited);
                output.WriteString(value.GetValue<string>());
                break;
            case FieldType.Bool:
                output.WriteTag(n, WireFormat.WireType.Varint);
                output.WriteBool(value.GetValue<bool>());
                break;
            case FieldType.Int32:
                output.WriteTag(n, WireFormat.WireType.Varint);
                output.WriteInt32(checked((int)Number(value, field)));
                break;
            case FieldType.Int64:
                output.WriteTag(n, WireFormat.WireType.Varint);
                output.WriteInt64(checked((long)Number(value, field)));
                break;
            case FieldType.Double:
                output.WriteTag(n, WireFormat.WireType.Fixed64);
                output.WriteDouble((double)Number(value, field));
                break;
            case FieldType.Bytes:
                output.WriteTag(n, WireFormat.WireType.LengthDelimited);
                output.WriteBytes(ByteString.FromBase64(value.GetValue<string>()));
                break;
            case FieldType.Message when field.MessageType.FullName == Timestamp.Descriptor.FullName:
                var time = Timestamp.FromDateTimeOffset(DateTimeOffset.Parse(value.GetValue<string>(), CultureInfo.InvariantCulture));
                output.WriteTag(n, WireFormat.WireType.LengthDelimited);
                output.WriteBytes(time.ToByteString());
                break;
            case FieldType.Message:
                output.WriteTag(n, WireFormat.WireType.LengthDelimited);
                output.WriteBytes(ByteString.CopyFrom(Encode(field.MessageType, value.AsObject())));
                break;
            default:
                throw new NotSupportedException($"field type {field.FieldType} ({field.FullName}) is not used by the EcsLite API");
        }
    }

    private static decimal Number(JsonNode value, FieldDescriptor field)
    {
        var element = value.GetValue<JsonElement>();
        try
        {
            // proto3 JSON accepts numbers and numeric strings for integer fields.
            var number = element.ValueKind == JsonValueKind.String
                ? decimal.Parse(element.GetString()!, CultureInfo.InvariantCulture)
                : element.GetDecimal();
            if (field.FieldType != FieldType.Double && number != decimal.Truncate(number))
            {
                throw new FormatException();
            }

            return number;
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException)
        {
            throw new FormatException($"field {field.JsonName}: '{value.ToJsonString()}' is not a valid {field.FieldType}");
        }
    }

    private static JsonObject ReadMessage(MessageDescriptor type, CodedInputStream input)
    {
        var json = new JsonObject();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = type.FindFieldByNumber(WireFormat.GetTagFieldNumber(tag));
            if (field is null)
            {
                input.SkipLastField();
                continue;
            }

            if (field.IsMap)
            {
                var entry = ReadMessage(field.MessageType, new CodedInputStream(input.ReadBytes().ToByteArray()));
                var map = json[field.JsonName] as JsonObject ?? (JsonObject)(json[field.JsonName] = new JsonObject());
                map[entry["key"]?.GetValue<string>() ?? ""] = entry["value"]?.DeepClone() ?? JsonValue.Create("");
                continue;
            }

            if (field.IsRepeated && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited && IsPackable(field))
            {
                var packed = new CodedInputStream(input.ReadBytes().ToByteArray());
                var list = Array(json, field);
                while (!packed.IsAtEnd)
                {
                    list.Add(ReadScalar(field, packed));
                }

                continue;
            }

            var value = ReadValue(field, input);
            if (field.IsRepeated)
            {
                Array(json, field).Add(value);
            }
            else
            {
                json[field.JsonName] = value;
            }
        }

        return json;
    }

    private static JsonArray Array(JsonObject json, FieldDescriptor field) =>
        json[field.JsonName] as JsonArray ?? (JsonArray)(json[field.JsonName] = new JsonArray());

    private static bool IsPackable(FieldDescriptor field) =>
        field.FieldType is FieldType.Int32 or FieldType.Int64 or FieldType.Bool or FieldType.Double;

    private static JsonNode? ReadValue(FieldDescriptor field, CodedInputStream input) => field.FieldType switch
    {
        FieldType.String => JsonValue.Create(input.ReadString()),
        FieldType.Bytes => JsonValue.Create(input.ReadBytes().ToBase64()),
        FieldType.Message when field.MessageType.FullName == Timestamp.Descriptor.FullName =>
            JsonValue.Create(Timestamp.Parser.ParseFrom(input.ReadBytes()).ToDateTimeOffset().ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture)),
        FieldType.Message => ReadMessage(field.MessageType, new CodedInputStream(input.ReadBytes().ToByteArray())),
        _ => ReadScalar(field, input),
    };

    private static JsonNode? ReadScalar(FieldDescriptor field, CodedInputStream input) => field.FieldType switch
    {
        FieldType.Bool => JsonValue.Create(input.ReadBool()),
        FieldType.Int32 => JsonValue.Create(input.ReadInt32()),
        // proto3 JSON writes 64-bit integers as strings.
        FieldType.Int64 => JsonValue.Create(input.ReadInt64().ToString(CultureInfo.InvariantCulture)),
        FieldType.Double => JsonValue.Create(input.ReadDouble()),
        _ => throw new NotSupportedException($"field type {field.FieldType} ({field.FullName}) is not used by the EcsLite API"),
    };
}
