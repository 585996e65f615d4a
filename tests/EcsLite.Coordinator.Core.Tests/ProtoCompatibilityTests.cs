using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.Store.V1;
using EcsLite.Testing;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace EcsLite.Coordinator.Core.Tests;

/// <summary>
/// Wire and storage compatibility. Field numbers are what stored records and clients depend on: once
/// released they never change. These fail on any change that would break either, as `buf breaking` would:
/// a field renumbered, retyped or removed without reserving its number, a generator that renumbers, or a
/// stored record that no longer reads as it was written.
/// </summary>
public class ProtoCompatibilityTests
{
    private static readonly string Compatibility = Path.Combine(AppContext.BaseDirectory, "Compatibility");

    private static readonly FileDescriptor[] Files = [EcsReflection.Descriptor, AgentReflection.Descriptor, LogsReflection.Descriptor, IamReflection.Descriptor, EnrollmentReflection.Descriptor, SchedulerReflection.Descriptor, EventsReflection.Descriptor, SecretsReflection.Descriptor, PeersReflection.Descriptor, StoreReflection.Descriptor];

    /// <summary>Every field of every message: "package.Message.field = number label type".</summary>
    private static IEnumerable<string> Fields() =>
        Files.SelectMany(f => f.MessageTypes).SelectMany(Nested).SelectMany(m => m.Fields.InFieldNumberOrder().Select(f =>
            $"{m.FullName}.{f.Name} = {f.FieldNumber} {(f.IsMap ? "map" : f.IsRepeated ? "repeated" : f.HasPresence && f.FieldType != FieldType.Message ? "optional" : "singular")} "
            + (f.FieldType switch { FieldType.Message => f.MessageType.FullName, FieldType.Enum => f.EnumType.FullName, var t => t.ToString().ToLowerInvariant() })));

    private static IEnumerable<MessageDescriptor> Nested(MessageDescriptor message) => message.NestedTypes.SelectMany(Nested).Prepend(message);

    [Fact]
    public void Every_released_field_keeps_its_number_label_and_type()
    {
        var released = File.ReadAllLines(Path.Combine(Compatibility, "fields.lock")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToHashSet(StringComparer.Ordinal);
        var now = Fields().ToHashSet(StringComparer.Ordinal);
        var broken = released.Where(f => !now.Contains(f)).ToList();
        Assert.True(broken.Count == 0, $"released fields changed or removed (renumbered, retyped, or gone without `reserved`):\n{string.Join("\n", broken.Take(20))}");

        // New fields are fine, once they are on record: then they are released too.
        var added = now.Where(f => !released.Contains(f)).ToList();
        Assert.True(added.Count == 0, $"new fields: add these lines to tests/EcsLite.Coordinator.Core.Tests/Compatibility/fields.lock:\n{string.Join("\n", added)}");
    }

    [Fact]
    public void A_number_once_used_is_never_used_again_by_another_field()
    {
        var released = File.ReadAllLines(Path.Combine(Compatibility, "fields.lock")).Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(' ')).ToDictionary(p => p[0], p => p[2], StringComparer.Ordinal);
        foreach (var message in Files.SelectMany(f => f.MessageTypes).SelectMany(Nested))
        {
            var numbers = released.Where(r => r.Key.StartsWith(message.FullName + ".", StringComparison.Ordinal) && !r.Key[(message.FullName.Length + 1)..].Contains('.'))
                .ToDictionary(r => int.Parse(r.Value, System.Globalization.CultureInfo.InvariantCulture), r => r.Key[(message.FullName.Length + 1)..]);
            foreach (var field in message.Fields.InFieldNumberOrder())
            {
                Assert.True(!numbers.TryGetValue(field.FieldNumber, out var owner) || owner == field.Name,
                    $"{message.FullName}.{field.Name} took number {field.FieldNumber}, released as {owner}");
            }
        }
    }

    /// <summary>
    /// Records written by the build before the generator pinned its numbers (binary, as they sit in a
    /// cluster store) read back to the same JSON: regenerating from a newer model must not change them.
    /// </summary>
    [Theory]
    [InlineData("stored-task")]
    [InlineData("stored-task-definition")]
    [InlineData("stored-service")]
    [InlineData("stored-container-instance")]
    public void A_record_stored_by_an_earlier_build_reads_the_same(string name)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Compatibility, $"{name}.pb"));
        IMessage record = name switch
        {
            "stored-task" => StoredTask.Parser.ParseFrom(bytes),
            "stored-task-definition" => StoredTaskDefinition.Parser.ParseFrom(bytes),
            "stored-service" => StoredService.Parser.ParseFrom(bytes),
            _ => StoredContainerInstance.Parser.ParseFrom(bytes),
        };

        var expected = File.ReadAllText(Path.Combine(Compatibility, $"{name}.json")).Trim();
        Assert.Equal(expected, JsonFormatter.Default.Format(record));
        Assert.Equal(bytes, record.ToByteArray()); // nothing it held went to unknown fields
    }

    [Fact]
    public void Regenerating_from_the_model_in_the_repository_changes_nothing()
    {
        var output = Generate(ModelPath());
        Assert.Equal(File.ReadAllText(Path.Combine(RepoPaths.Root, "proto", "ecslite", "v1", "ecs.proto")),
            File.ReadAllText(Path.Combine(output, "proto", "ecslite", "v1", "ecs.proto")));
        Assert.Equal(File.ReadAllText(Path.Combine(RepoPaths.Root, "coordinator", "EcsLite.Coordinator.Core", "Validation", "ShapeRules.g.cs")),
            File.ReadAllText(Path.Combine(output, "coordinator", "EcsLite.Coordinator.Core", "Validation", "ShapeRules.g.cs")));
    }

    [Fact]
    public void A_newer_model_keeps_every_number_gives_new_members_new_ones_and_reserves_those_it_drops()
    {
        // A newer model as AWS might publish one: Task's members in another order, one new, one gone.
        var model = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(ModelPath()))!.AsObject();
        var members = model["shapes"]!["Task"]!["members"]!.AsObject();
        var reordered = members.Reverse().Where(m => m.Key != "inferenceAccelerators").Select(m => (m.Key, m.Value!.DeepClone())).ToList();
        members.Clear();
        members["zoneRebalancedAt"] = new System.Text.Json.Nodes.JsonObject { ["shape"] = "Timestamp" };
        foreach (var (key, value) in reordered)
        {
            members[key] = value;
        }

        var newer = Path.Combine(Directory.CreateTempSubdirectory("ecslite-model").FullName, "ecs-api-model.json");
        File.WriteAllText(newer, model.ToJsonString());
        var generated = File.ReadAllText(Path.Combine(Generate(newer), "proto", "ecslite", "v1", "ecs.proto"));
        var task = generated[generated.IndexOf("message Task {", StringComparison.Ordinal)..];
        task = task[..(task.IndexOf("\n}", StringComparison.Ordinal) + 2)];

        foreach (var field in EcsLite.Api.V1.Task.Descriptor.Fields.InFieldNumberOrder().Where(f => f.Name != "inferenceAccelerators"))
        {
            Assert.Contains($" {field.Name} = {field.FieldNumber};", task, StringComparison.Ordinal);
        }

        var highest = EcsLite.Api.V1.Task.Descriptor.Fields.InFieldNumberOrder().Max(f => f.FieldNumber);
        Assert.Contains($"optional google.protobuf.Timestamp zoneRebalancedAt = {highest + 1};", task, StringComparison.Ordinal);
        Assert.Contains($"reserved {EcsLite.Api.V1.Task.Descriptor.FindFieldByName("inferenceAccelerators").FieldNumber};", task, StringComparison.Ordinal);
    }

    private static string ModelPath() => Path.Combine(RepoPaths.Root, "proto", "model", "ecs-api-model.json");

    /// <summary>Runs the generator against <paramref name="model"/>, writing under a temporary directory.</summary>
    private static string Generate(string model)
    {
        var output = Directory.CreateTempSubdirectory("ecslite-generated").FullName;
        var info = new ProcessStartInfo("python3") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { Path.Combine(RepoPaths.Root, "proto", "tools", "generate-ecs-proto.py"), model, "--out", output })
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, errors);
        return output;
    }
}
