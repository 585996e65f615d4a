namespace EcsLite.Security;

/// <summary>
/// Files that hold keys, credentials and certificates: written whole to a temporary file with their
/// mode set before anything is in them, flushed to disk, then moved into place, so a crash leaves the
/// old file or the new one, and a secret is never readable by others, not even for a moment.
/// </summary>
public static class PrivateFile
{
    public static void Write(string path, string text, bool secret = true)
    {
        var mode = secret ? UnixFileMode.UserRead | UnixFileMode.UserWrite
            : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = mode }))
        {
            File.SetUnixFileMode(temporary, mode); // a temporary file left by a crash keeps its old mode otherwise
            file.Write(System.Text.Encoding.UTF8.GetBytes(text));
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
