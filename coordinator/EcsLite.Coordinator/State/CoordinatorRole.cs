using System.Text.Json;
using EcsLite.Coordinator.Core;

namespace EcsLite.Coordinator.State;

/// <summary>
/// Whether this coordinator leads, and who does when it does not. With the embedded store it leads from the
/// start. Coordinators sharing an etcd store follow until they win the lead: they answer reads from the state
/// they keep current by watching the store, and forward every change to the leader
/// (<see cref="Api.LeaderForwarder"/>). Placement, services, schedules and the purge run on the leader only.
/// </summary>
public sealed class CoordinatorRole
{
    private readonly TaskCompletionSource _leading = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private LeaderRecord? _leader;
    private TaskCompletionSource _acting = Acts();

    /// <summary>Completes once this coordinator leads (and has loaded the state as leader).</summary>
    public Task Leading => _leading.Task;

    public bool IsLeader => _leading.Task.IsCompleted;

    /// <summary>Completes at the next change of leader (or of this coordinator's role).</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>The leader as the store names it, while this coordinator follows; null while nobody leads.</summary>
    public LeaderRecord? Leader => Volatile.Read(ref _leader);

    /// <summary>
    /// Complete unless the leader holds still: its lease is in doubt (etcd could not renew it in time, as during
    /// an etcd election), so until etcd answers it runs no command and sends agents nothing. The command thread
    /// and each agent's stream wait on it; a coordinator that follows never holds.
    /// </summary>
    public Task Acting => Volatile.Read(ref _acting).Task;

    public void Hold()
    {
        if (Volatile.Read(ref _acting).Task.IsCompleted)
        {
            Volatile.Write(ref _acting, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
    }

    public void Resume() => Volatile.Read(ref _acting).TrySetResult();

    private static TaskCompletionSource Acts()
    {
        var acting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        acting.SetResult();
        return acting;
    }

    public void Lead()
    {
        _leading.TrySetResult();
        Signal();
    }

    public void Follow(LeaderRecord? leader)
    {
        Volatile.Write(ref _leader, leader);
        Signal();
    }

    /// <summary>
    /// The leader to forward a change to, null when this coordinator leads; waits up to <paramref name="wait"/>
    /// for one (an election takes seconds), then refuses the change in ECS's words.
    /// </summary>
    public async Task<LeaderRecord?> LeaderAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            var changed = Changed;
            if (IsLeader)
            {
                return null;
            }

            if (Leader is { Address.Length: > 0 } leader)
            {
                return leader;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new EcsException(EcsErrorType.ServerException,
                    "No coordinator leads this cluster now (the cluster store may have lost its quorum, or an election is under way): changes are refused until one does; reads are answered.");
            }

            await changed.WaitAsync(left, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private void Signal() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}

/// <summary>What the leadership key holds: the leader's name (for logs) and the address the others forward to.</summary>
public sealed record LeaderRecord(string Name, string Address)
{
    public string Encode() => JsonSerializer.Serialize(new Dictionary<string, string> { ["name"] = Name, ["address"] = Address });

    /// <summary>The record in a leadership key's value; an unreadable one is a leader without an address.</summary>
    public static LeaderRecord Parse(string value)
    {
        try
        {
            var fields = JsonSerializer.Deserialize<Dictionary<string, string>>(value);
            return new LeaderRecord(fields?.GetValueOrDefault("name") ?? value, fields?.GetValueOrDefault("address") ?? "");
        }
        catch (JsonException)
        {
            return new LeaderRecord(value, "");
        }
    }
}
