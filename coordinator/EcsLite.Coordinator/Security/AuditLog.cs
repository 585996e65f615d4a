using System.Text.Json;
using System.Threading.Channels;
using EcsLite.Coordinator.Core.Security;
using EcsLite.Coordinator.Core.Validation;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Security;

/// <summary>
/// DATA_DIR/audit.log (0600): one JSON line per call that changed something or was refused, with
/// time, principal, action, resources, result and source address; never a credential or a request
/// body. Written by one background writer from a bounded queue, so a flood of calls cannot stall the
/// API or grow memory: records that do not fit are counted, and the count is written as its own line.
/// The file is rotated at 16 MiB (one older file, audit.log.1, is kept).
/// </summary>
public sealed partial class AuditLog : BackgroundService
{
    public const long MaxBytes = 16 * 1024 * 1024;

    /// <summary>A record names at most this many resources (a DescribeTasks names up to 100), each at most an ARN's 1,600 characters.</summary>
    public const int MaxResources = 100;
    private const int MaxResourceCharacters = 1600;
    private readonly Channel<string> _queue = Channel.CreateBounded<string>(new BoundedChannelOptions(10_000)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.DropWrite,
    });

    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly ILogger<AuditLog> _logger;
    private long _dropped;

    public AuditLog(IOptions<CoordinatorOptions> options, TimeProvider time, ILogger<AuditLog> logger)
    {
        _path = Path.Combine(options.Value.DataDir, "audit.log");
        _time = time;
        _logger = logger;
    }

    public string FilePath => _path;

    /// <summary>A call that was let in and ran: its result is OK or the gRPC status it ended with.</summary>
    public void Record(Principal caller, AuthorizationRequest request, string peer, string result) =>
        Enqueue(caller.Arn, request.Action, request.Resources.IsDefaultOrEmpty ? ["*"] : [.. request.Resources.Take(MaxResources)], peer, result);

    /// <summary>A call refused before it ran: not authenticated (no caller) or not authorized.</summary>
    public void Refused(Principal? caller, string action, string? resource, string peer, string errorType) =>
        Enqueue(caller?.Arn ?? "anonymous", action, resource is null ? [] : [resource], peer, errorType);

    /// <summary>What a principal without an access key did: a host enrolling with a join token, an agent with its certificate.</summary>
    public void Other(string principal, string action, string? resource, string peer, string result) =>
        Enqueue(principal, action, resource is null ? [] : [resource], peer, result);

    private void Enqueue(string principal, string action, string[] resources, string peer, string result)
    {
        var bounded = Array.ConvertAll(resources, r => CallerText.Quote(r, MaxResourceCharacters));
        var line = JsonSerializer.Serialize(new AuditRecord(_time.GetUtcNow().ToString("O"), principal, action, bounded, result, CallerText.Quote(peer)), AuditJson.Default.AuditRecord);
        if (!_queue.Writer.TryWrite(line))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken))
            {
                try
                {
                    await WriteBatchAsync(reader, stoppingToken);
                }
                catch (IOException e)
                {
                    // A full disk or a removed directory: said in the service's log, and tried again with the next records.
                    LogFailed(_logger, _path, e);
                    while (reader.TryRead(out _))
                    {
                        Interlocked.Increment(ref _dropped);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task WriteBatchAsync(ChannelReader<string> reader, CancellationToken cancellationToken)
    {
        await using var file = Open();
        await using (var writer = new StreamWriter(file, leaveOpen: true))
        {
            while (reader.TryRead(out var line))
            {
                await writer.WriteLineAsync(line);
            }

            if (Interlocked.Exchange(ref _dropped, 0) is var dropped and > 0)
            {
                await writer.WriteLineAsync($$"""{"time":"{{_time.GetUtcNow():O}}","dropped":{{dropped}}}""");
            }

            await writer.FlushAsync(cancellationToken);
        }

        if (file.Length > MaxBytes)
        {
            file.Close();
            File.Move(_path, _path + ".1", overwrite: true);
        }
    }

    private FileStream Open() => new(_path, new FileStreamOptions
    {
        Mode = FileMode.Append,
        Access = FileAccess.Write,
        Share = FileShare.Read,
        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
    });

    [LoggerMessage(Level = LogLevel.Error, Message = "The audit log {Path} could not be written; the records of this moment are counted as dropped")]
    private static partial void LogFailed(ILogger logger, string path, Exception exception);
}

public sealed record AuditRecord(string Time, string Principal, string Action, string[] Resources, string Result, string Source);

[System.Text.Json.Serialization.JsonSerializable(typeof(AuditRecord))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class AuditJson : System.Text.Json.Serialization.JsonSerializerContext;
