using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Schedules;
using EcsLite.Coordinator.Security;
using EcsLite.Coordinator.State;
using Grpc.Core;

namespace EcsLite.Coordinator.Schedules;

/// <summary>
/// EventBridge Scheduler's schedule actions; the core decides everything. Whoever creates or updates a
/// schedule must also be allowed the RunTask its fires will make (as EventBridge Scheduler asks for
/// iam:PassRole on the role it runs the target with): a schedule is never a way around a policy.
/// </summary>
public sealed class SchedulerService(ClusterStateMachine state, CallAuthorizer authorizer) : Scheduler.SchedulerBase
{
    private const string RunTaskMethod = "/ecslite.v1.Ecs/RunTask";

    public override Task<CreateScheduleResponse> CreateSchedule(CreateScheduleRequest request, ServerCallContext context)
    {
        RequireRunTask(request.Name, request.Target, context);
        return state.ApplyAsync((s, c) => ScheduleCommands.Create(s, request, c), context.CancellationToken);
    }

    public override Task<UpdateScheduleResponse> UpdateSchedule(UpdateScheduleRequest request, ServerCallContext context)
    {
        RequireRunTask(request.Name, request.Target, context);
        return state.ApplyAsync((s, c) => ScheduleCommands.Update(s, request, c), context.CancellationToken);
    }

    public override Task<DeleteScheduleResponse> DeleteSchedule(DeleteScheduleRequest request, ServerCallContext context) =>
        state.ApplyAsync((s, _) => ScheduleCommands.Delete(s, request), context.CancellationToken);

    public override Task<GetScheduleResponse> GetSchedule(GetScheduleRequest request, ServerCallContext context) =>
        Task.FromResult(ScheduleCommands.Get(state.Current, request));

    public override Task<ListSchedulesResponse> ListSchedules(ListSchedulesRequest request, ServerCallContext context) =>
        Task.FromResult(ScheduleCommands.List(state.Current, request));

    private void RequireRunTask(string name, Target? target, ServerCallContext context)
    {
        if (CallAuthenticator.Caller(context) is { IsRoot: false } caller && target?.EcsParameters is not null)
        {
            authorizer.Require(caller, authorizer.Describe(RunTaskMethod, ScheduleRunner.RunTaskRequest(name, target, 1), caller), context.Peer);
            authorizer.RequireSecretReads(caller, target.EcsParameters.TaskDefinitionArn, context.Peer);
        }
    }
}
