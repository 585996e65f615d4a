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

    public static TheoryData<string> RefusedNames() => new(TaskDefinitionCases.RefusedCorpus().Select(c => c.Name));

    [Theory]
    [MemberData(nameof(RefusedNames))]
    public void Real_task_definitions_ECS_refuses_are_refused_as_ECS_refuses_them(string name)
    {
        var (_, json, errorType, field) = TaskDefinitionCases.RefusedCorpus().Single(c => c.Name == name);
        var error = Assert.Throws<EcsException>(() => TaskDefinitionValidator.Validate(Parse(json)));
        Assert.Equal((errorType, field), (error.ErrorType, error.Field));
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

    /// <summary>
    /// ECS's documented forms (RegisterTaskDefinition: cpu "as an integer using CPU units, for example 1024,
    /// or as a string using vCPUs, for example 1 vCPU or 1 vcpu"; memory "using MiB, for example 1024, or
    /// using GB, for example 1GB or 1 GB") and what ECS normalises from real task definitions (".25 vcpu",
    /// ".5 gb"), with what ECS refuses.
    /// </summary>
    [Theory]
    [InlineData("cpu", "256", 256)]
    [InlineData("cpu", "1024", 1024)]
    [InlineData("cpu", "1 vCPU", 1024)]
    [InlineData("cpu", "1 vcpu", 1024)]
    [InlineData("cpu", "1 VCPU", 1024)]
    [InlineData("cpu", "0.25 vcpu", 256)]
    [InlineData("cpu", ".25 vcpu", 256)]
    [InlineData("cpu", ".5 vCPU", 512)]
    [InlineData("cpu", "2vCPU", 2048)]
    [InlineData("cpu", " 4 VCPU ", 4096)]
    [InlineData("memory", "512", 512)]
    [InlineData("memory", "1GB", 1024)]
    [InlineData("memory", "1 GB", 1024)]
    [InlineData("memory", "2 gb", 2048)]
    [InlineData("memory", ".5 gb", 512)]
    [InlineData("memory", "0.5GB", 512)]
    [InlineData("memory", "30GB", 30720)]
    [InlineData("cpu", "", null)]
    [InlineData("cpu", "fast", null)]
    [InlineData("cpu", "1 GB", null)]
    [InlineData("cpu", "0.1 vCPU", null)]
    [InlineData("cpu", "-256", null)]
    [InlineData("cpu", "0", null)]
    [InlineData("cpu", "1,5 vCPU", null)]
    [InlineData("cpu", ".", null)]
    [InlineData("memory", "1 vCPU", null)]
    [InlineData("memory", "512 MB", null)]
    [InlineData("memory", "1.0001 GB", null)]
    public void Task_cpu_and_memory_strings_are_read_as_ECS_reads_them(string field, string text, int? value) =>
        Assert.Equal(value, field == "cpu" ? TaskSize.ParseCpu(text) : TaskSize.ParseMemory(text));

    [Theory]
    [InlineData("${IMAGE_URL}", "Container.image contains invalid characters")]
    [InlineData("${phoenix_container_image}", "Container.image contains invalid characters")]
    [InlineData("nginx:{{ env \"TAG\" }}", "Container.image contains invalid characters")]
    [InlineData("busybox latest", "Container.image contains invalid characters")]
    [InlineData("nginx@sha256:abc", "invalid digest")]
    [InlineData("", "is required")]
    public void Image_references_are_checked_with_ECSs_rule_naming_what_is_wrong(string image, string message)
    {
        var request = Fixtures.Simple("image-check");
        request.ContainerDefinitions[0].Image = image;
        var error = Assert.Throws<EcsException>(() => TaskDefinitionValidator.Validate(request));
        Assert.Equal(("ClientException", "containerDefinitions[0].image"), (error.ErrorType, error.Field));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("httpd:2.4")]
    [InlineData("public.ecr.aws/docker/library/nginx:1.27-alpine")]
    [InlineData("012345678910.dkr.ecr.us-east-1.amazonaws.com/app:v1#build")]
    [InlineData("registry.local:5000/team/app@sha256:94afd1f2e64d908bc90dbca0035a5b567f2ece6c8e1f32c6f1c8e8a7e1b1e4c0")]
    [InlineData("Ecslite/Upper:1")] // ECS takes it; Docker does not, and the agent says so (CannotPullContainerError)
    public void Image_references_ECS_takes_register(string image)
    {
        var request = Fixtures.Simple("image-ok");
        request.ContainerDefinitions[0].Image = image;
        TaskDefinitionValidator.Validate(request);
    }

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
