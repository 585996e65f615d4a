using System.Diagnostics;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;

namespace EcsLite.Coordinator.Store;

/// <summary>
/// Which of the coordinators sharing one etcd store leads: the one holding the key
/// <see cref="Key"/>, put under an etcd lease it keeps alive. The leader serves; the others wait to lead
/// (active/standby, docs/high-availability.md). From the moment it leads, every write the store sends
/// also compares that key's revision (the store's fence), so a leader that lost its lease (paused, cut
/// off from etcd, revoked) can no longer write once another may have taken over; it stops acting
/// itself before its lease can have expired in etcd: it holds still while the lease is in doubt, acts again
/// if etcd then renews it (an etcd election, which may take seconds, ends the doubt that way), and gives up
/// the lead (<see cref="Lost"/>) when etcd says the lease ended or the doubt lasts a second time to live.
/// </summary>
public sealed partial class EtcdLeadership : IAsyncDisposable
{
    /// <summary>Outside the cluster state's "/" prefix, as the IAM and secrets records are.</summary>
    public const string Key = "coordinators/leader";

    private readonly EtcdKeyValueStore _store;
    private readonly long _lease;
    private readonly TimeSpan _ttl;
    private readonly ILogger _logger;
    private readonly Action<bool> _holding;
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _keepAlive = Task.CompletedTask;

    /// <summary>How long before its lease could end in etcd a leader that could not renew it holds still.</summary>
    private static readonly TimeSpan Margin = TimeSpan.FromMilliseconds(500);

    private EtcdLeadership(EtcdKeyValueStore store, long lease, TimeSpan ttl, Action<bool> holding, ILogger logger) =>
        (_store, _lease, _ttl, _holding, _logger) = (store, lease, ttl, holding, logger);

    /// <summary>Cancelled once this coordinator may no longer count on leading (it must stop acting).</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>The revision at which this coordinator took the lead.</summary>
    public long Revision { get; private set; }

    /// <summary>
    /// Waits until this coordinator leads (another's lease ended, or nobody led), then fences the store's
    /// writes with the leadership key. <paramref name="self"/> is what the key holds while it leads (the others
    /// log its name and forward changes to its address); <paramref name="leader"/> is told who leads while
    /// this one waits (null while nobody does, and once this one has won). <paramref name="holding"/> is told when
    /// the leader must hold still (true: its lease is in doubt) and when it may act again (false).
    /// </summary>
    public static async Task<EtcdLeadership> CampaignAsync(EtcdKeyValueStore store, State.LeaderRecord self, TimeSpan ttl, Action<State.LeaderRecord?> leader,
        ILogger logger, CancellationToken cancellationToken, Action<bool>? holding = null)
    {
        var connection = store.Connection;
        var grant = await connection.LeaseClient.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(ttl.TotalSeconds) }, cancellationToken: cancellationToken);
        var leadership = new EtcdLeadership(store, grant.ID, TimeSpan.FromSeconds(grant.TTL), holding ?? (_ => { }), logger);
        leadership._keepAlive = Task.Run(leadership.KeepAliveAsync, CancellationToken.None); // the lease lives while it waits too
        try
        {
            using var campaigning = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, leadership.Lost);
            cancellationToken = campaigning.Token;
            var key = store.EtcdKey(Key);
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var response = await connection.KVClient.TxnAsync(new TxnRequest
                {
                    Compare = { new Etcdserverpb.Compare { Key = key, Target = Etcdserverpb.Compare.Types.CompareTarget.Version, Result = Etcdserverpb.Compare.Types.CompareResult.Equal, Version = 0 } },
                    Success = { new RequestOp { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFromUtf8(self.Encode()), Lease = grant.ID } } },
                    Failure = { new RequestOp { RequestRange = new RangeRequest { Key = key } } },
                }, cancellationToken: cancellationToken);
                if (response.Succeeded)
                {
                    leader(null);
                    leadership.Revision = response.Header.Revision;
                    store.Fence(new Compare(Key, CompareTarget.ModRevision, CompareResult.Equal, leadership.Revision));
                    LogLeading(logger, leadership.Revision, grant.TTL);
                    return leadership;
                }

                if (response.Responses[0].ResponseRange.Kvs is [var holder])
                {
                    var record = State.LeaderRecord.Parse(holder.Value.ToStringUtf8());
                    LogWaiting(logger, record.Name);
                    leader(record);
                    await WaitGoneAsync(connection, key, response.Header.Revision + 1, cancellationToken);
                    leader(null);
                }
            }
        }
        catch
        {
            await leadership.DisposeAsync();
            throw;
        }
    }

    /// <summary>Returns once <paramref name="key"/> is deleted (its holder resigned or its lease ended) at or after <paramref name="from"/>.</summary>
    private static async Task WaitGoneAsync(dotnet_etcd.interfaces.IConnection connection, ByteString key, long from, CancellationToken cancellationToken)
    {
        using var call = connection.WatchClient.Watch(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = key, StartRevision = from } }, cancellationToken);
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            var response = call.ResponseStream.Current;
            if (response.Canceled || response.CompactRevision > 0 || response.Events.Any(e => e.Type == Mvccpb.Event.Types.EventType.Delete))
            {
                return; // gone, or history lost: either way, try again
            }
        }
    }

    /// <summary>
    /// Renews the lease every sixth of its time to live, and at once again after a failed renewal (the
    /// member it spoke to may be gone: the channel tries another; etcd may be electing a new raft leader,
    /// which takes one to a few seconds). A renewal counts from when it was asked for, so etcd's own expiry is
    /// never earlier than this coordinator believes (a new raft leader extends leases, never shortens them).
    /// <see cref="Margin"/> before that expiry the leader holds still; a renewal after that proves the lease,
    /// and so the leadership key, lived through (nobody else can have led), and it acts again. It gives up
    /// when etcd says the lease ended, or after a second time to live without an answer: cut off from etcd
    /// rather than waiting out an election, its agents are better off with another coordinator.
    /// </summary>
    private async Task KeepAliveAsync()
    {
        var connection = _store.Connection;
        var renewed = Stopwatch.GetTimestamp();
        var held = false;
        AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse>? call = null;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var asked = Stopwatch.GetTimestamp();
                try
                {
                    // A round's time is kept here, not by the call's cancellation: a fresh stream to an etcd member without
                    // quorum waits for etcd's answer without heeding it (seen with etcd 3.4: renewals stopped for good).
                    var round = Stopwatch.GetTimestamp();
                    TimeSpan Left() => _ttl / 6 - Stopwatch.GetElapsedTime(round);
                    call ??= connection.LeaseClient.LeaseKeepAlive(cancellationToken: _stop.Token);
                    await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = _lease }).WaitAsync(Left(), _stop.Token);
                    if (!await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Left(), _stop.Token))
                    {
                        throw new IOException("etcd ended the keep-alive stream");
                    }

                    if (call.ResponseStream.Current.TTL <= 0)
                    {
                        Lose("its lease expired or was revoked in etcd");
                        return;
                    }

                    if (held)
                    {
                        if (!await StillHeldAsync())
                        {
                            Lose("the leadership key is no longer this coordinator's");
                            return;
                        }

                        held = false;
                        LogConfirmed(_logger, Stopwatch.GetElapsedTime(renewed).TotalSeconds);
                        _holding(false);
                    }

                    renewed = asked;
                }
                catch (Exception e) when (!_stop.IsCancellationRequested)
                {
                    call?.Dispose();
                    call = null;
                    var since = Stopwatch.GetElapsedTime(renewed);
                    if (since > 2 * _ttl - Margin)
                    {
                        Lose($"its lease was not renewed for {since.TotalSeconds:0.0} s ({e.Message})");
                        return;
                    }

                    if (!held && Revision > 0 && since > _ttl - Margin) // leading, not waiting to
                    {
                        held = true;
                        LogInDoubt(_logger, since.TotalSeconds, e.Message);
                        _holding(true);
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(50), _stop.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                await Task.Delay(_ttl / 6, _stop.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        finally
        {
            call?.Dispose();
        }
    }

    /// <summary>Whether the leadership key is still the one this coordinator put (only a hand in etcd deletes it while the lease lives).</summary>
    private async Task<bool> StillHeldAsync()
    {
        var key = await _store.Connection.KVClient.RangeAsync(new RangeRequest { Key = _store.EtcdKey(Key) }, deadline: DateTime.UtcNow.Add(_ttl / 6));
        return key.Kvs is [var kv] && kv.Lease == _lease && kv.ModRevision == Revision;
    }

    private void Lose(string why)
    {
        LogLost(_logger, why);
        _lost.Cancel();
    }

    /// <summary>Resigns: the lease is revoked, which deletes the key, so a waiting coordinator leads at once.</summary>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _keepAlive.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        try
        {
            await _store.Connection.LeaseClient.LeaseRevokeAsync(new LeaseRevokeRequest { ID = _lease }, deadline: DateTime.UtcNow.AddSeconds(5));
        }
        catch (RpcException e)
        {
            LogResignFailed(_logger, e.Status.Detail); // the lease then ends on its own
        }

        _stop.Dispose();
        _lost.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Leading the coordinators of this store (from revision {Revision}; lease {Ttl} s)")]
    private static partial void LogLeading(ILogger logger, long revision, long ttl);

    [LoggerMessage(Level = LogLevel.Information, Message = "Waiting to lead: {Holder} leads the coordinators of this store")]
    private static partial void LogWaiting(ILogger logger, string holder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lead in doubt: the lease was not renewed for {Seconds:0.0} s ({Why}); holding still (no changes decided, nothing sent to agents) until etcd answers")]
    private static partial void LogInDoubt(ILogger logger, double seconds, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "Lead confirmed: etcd renewed the lease {Seconds:0.0} s after the last renewal; acting again")]
    private static partial void LogConfirmed(ILogger logger, double seconds);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Leadership lost: {Why}; this coordinator stops acting")]
    private static partial void LogLost(ILogger logger, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not resign the lead ({Detail}); another coordinator leads once the lease ends")]
    private static partial void LogResignFailed(ILogger logger, string detail);
}
