using System.Globalization;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.TaskDefinitions;

namespace EcsLite.Coordinator.Core.Tasks;

/// <summary>A RunTask/StartTask call's overrides applied to the registered task definition: what the agent runs.</summary>
public static class TaskOverrides
{
    /// <summary>
    /// The definition the task runs: the registered object itself when nothing in it is overridden
    /// (so the task's store record can name the revision instead of copying it), else a changed clone.
    /// </summary>
    public static TaskDefinition Apply(TaskDefinition registered, TaskOverride? overrides)
    {
        if (overrides is null || (!overrides.HasCpu && !overrides.HasMemory && overrides.ContainerOverrides.Count == 0))
        {
            return registered;
        }

        var definition = registered.Clone();

        if (overrides.HasCpu)
        {
            definition.Cpu = (TaskSize.ParseCpu(overrides.Cpu) ?? throw EcsException.InvalidParameter("overrides.cpu", $"'{overrides.Cpu}' is not a CPU size (units such as 512, or '1 vCPU').")).ToString(CultureInfo.InvariantCulture);
        }

        if (overrides.HasMemory)
        {
            definition.Memory = (TaskSize.ParseMemory(overrides.Memory) ?? throw EcsException.InvalidParameter("overrides.memory", $"'{overrides.Memory}' is not a memory size (MiB such as 1024, or '1 GB').")).ToString(CultureInfo.InvariantCulture);
        }

        for (var i = 0; i < overrides.ContainerOverrides.Count; i++)
        {
            var change = overrides.ContainerOverrides[i];
            var field = $"overrides.containerOverrides[{i}]";
            var container = definition.ContainerDefinitions.FirstOrDefault(c => c.Name == change.Name)
                ?? throw EcsException.InvalidParameter($"{field}.name", $"the task definition has no container named '{change.Name}' (it has {string.Join(", ", definition.ContainerDefinitions.Select(c => c.Name))}).");
            if (change.Command.Count > 0)
            {
                container.Command.Clear();
                container.Command.Add(change.Command);
            }

            foreach (var variable in change.Environment)
            {
                var existing = container.Environment.FirstOrDefault(e => e.Name == variable.Name);
                if (existing is not null)
                {
                    existing.Value = variable.Value;
                }
                else
                {
                    container.Environment.Add(variable.Clone());
                }
            }

            if (change.HasCpu)
            {
                container.Cpu = change.Cpu >= 0 ? change.Cpu : throw EcsException.InvalidParameter($"{field}.cpu", "must not be negative.");
            }

            if (change.HasMemory)
            {
                container.Memory = change.Memory > 0 ? change.Memory : throw EcsException.InvalidParameter($"{field}.memory", "must be a positive number of MiB.");
            }

            if (change.HasMemoryReservation)
            {
                container.MemoryReservation = change.MemoryReservation > 0 ? change.MemoryReservation : throw EcsException.InvalidParameter($"{field}.memoryReservation", "must be a positive number of MiB.");
            }

            if (container.HasMemory && container.HasMemoryReservation && container.MemoryReservation > container.Memory)
            {
                throw EcsException.InvalidParameter($"{field}.memoryReservation", $"({container.MemoryReservation} MiB) must not exceed memory ({container.Memory} MiB).");
            }
        }

        return definition;
    }
}
