using System.Buffers.Binary;
using System.Formats.Tar;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace EcsLite.Agent.Docker;

/// <summary>
/// The image of awsvpc tasks' pause containers, made on the host from what the agent ships (no
/// registry): a root file system holding one static program, /pause, that sleeps until it is killed.
/// The program is a few instructions in a minimal ELF file (129 bytes on x86-64), written out below for x86-64 and
/// arm64, so the agent needs no compiler, no libc and no download to hold a task's network namespace.
/// </summary>
public static class PauseImage
{
    public const string Repository = "ecslite/pause";

    private const ulong Base = 0x400000;
    private const int ElfHeaderSize = 64;
    private const int ProgramHeaderSize = 56;

    // x86-64:  loop: mov eax, 34 (pause); syscall; jmp loop
    private static readonly byte[] X64Code = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

    // arm64 has no pause(2):  loop: x0..x3 = 0; x8 = 73 (ppoll, no descriptors, no timeout); svc #0; b loop
    private static readonly uint[] Arm64Code = [0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, 0xd2800928, 0xd4000001, 0x17fffffa];

    /// <summary>The program for this process's architecture, or null where the agent has none.</summary>
    public static byte[]? Program(Architecture architecture) => architecture switch
    {
        Architecture.X64 => Elf(62, X64Code),
        Architecture.Arm64 => Elf(183, [.. Arm64Code.SelectMany(i => BitConverter.GetBytes(i))]),
        _ => null,
    };

    /// <summary>The image's tag: a digest of the program, so a new agent with a changed program imports a new image.</summary>
    public static string Tag(byte[] program) => Convert.ToHexStringLower(SHA256.HashData(program))[..12];

    /// <summary>Imports the image unless the engine has it already; returns its reference.</summary>
    public static async Task<string> EnsureAsync(IContainerRuntime runtime, CancellationToken cancellationToken)
    {
        var program = Program(RuntimeInformation.ProcessArchitecture)
            ?? throw new PlatformNotSupportedException($"awsvpc needs a pause program, which this agent has only for x64 and arm64, not {RuntimeInformation.ProcessArchitecture}");
        var tag = Tag(program);
        var reference = $"{Repository}:{tag}";
        if (!await runtime.ExistsAsync(reference, cancellationToken))
        {
            await runtime.ImportImageAsync(Repository, tag, RootFileSystem(program), ["CMD [\"/pause\"]", "LABEL ecslite.pause=true"], cancellationToken);
        }

        return reference;
    }

    /// <summary>A tar holding /pause, executable.</summary>
    public static byte[] RootFileSystem(byte[] program)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "pause")
            {
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
                    | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
                DataStream = new MemoryStream(program),
            });
        }

        return tar.ToArray();
    }

    /// <summary>A static ELF64 executable: the file header, one loadable read+execute segment (the whole file), then the code.</summary>
    private static byte[] Elf(ushort machine, byte[] code)
    {
        var size = ElfHeaderSize + ProgramHeaderSize + code.Length;
        var elf = new byte[size];
        var span = elf.AsSpan();
        "\u007fELF"u8.CopyTo(span);
        span[4] = 2; // 64-bit
        span[5] = 1; // little-endian
        span[6] = 1; // ELF version 1
        BinaryPrimitives.WriteUInt16LittleEndian(span[16..], 2); // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(span[18..], machine);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(span[24..], Base + ElfHeaderSize + ProgramHeaderSize); // entry: the code
        BinaryPrimitives.WriteUInt64LittleEndian(span[32..], ElfHeaderSize); // program headers follow the file header
        BinaryPrimitives.WriteUInt16LittleEndian(span[52..], ElfHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(span[54..], ProgramHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(span[56..], 1);

        var header = span[ElfHeaderSize..];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 1); // PT_LOAD
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], 5); // read + execute
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], Base); // virtual address
        BinaryPrimitives.WriteUInt64LittleEndian(header[24..], Base); // physical address
        BinaryPrimitives.WriteUInt64LittleEndian(header[32..], (ulong)size); // in the file
        BinaryPrimitives.WriteUInt64LittleEndian(header[40..], (ulong)size); // in memory
        BinaryPrimitives.WriteUInt64LittleEndian(header[48..], 0x1000);

        code.CopyTo(span[(ElfHeaderSize + ProgramHeaderSize)..]);
        return elf;
    }
}
