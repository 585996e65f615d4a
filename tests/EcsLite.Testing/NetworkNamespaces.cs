using System.Diagnostics;

namespace EcsLite.Testing;

/// <summary>
/// Hosts on one machine: network namespaces joined by veth pairs, made by the test and removed when it
/// is done. A "hub" namespace holds the coordinator; each host namespace gets a /30 link to it, and the
/// root namespace gets one too so the test itself can reach the coordinator. Traffic only ever goes to
/// addresses inside these namespaces.
/// </summary>
public sealed class NetworkNamespaces : IDisposable
{
    private readonly string _prefix = $"el{Environment.ProcessId % 10000}{Random.Shared.Next(100, 999)}";
    private static readonly HashSet<int> OctetsTaken = []; // by the instances of this process
    private readonly int _octet = FreeOctet();
    private readonly List<string> _namespaces = [];
    private readonly List<string> _rootLinks = [];
    private readonly Dictionary<string, string> _hostLinks = [];
    private int _links;

    public NetworkNamespaces()
    {
        Hub = Add("hub");
        // Root <-> hub, so the test process reaches the coordinator inside the hub namespace.
        HubAddressFromRoot = Link(root: true, Hub);
    }

    /// <summary>The namespace the coordinator runs in.</summary>
    public string Hub { get; }

    /// <summary>The hub's address on the link to the root namespace.</summary>
    public string HubAddressFromRoot { get; }

    /// <summary>A new host namespace linked to the hub; returns its name and the hub's address as seen from it.</summary>
    public (string Namespace, string HubAddress) AddHost(string name)
    {
        var ns = Add(name);
        return (ns, Link(root: false, ns));
    }

    public static IReadOnlyList<string> Exec(string ns) => ["ip", "netns", "exec", ns];

    /// <summary>Cuts (or restores) a host's link to the hub: a network partition, as far as the host is concerned.</summary>
    public void SetLink(string ns, bool up) => Run(["ip", "-n", ns, "link", "set", _hostLinks[ns], up ? "up" : "down"]);

    public void Dispose()
    {
        lock (OctetsTaken)
        {
            OctetsTaken.Remove(_octet);
        }

        foreach (var link in _rootLinks)
        {
            Run(["ip", "link", "del", link], check: false);
        }

        foreach (var ns in _namespaces)
        {
            Run(["ip", "netns", "del", ns], check: false);
        }
    }

    /// <summary>
    /// A 10.X.0.0/16 for this instance's links that no address on the machine is in: not this process's
    /// other instances, nor links a killed test run left behind, whose route would take the traffic.
    /// </summary>
    private static int FreeOctet()
    {
        var addresses = Run(["ip", "-o", "-4", "addr", "show"]);
        lock (OctetsTaken)
        {
            var free = Enumerable.Range(100, 150).Where(o => !OctetsTaken.Contains(o) && !addresses.Contains($" 10.{o}.", StringComparison.Ordinal)).ToList();
            var octet = free[Random.Shared.Next(free.Count)];
            OctetsTaken.Add(octet);
            return octet;
        }
    }

    private string Add(string name)
    {
        var ns = $"{_prefix}-{name}";
        Run(["ip", "netns", "add", ns]);
        _namespaces.Add(ns);
        Run(["ip", "-n", ns, "link", "set", "lo", "up"]);
        return ns;
    }

    /// <summary>A veth pair from <paramref name="ns"/> (or the root) to the hub with a /30 subnet; returns the hub's address.</summary>
    private string Link(bool root, string? ns = null)
    {
        var n = ++_links;
        var outer = $"{_prefix}o{n}";
        var hubSide = $"{_prefix}h{n}";
        var subnet = $"10.{_octet}.{n}";
        Run(["ip", "link", "add", outer, "type", "veth", "peer", "name", hubSide]);
        Run(["ip", "link", "set", hubSide, "netns", Hub]);
        Run(["ip", "-n", Hub, "addr", "add", $"{subnet}.1/30", "dev", hubSide]);
        Run(["ip", "-n", Hub, "link", "set", hubSide, "up"]);
        if (root)
        {
            _rootLinks.Add(outer);
            Run(["ip", "addr", "add", $"{subnet}.2/30", "dev", outer]);
            Run(["ip", "link", "set", outer, "up"]);
        }
        else
        {
            _hostLinks[ns!] = outer;
            Run(["ip", "link", "set", outer, "netns", ns!]);
            Run(["ip", "-n", ns!, "addr", "add", $"{subnet}.2/30", "dev", outer]);
            Run(["ip", "-n", ns!, "link", "set", outer, "up"]);
        }

        return $"{subnet}.1";
    }

    /// <summary>Runs a command; returns what it printed.</summary>
    private static string Run(string[] command, bool check = true)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in command.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', command)} failed: {error}");
        }

        return output.Result;
    }
}
