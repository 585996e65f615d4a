using System.Security.Cryptography;
using System.Text;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Security;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>The JSON API's edge: AWS's JSON for every message of the API, and SigV4.</summary>
public sealed class AwsJsonTests
{
    public static TheoryData<string> Messages() => new(
        new[] { EcsReflection.Descriptor, SecretsReflection.Descriptor, LogsReflection.Descriptor }
            .SelectMany(f => f.Services).SelectMany(s => s.Methods)
            .SelectMany(m => new[] { m.InputType, m.OutputType }).Select(t => t.FullName).Distinct());

    /// <summary>Every member of every request and response (nested ones too) set, written as AWS JSON and read back, is the same message.</summary>
    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_member_of_every_actions_request_and_response_round_trips(string type)
    {
        var descriptor = new[] { EcsReflection.Descriptor, SecretsReflection.Descriptor, LogsReflection.Descriptor }.Select(f => f.FindTypeByName<MessageDescriptor>(type.Split('.')[^1])).First(d => d is not null);
        var message = Filled(descriptor, depth: 0);
        var json = AwsJson.Write(message);
        Assert.Equal(message, AwsJson.Read(json, descriptor));
    }

    [Fact]
    public void Timestamps_are_epoch_seconds_lists_are_written_even_empty_and_null_is_absent()
    {
        var task = new Api.V1.Task { TaskArn = "arn", CreatedAt = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 12, 4, 8, 0, 0, 250, TimeSpan.Zero)) };
        var json = Encoding.UTF8.GetString(AwsJson.Write(new DescribeTasksResponse { Tasks = { task } }));
        Assert.Contains("\"createdAt\":1796371200.25", json, StringComparison.Ordinal);
        Assert.Contains("\"failures\":[]", json, StringComparison.Ordinal);
        Assert.DoesNotContain("stoppedAt", json, StringComparison.Ordinal);
        var empty = new HashSet<string>();
        var read = (RunTaskRequest)AwsJson.Read("""{"cluster": null, "taskDefinition": "web", "count": 2, "placementStrategy": [], "tags": [{"key": "k"}]}"""u8, RunTaskRequest.Descriptor, empty);
        Assert.Equal((false, "web", 2), (read.HasCluster, read.TaskDefinition, read.Count));
        Assert.Equal(["placementStrategy"], empty);
    }

    [Theory]
    [InlineData("""{"taskDefinition": 5}""", "taskDefinition: expected string")]
    [InlineData("""{"taskDefinitions": "web"}""", "has no member 'taskDefinitions'")]
    [InlineData("""{"count": 1.5}""", "count: expected int32")]
    [InlineData("""{"overrides": {"containerOverrides": [{"name": ["x"]}]}}""", "overrides.containerOverrides[0].name: expected string")]
    [InlineData("""[1]""", "must be a JSON object")]
    [InlineData("""{"taskDefinition": "web",""", "not valid JSON")]
    public void A_body_of_the_wrong_shape_is_a_SerializationException_naming_the_member(string body, string says)
    {
        var refused = Assert.Throws<EcsException>(() => AwsJson.Read(Encoding.UTF8.GetBytes(body), RunTaskRequest.Descriptor));
        Assert.Equal(AwsJson.SerializationException, refused.ErrorType);
        Assert.Contains(says, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nesting_deeper_than_64_is_refused_not_followed()
    {
        var body = "{\"overrides\":" + string.Concat(Enumerable.Repeat("[", 200)) + string.Concat(Enumerable.Repeat("]", 200)) + "}";
        Assert.Equal(AwsJson.SerializationException, Assert.Throws<EcsException>(() => AwsJson.Read(Encoding.UTF8.GetBytes(body), RunTaskRequest.Descriptor)).ErrorType);
    }

    /// <summary>AWS's own documented example (an S3 GET, in the SigV4 documentation): the same signature.</summary>
    [Fact]
    public void The_signature_of_AWSs_documented_example_is_AWSs()
    {
        var headers = new Dictionary<string, string>
        {
            ["host"] = "examplebucket.s3.amazonaws.com",
            ["range"] = "bytes=0-9",
            ["x-amz-content-sha256"] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ["x-amz-date"] = "20130524T000000Z",
        };
        var authorization = new SigV4.Authorization("AKIAIOSFODNN7EXAMPLE", "20130524", "us-east-1", "s3", ["host", "range", "x-amz-content-sha256", "x-amz-date"], "");
        var signature = SigV4.Signature("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"u8.ToArray(), authorization,
            new SignedRequest("GET", "/test.txt", "", h => headers.GetValueOrDefault(h), SHA256.HashData([])), "20130524T000000Z");
        Assert.Equal("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", signature);
    }

    [Fact]
    public void A_signature_is_refused_when_altered_late_early_or_scoped_elsewhere_and_the_secret_is_not_asked_for_a_bad_scope()
    {
        var secret = "s3cr3t"u8.ToArray();
        var now = new DateTimeOffset(2026, 12, 4, 8, 0, 0, TimeSpan.Zero);
        var headers = new Dictionary<string, string> { ["host"] = "127.0.0.1:7430", ["x-amz-date"] = "20261204T080000Z", ["x-amz-target"] = "AmazonEC2ContainerServiceV20141113.ListClusters" };
        var body = SHA256.HashData("{}"u8);
        var request = new SignedRequest("POST", "/", "", h => headers.GetValueOrDefault(h), body);
        SigV4.Authorization Signed(string region = "local", string service = "ecs")
        {
            var unsigned = new SigV4.Authorization("AKIAEXAMPLE", "20261204", region, service, ["host", "x-amz-date", "x-amz-target"], "");
            return unsigned with { Signature = SigV4.Signature(secret, unsigned, request, "20261204T080000Z") };
        }

        var asked = 0;
        byte[] Secret()
        {
            asked++;
            return secret;
        }

        SigV4.Verify(Signed(), request, "local", ["ecs"], now, Secret);
        SigV4.Verify(Signed(), request, "local", ["ecs"], now.AddMinutes(14), Secret);
        string Refused(SigV4.Authorization a, SignedRequest r, DateTimeOffset at) =>
            Assert.Throws<EcsException>(() => SigV4.Verify(a, r, "local", ["ecs"], at, Secret)).ErrorType;
        Assert.Equal(SigV4Errors.InvalidSignatureException, Refused(Signed(), request, now.AddMinutes(16)));
        Assert.Equal(SigV4Errors.InvalidSignatureException, Refused(Signed(), request, now.AddMinutes(-16)));
        Assert.Equal(SigV4Errors.InvalidSignatureException, Refused(Signed(), request with { PayloadSha256 = SHA256.HashData("{ }"u8) }, now));
        Assert.Equal(SigV4Errors.InvalidSignatureException, Refused(Signed(), request with { Header = h => h == "x-amz-target" ? "AmazonEC2ContainerServiceV20141113.DeleteCluster" : headers.GetValueOrDefault(h) }, now));
        var before = asked;
        Assert.Equal(SigV4Errors.InvalidSignatureException, Refused(Signed(region: "us-east-1"), request, now));
        Assert.Equal(SigV4Errors.InvalidSignatureException, Refused(Signed(service: "s3"), request, now));
        Assert.Equal(before, asked);

        Assert.Equal(SigV4Errors.IncompleteSignatureException, Assert.Throws<EcsException>(() => SigV4.Parse("AWS4-HMAC-SHA256 Credential=AKIA/20261204/local/ecs/aws4_request, Signature=00")).ErrorType);
        Assert.Equal(IamErrorType.MissingAuthenticationTokenException, Assert.Throws<EcsException>(() => SigV4.Parse("")).ErrorType);
        var parsed = SigV4.Parse($"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261204/local/ecs/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature={Signed().Signature}");
        Assert.Equal((Signed().Scope, Signed().Signature, "host;x-amz-date;x-amz-target"), (parsed.Scope, parsed.Signature, string.Join(';', parsed.SignedHeaders)));
    }

    /// <summary>A message with every field set to a value that is not its default (lists of two, maps of one), nested messages to a bounded depth.</summary>
    private static IMessage Filled(MessageDescriptor descriptor, int depth)
    {
        var message = descriptor.Parser.ParseFrom(ByteString.Empty);
        if (depth > 6)
        {
            return message;
        }

        foreach (var field in descriptor.Fields.InDeclarationOrder())
        {
            if (field.IsMap)
            {
                var map = (System.Collections.IDictionary)field.Accessor.GetValue(message);
                map["key"] = Sample(field.MessageType.FindFieldByNumber(2), depth, 0);
            }
            else if (field.IsRepeated)
            {
                var list = (System.Collections.IList)field.Accessor.GetValue(message);
                list.Add(Sample(field, depth, 0));
                list.Add(Sample(field, depth, 1));
            }
            else if (field.RealContainingOneof is null || field.RealContainingOneof.Fields[0] == field)
            {
                field.Accessor.SetValue(message, Sample(field, depth, 0));
            }
        }

        return message;
    }

    private static object Sample(FieldDescriptor field, int depth, int i) => field.FieldType switch
    {
        FieldType.String => $"{field.JsonName}-{i}",
        FieldType.Bool => true,
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => 7 + i,
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => 1_700_000_000_000L + i,
        FieldType.UInt32 or FieldType.Fixed32 => 7u + (uint)i,
        FieldType.UInt64 or FieldType.Fixed64 => 7ul + (ulong)i,
        FieldType.Double => 0.5 + i,
        FieldType.Float => 0.5f + i,
        FieldType.Bytes => ByteString.CopyFromUtf8($"bytes-{i}"),
        FieldType.Enum => field.EnumType.Values[^1].Number,
        FieldType.Message when field.MessageType.FullName == Timestamp.Descriptor.FullName => new Timestamp { Seconds = 1_796_371_200 + i, Nanos = 250_000_000 },
        FieldType.Message when field.MessageType.FullName == ListValue.Descriptor.FullName => new ListValue { Values = { Value.ForString("AWSCURRENT") } },
        FieldType.Message when field.MessageType.FullName == Value.Descriptor.FullName => Value.ForString("v"),
        FieldType.Message when field.MessageType.FullName == Struct.Descriptor.FullName => new Struct { Fields = { ["k"] = Value.ForString("v") } },
        FieldType.Message => Filled(field.MessageType, depth + 1),
        _ => throw new ArgumentOutOfRangeException(nameof(field), field.FieldType, null),
    };
}
