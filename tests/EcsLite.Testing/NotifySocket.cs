using System.Net.Sockets;
using System.Text;

namespace EcsLite.Testing;

/// <summary>A unix datagram socket standing in for systemd's notification socket.</summary>
public sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly List<(DateTime At, string Message)> _messages = [];
    private readonly Task _receiving;

    public NotifySocket(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        _receiving = Task.Run(Receive);
    }

    public string Path { get; }

    public IReadOnlyList<string> Messages => [.. Received.Select(m => m.Message)];

    /// <summary>Every message with when it arrived (UTC), in order.</summary>
    public IReadOnlyList<(DateTime At, string Message)> Received
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    /// <summary>The time between each two of <paramref name="times"/>.</summary>
    public static List<TimeSpan> Gaps(IReadOnlyList<DateTime> times) => [.. times.Zip(times.Skip(1), (a, b) => b - a)];

    /// <summary>Gaps as a message shows them: seconds, two decimals.</summary>
    public static string Seconds(IEnumerable<TimeSpan> gaps) =>
        string.Join(", ", gaps.Select(g => g.TotalSeconds.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>When each WATCHDOG=1 arrived.</summary>
    public IReadOnlyList<DateTime> Watchdogs => [.. Received.Where(m => m.Message == "WATCHDOG=1").Select(m => m.At)];

    public void Dispose()
    {
        _socket.Dispose();
        _ = _receiving.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private void Receive()
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var length = _socket.Receive(buffer);
                lock (_messages)
                {
                    var at = DateTime.UtcNow;
                    _messages.AddRange(Encoding.UTF8.GetString(buffer, 0, length).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(m => (at, m)));
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }
}
