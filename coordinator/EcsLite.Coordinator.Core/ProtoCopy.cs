using System.Collections;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace EcsLite.Coordinator.Core;

/// <summary>
/// Copies the members two ECS shapes share by name and type (a request into the resource it creates),
/// so every field a caller sends is kept even where EcsLite does not act on it.
/// Sub-messages are shared, not cloned: the source is a request that is discarded afterwards.
/// </summary>
public static class ProtoCopy
{
    public static void SameNamedFields(IMessage from, IMessage to)
    {
        foreach (var source in from.Descriptor.Fields.InDeclarationOrder())
        {
            var target = to.Descriptor.FindFieldByName(source.Name);
            if (target is null || target.FieldType != source.FieldType || target.IsRepeated != source.IsRepeated ||
                (source.FieldType == FieldType.Message && target.MessageType.FullName != source.MessageType.FullName))
            {
                continue;
            }

            var value = source.Accessor.GetValue(from);
            if (source.IsMap)
            {
                var map = (IDictionary)target.Accessor.GetValue(to);
                foreach (DictionaryEntry entry in (IDictionary)value)
                {
                    map[entry.Key] = entry.Value;
                }
            }
            else if (source.IsRepeated)
            {
                var list = (IList)target.Accessor.GetValue(to);
                foreach (var item in (IList)value)
                {
                    list.Add(item);
                }
            }
            else if (source.HasPresence ? source.Accessor.HasValue(from) : value is not null)
            {
                target.Accessor.SetValue(to, value);
            }
        }
    }
}
