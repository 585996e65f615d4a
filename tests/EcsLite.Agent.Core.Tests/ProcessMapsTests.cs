namespace EcsLite.Agent.Core.Tests;

public class ProcessMapsTests
{
    [Fact]
    public void Only_read_only_mappings_of_files_are_given_back()
    {
        string[] maps =
        [
            "55c2d99e7000-55c2d99e9000 r--p 00000000 fe:00 247270                     /usr/lib/ecslite/ecslite-agent",
            "55c2d99e9000-55c2d99ee000 r-xp 00002000 fe:00 247270                     /usr/lib/ecslite/ecslite-agent",
            "55c2d99f2000-55c2d99f3000 rw-p 0000a000 fe:00 247270                     /usr/lib/ecslite/ecslite-agent",
            "55c30f0f6000-55c30f117000 rw-p 00000000 00:00 0                          [heap]",
            "7f4bf0961000-7f4bf0983000 rw-p 00000000 00:00 0 ",
            "7f4bf0bc9000-7f4bf0bd0000 r--s 00000000 fe:00 331548                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
            "7f4bf0a0a000-7f4bf0b60000 r-xp 00026000 fe:00 332096                     /usr/lib/x86_64-linux-gnu/libc.so.6",
            "7f4bf0bd3000-7f4bf0bd7000 r--p 00000000 00:00 0                          [vvar]",
            "7ffd7c5f1000-7ffd7c5f3000 r-xp 00000000 00:00 0                          [vdso]",
            "7f4bf0c00000-7f4bf0c01000 r--p 00000000 fe:00 1234                       /tmp/a file (deleted)",
            "not a mapping",
            "7f4bf0d00000-7f4bf0c00000 r--p 00000000 fe:00 1234                       /backwards",
        ];

        Assert.Equal(
        [
            (0x55c2d99e7000UL, 0x2000UL),
            (0x55c2d99e9000UL, 0x5000UL),
            (0x7f4bf0bc9000UL, 0x7000UL),
            (0x7f4bf0a0a000UL, 0x156000UL),
            (0x7f4bf0c00000UL, 0x1000UL),
        ], ProcessMaps.ReadOnlyFileMappings(maps));
    }

    [Fact]
    public void This_process_has_its_own_code_among_them()
    {
        var mappings = ProcessMaps.ReadOnlyFileMappings(File.ReadAllLines("/proc/self/maps")).ToList();
        Assert.NotEmpty(mappings);
        Assert.All(mappings, m => Assert.True(m.Length > 0 && m.Length % 4096 == 0));
    }
}
