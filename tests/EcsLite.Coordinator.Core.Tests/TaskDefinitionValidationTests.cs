using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Testing;
using static EcsLite.Coordinator.Core.Tests.Fixtures;

namespace EcsLite.Coordinator.Core.Tests;

public class TaskDefinitionValidationTests
{
    public static TheoryData<string> CorpusNames() => new(TaskDefinitionCases.Corpus().Select(c => c.Name));

    public static TheoryData<string> InvalidCases() => new(TaskDefinitionCases.Invalid.Select(c => c.Name));

    [Fact]
    public void The_corpus_is_large_and_the_invalid_table_covers_many_rules()
    {
        Assert.True(TaskDefinitionCases.Corpus().Count() >= 15);
        Assert.True(TaskDefinitionCases.Invalid.Count >= 30);
        Assert.Equal(TaskDefinitionCases.Invalid.Count, TaskDefinitionCases.Invalid.Select(c => c.Json).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(CorpusNames))]
    public void Realistic_task_definitions_are_valid(string name)
    {
        var json = TaskDefinitionCases.Corpus().Single(c => c.Name == name).Json;
        TaskDefinitionValidator.Validate(Parse(json));
    }

    [Fact]
    public void The_base_of_the_invalid_cases_is_itself_valid()
    {
        TaskDefinitionValidator.Validate(Parse(TaskDefinitionCases.Base));
    }

    [Theory]
    [MemberData(nameof(InvalidCases))]
    public void Invalid_task_definitions_are_refused_naming_the_field(string name)
    {
        var invalid = TaskDefinitionCases.Invalid.Single(c => c.Name == name);
        var error = Assert.Throws<EcsException>(() => TaskDefinitionValidator.Validate(Parse(invalid.Json)));
        Assert.Equal(invalid.ErrorType, error.ErrorType);
        Assert.Equal(invalid.Field, error.Field);
        Assert.StartsWith(invalid.Field + ": ", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("256", 256)]
    [InlineData("1024", 1024)]
    [InlineData("1 vCPU", 1024)]
    [InlineData("0.25 vcpu", 256)]
    [InlineData("2vCPU", 2048)]
    [InlineData(" 4 VCPU ", 4096)]
    public void Task_cpu_accepts_units_and_vcpus(string text, int units) => Assert.Equal(units, TaskSize.ParseCpu(text));

    [Theory]
    [InlineData("512", 512)]
    [InlineData("2 GB", 2048)]
    [InlineData("0.5 gb", 512)]
    [InlineData("30GB", 30720)]
    public void Task_memory_accepts_mib_and_gb(string text, int mib) => Assert.Equal(mib, TaskSize.ParseMemory(text));

    [Theory]
    [InlineData("")]
    [InlineData("fast")]
    [InlineData("1 GB")]
    [InlineData("0.1 vCPU")]
    [InlineData("-256")]
    [InlineData("0")]
    public void Task_cpu_rejects_what_is_not_a_cpu_quantity(string text) => Assert.Null(TaskSize.ParseCpu(text));

    [Theory]
    [InlineData(256, 512, true)]
    [InlineData(256, 2048, true)]
    [InlineData(256, 3072, false)]
    [InlineData(512, 4096, true)]
    [InlineData(1024, 2048, true)]
    [InlineData(1024, 9216, false)]
    [InlineData(4096, 30720, true)]
    [InlineData(8192, 20480, true)]
    [InlineData(8192, 18432, false)]
    [InlineData(16384, 122880, true)]
    [InlineData(16384, 36864, false)]
    [InlineData(384, 1024, false)]
    public void Fargate_sizes_follow_the_published_table(int cpu, int memory, bool valid) =>
        Assert.Equal(valid, TaskSize.IsFargateSize(cpu, memory));
}
