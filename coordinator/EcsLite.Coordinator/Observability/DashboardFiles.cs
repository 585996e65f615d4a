using System.Collections.Frozen;
using System.Text;

namespace EcsLite.Coordinator.Observability;

/// <summary>
/// The read-only dashboard's static files (Dashboard/ in this project, embedded in the program: no build
/// step, no Node.js at run time), served on the coordinator's TLS port under /dashboard/. The files hold
/// no data and need no credential; everything they show comes from the JSON API, signed in the browser
/// with the access key the user signs in with. A strict content security policy keeps the page to its
/// own scripts and its own origin.
/// </summary>
public sealed class DashboardFiles
{
    private const string Policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    private static readonly FrozenDictionary<string, string> ContentTypes = new Dictionary<string, string>
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
    }.ToFrozenDictionary();

    private readonly FrozenDictionary<string, byte[]> _files;

    public DashboardFiles(Microsoft.Extensions.Options.IOptions<CoordinatorOptions> options)
    {
        var assembly = typeof(DashboardFiles).Assembly;
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("dashboard/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            files[name["dashboard/".Length..]] = copy.ToArray();
        }

        // The page signs for the coordinator's region (not a secret), so it is written into the page.
        files["index.html"] = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(files["index.html"]).Replace("{{REGION}}", options.Value.Region, StringComparison.Ordinal));
        _files = files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public IEnumerable<string> Names => _files.Keys;

    public async Task ServeAsync(HttpContext http, string? file)
    {
        if (http.Request.Path.Value == "/dashboard")
        {
            http.Response.Redirect("/dashboard/"); // the page's files are relative to the directory
            return;
        }

        var name = string.IsNullOrEmpty(file) ? "index.html" : file;
        if (!_files.TryGetValue(name, out var content) || !ContentTypes.TryGetValue(Path.GetExtension(name), out var type))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        http.Response.ContentType = type;
        http.Response.Headers.ContentSecurityPolicy = Policy;
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers["Referrer-Policy"] = "no-referrer";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.Body.WriteAsync(content, http.RequestAborted);
    }
}
