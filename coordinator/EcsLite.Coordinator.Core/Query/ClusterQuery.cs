using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace EcsLite.Coordinator.Core.Query;

/// <summary>What the cluster query language can ask about one container instance.</summary>
public sealed record InstanceFacts(
    string ContainerInstanceArn,
    string Ec2InstanceId,
    bool AgentConnected,
    string AgentVersion,
    DateTimeOffset RegisteredAt,
    int RunningTasksCount,
    IReadOnlyDictionary<string, string?> Attributes,
    IReadOnlyCollection<string> TaskGroups);

/// <summary>
/// ECS's cluster query language, as used by ListContainerInstances' filter and memberOf placement
/// constraints: subjects agentConnected, agentVersion, attribute:NAME, ec2InstanceId, registeredAt,
/// runningTasksCount and task:group; operators ==, !=, &gt;, &gt;=, &lt;, &lt;=, =~, !~, exists, !exists,
/// in, !in; and/&amp;&amp;, or/||, not/! and parentheses ("not" binds tightest, then "and", then "or").
/// A parsed query is a pure predicate over <see cref="InstanceFacts"/>.
/// </summary>
public abstract record ClusterQuery
{
    /// <summary>ECS's limit on an expression's length (placementConstraints[].expression), for filters too.</summary>
    public const int MaxLength = 2000;

    /// <summary>How deep parentheses and not/! may nest: the parser recurses on them, so input must not choose its depth.</summary>
    public const int MaxDepth = 32;

    /// <summary>Parses an expression; a mistake is an InvalidParameterException naming the field and the column (1-based).</summary>
    public static ClusterQuery Parse(string text, string field) => text.Length > MaxLength
        ? throw EcsException.InvalidParameter(field, $"the expression is {text.Length} characters long; at most {MaxLength} are allowed.")
        : new Parser(text, field).ParseAll();

    public abstract bool Matches(InstanceFacts instance);

    public sealed record And(ClusterQuery Left, ClusterQuery Right) : ClusterQuery
    {
        public override bool Matches(InstanceFacts instance) => Left.Matches(instance) && Right.Matches(instance);
    }

    public sealed record Or(ClusterQuery Left, ClusterQuery Right) : ClusterQuery
    {
        public override bool Matches(InstanceFacts instance) => Left.Matches(instance) || Right.Matches(instance);
    }

    public sealed record Not(ClusterQuery Inner) : ClusterQuery
    {
        public override bool Matches(InstanceFacts instance) => !Inner.Matches(instance);
    }

    /// <summary>
    /// One comparison. A subject has zero or more values (task:group has one per task, an absent
    /// attribute none): positive operators hold when any value matches, negative ones when none does.
    /// </summary>
    public sealed record Comparison(string Subject, string? AttributeName, string Operator, IReadOnlyList<string> Operands, Regex? Pattern) : ClusterQuery
    {
        public override bool Matches(InstanceFacts instance)
        {
            // The common case, an attribute compared for equality, without allocating (placement asks this of every instance).
            if (Subject.StartsWith("attribute:", StringComparison.Ordinal) && Operator is "==" or "!=")
            {
                var found = instance.Attributes.TryGetValue(AttributeName!, out var value);
                var equal = found && Equal(value ?? "", Operands[0]);
                return Operator == "==" ? equal : !equal;
            }

            var values = Values(instance);
            return Operator switch
            {
                "exists" => values.Count > 0,
                "!exists" => values.Count == 0,
                "==" => values.Any(v => Equal(v, Operands[0])),
                "!=" => !values.Any(v => Equal(v, Operands[0])),
                "in" => values.Any(v => Operands.Any(o => Equal(v, o))),
                "!in" => !values.Any(v => Operands.Any(o => Equal(v, o))),
                "=~" => values.Any(Like),
                "!~" => !values.Any(Like),
                ">" => values.Any(v => Order(v, Operands[0]) > 0),
                ">=" => values.Any(v => Order(v, Operands[0]) >= 0),
                "<" => values.Any(v => Order(v, Operands[0]) < 0),
                "<=" => values.Any(v => Order(v, Operands[0]) <= 0),
                _ => false,
            };
        }

        /// <summary>A pattern that takes longer than its timeout to decide matches nothing (patterns come from callers).</summary>
        private bool Like(string value)
        {
            try
            {
                return Pattern!.IsMatch(value);
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }

        private List<string> Values(InstanceFacts instance) => Subject switch
        {
            "agentConnected" => [instance.AgentConnected ? "true" : "false"],
            "agentVersion" => [instance.AgentVersion],
            "ec2InstanceId" => [instance.Ec2InstanceId],
            "registeredAt" => [instance.RegisteredAt.UtcDateTime.ToString("o", CultureInfo.InvariantCulture)],
            "runningTasksCount" => [instance.RunningTasksCount.ToString(CultureInfo.InvariantCulture)],
            "task:group" => [.. instance.TaskGroups],
            _ => instance.Attributes.TryGetValue(AttributeName!, out var value) ? [value ?? ""] : [],
        };

        private bool Equal(string value, string operand) => Subject switch
        {
            "agentConnected" => string.Equals(value, operand, StringComparison.OrdinalIgnoreCase),
            _ => string.Equals(value, operand, StringComparison.Ordinal) || Order(value, operand) == 0,
        };

        /// <summary>Numbers as numbers, versions as versions, times as times, anything else as text.</summary>
        private int Order(string value, string operand)
        {
            if (Subject == "registeredAt" && DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var a)
                && DateTimeOffset.TryParse(operand, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var b))
            {
                return a.CompareTo(b);
            }

            if (decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var x)
                && decimal.TryParse(operand, NumberStyles.Float, CultureInfo.InvariantCulture, out var y))
            {
                return x.CompareTo(y);
            }

            if (Subject == "agentVersion" && Version.TryParse(value.TrimStart('v'), out var v) && Version.TryParse(operand.TrimStart('v'), out var w))
            {
                return v.CompareTo(w);
            }

            return string.CompareOrdinal(value, operand);
        }
    }

    private sealed class Parser(string text, string field)
    {
        private static readonly string[] Subjects = ["agentConnected", "agentVersion", "ec2InstanceId", "registeredAt", "runningTasksCount", "task:group"];
        private static readonly string[] Operators = ["==", "!=", ">=", "<=", ">", "<", "=~", "!~"];
        private const string OperatorList = "==, !=, >, >=, <, <=, =~, !~, exists, !exists, in, !in";
        private const int Quoted = 200;
        private int _position;
        private int _depth;

        public ClusterQuery ParseAll()
        {
            SkipSpace();
            if (_position >= text.Length)
            {
                throw Error("the expression is empty");
            }

            var query = ParseOr();
            SkipSpace();
            if (_position < text.Length)
            {
                throw Error($"unexpected '{Rest()}'; expected 'and', 'or' or the end");
            }

            return query;
        }

        private ClusterQuery ParseOr()
        {
            var left = ParseAnd();
            while (TakeWord("or") || TakeSymbol("||"))
            {
                left = new Or(left, ParseAnd());
            }

            return left;
        }

        private ClusterQuery ParseAnd()
        {
            var left = ParseUnary();
            while (TakeWord("and") || TakeSymbol("&&"))
            {
                left = new And(left, ParseUnary());
            }

            return left;
        }

        private ClusterQuery ParseUnary()
        {
            SkipSpace();
            var at = _position;
            if (TakeWord("not") || (Peek('!') && !Peek("!=") && !Peek("!~") && TakeSymbol("!")))
            {
                Deeper(at);
                var negated = new Not(ParseUnary());
                _depth--;
                return negated;
            }

            if (TakeSymbol("("))
            {
                Deeper(at);
                var inner = ParseOr();
                if (!TakeSymbol(")"))
                {
                    throw Error("expected ')'");
                }

                _depth--;
                return inner;
            }

            return ParseComparison();
        }

        private void Deeper(int at)
        {
            if (++_depth > MaxDepth)
            {
                throw Error($"parentheses and 'not' nest more than {MaxDepth} deep", at);
            }
        }

        private ClusterQuery ParseComparison()
        {
            SkipSpace();
            var start = _position;
            var subject = ReadToken();
            if (subject.Length == 0)
            {
                throw Error("expected a subject (agentConnected, agentVersion, attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount, task:group)");
            }

            string? attribute = null;
            if (subject.StartsWith("attribute:", StringComparison.Ordinal))
            {
                attribute = subject["attribute:".Length..];
                if (attribute.Length == 0)
                {
                    throw Error("attribute: needs a name, e.g. attribute:ecs.instance-type", start);
                }
            }
            else if (Array.IndexOf(Subjects, subject) < 0)
            {
                throw Error($"unknown subject '{subject}'; expected agentConnected, agentVersion, attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount or task:group", start);
            }

            SkipSpace();
            var operatorAt = _position;
            if (TakeWord("exists"))
            {
                return new Comparison(subject, attribute, "exists", [], null);
            }

            if (TakeSymbol("!exists"))
            {
                return new Comparison(subject, attribute, "!exists", [], null);
            }

            var negatedIn = Peek("!in") && TakeSymbol("!in");
            if (negatedIn || TakeWord("in"))
            {
                return new Comparison(subject, attribute, negatedIn ? "!in" : "in", ReadList(), null);
            }

            var op = Operators.FirstOrDefault(Peek);
            if (op is null)
            {
                throw Error($"expected an operator ({OperatorList}) after '{subject}'", operatorAt);
            }

            _position += op.Length;
            SkipSpace();
            var valueAt = _position;
            var value = ReadValue();
            if (op is "=~" or "!~")
            {
                try
                {
                    var pattern = new Regex($"^(?:{value})$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
                    return new Comparison(subject, attribute, op, [value], pattern);
                }
                catch (ArgumentException e)
                {
                    throw Error($"'{value}' is not a valid pattern: {e.Message}", valueAt);
                }
            }

            return new Comparison(subject, attribute, op, [value], null);
        }

        private List<string> ReadList()
        {
            SkipSpace();
            if (!TakeSymbol("["))
            {
                throw Error("expected '[' to start the list, e.g. in [a, b]");
            }

            var values = new List<string>();
            while (true)
            {
                SkipSpace();
                values.Add(ReadValue());
                SkipSpace();
                if (TakeSymbol("]"))
                {
                    return values;
                }

                if (!TakeSymbol(","))
                {
                    throw Error("expected ',' or ']' in the list");
                }
            }
        }

        private string ReadValue()
        {
            SkipSpace();
            if (_position < text.Length && text[_position] is '\'' or '"')
            {
                var quote = text[_position];
                var start = _position;
                var end = text.IndexOf(quote, _position + 1);
                if (end < 0)
                {
                    throw Error($"the quoted value is not closed (missing {quote})", start);
                }

                _position = end + 1;
                return text[(start + 1)..end];
            }

            var value = ReadToken(stopAtComma: true);
            return value.Length == 0 ? throw Error("expected a value") : value;
        }

        /// <summary>A run of characters up to white space, a parenthesis, a bracket or an operator.</summary>
        private string ReadToken(bool stopAtComma = false)
        {
            var builder = new StringBuilder();
            while (_position < text.Length)
            {
                var c = text[_position];
                if (char.IsWhiteSpace(c) || c is '(' or ')' or '[' or ']' || (stopAtComma && c == ',') ||
                    (!stopAtComma && Operators.Any(Peek)) || (!stopAtComma && c == '!'))
                {
                    break;
                }

                builder.Append(c);
                _position++;
            }

            return builder.ToString();
        }

        private bool TakeWord(string word)
        {
            SkipSpace();
            if (!text.AsSpan(_position).StartsWith(word, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }

            var after = _position + word.Length;
            if (after < text.Length && !char.IsWhiteSpace(text[after]) && text[after] is not ('(' or '['))
            {
                return false;
            }

            _position = after;
            return true;
        }

        private bool TakeSymbol(string symbol)
        {
            SkipSpace();
            if (!Peek(symbol))
            {
                return false;
            }

            _position += symbol.Length;
            return true;
        }

        private bool Peek(string symbol) => text.AsSpan(_position).StartsWith(symbol, StringComparison.Ordinal);

        private bool Peek(char c) => _position < text.Length && text[_position] == c;

        private void SkipSpace()
        {
            while (_position < text.Length && char.IsWhiteSpace(text[_position]))
            {
                _position++;
            }
        }

        private string Rest() => text.Length - _position <= 50 ? text[_position..] : string.Concat(text.AsSpan(_position, 50), "...");

        private EcsException Error(string message, int? at = null) =>
            EcsException.InvalidParameter(field, $"column {(at ?? _position) + 1}: {message} in '{(text.Length <= Quoted ? text : string.Concat(text.AsSpan(0, Quoted), "..."))}'.");
    }
}
