package plugin

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ExitUsage is docker's exit code for a usage error: a bad flag value, flags that
// exclude each other, or a wrong number of arguments. Every usage error goes through
// usageError, so all of them exit 125 before the project is loaded or the engine called.
const ExitUsage = 125

// usageError is a usage error: one line saying what is wrong and what is allowed.
func usageError(format string, a ...any) error {
	return cli.StatusError{StatusCode: ExitUsage, Status: fmt.Sprintf(format, a...)}
}

// flagError is the FlagErrorFunc of the command tree: a flag that does not parse (an
// unknown flag, "abc" for a duration, a value outside an enumFlag's set) is a usage
// error with the parser's message and where to look, not docker's whole usage text.
func flagError(cmd *cobra.Command, err error) error {
	return usageError("%v\nsee '%s --help'", err, cmd.CommandPath())
}

// noArgs refuses arguments; on a command with subcommands an argument is an unknown command.
func noArgs(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return nil
	case cmd.HasSubCommands():
		return usageError("unknown command %q for '%s'\nsee '%s --help' for its commands", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return usageError("'%s' accepts no arguments, got %q\nsee '%s --help'", cmd.CommandPath(), strings.Join(args, " "), cmd.CommandPath())
}

// exactlyOne wants exactly one argument, named what (SERVICE, NAME) in the message.
func exactlyOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			return nil
		}
		return usageError("'%s' needs exactly one %s, got %d arguments\nsee '%s --help'", cmd.CommandPath(), what, len(args), cmd.CommandPath())
	}
}

// enumValue is a string flag that takes one of a fixed set of values; any other value
// fails flag parsing (so flagError makes it a usage error) and names the allowed ones.
type enumValue struct {
	target  *string
	allowed []string
}

// enumFlag defines --name on flags, with value as its default, taking one of allowed.
// The usage text gets the allowed values appended.
func enumFlag(flags *pflag.FlagSet, target *string, name, value, usage string, allowed ...string) {
	*target = value
	flags.Var(&enumValue{target: target, allowed: allowed}, name, fmt.Sprintf("%s (%s)", usage, strings.Join(allowed, ", ")))
}

func (e *enumValue) String() string { return *e.target }
func (e *enumValue) Type() string   { return "string" }
func (e *enumValue) Set(s string) error {
	if err := oneOf(s, e.allowed); err != nil {
		return err
	}
	*e.target = s
	return nil
}

// oneOf refuses a value outside allowed, naming the allowed ones.
func oneOf(value string, allowed []string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return fmt.Errorf("use %s", orList(allowed))
}

// checkEnum is oneOf for a flag checked after parsing, with the message of a flag
// that fails parsing.
func checkEnum(cmd *cobra.Command, flag, value string, allowed []string) error {
	if err := oneOf(value, allowed); err != nil {
		return flagError(cmd, fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", value, flag, err))
	}
	return nil
}

// durationValue is a duration flag with bounds: a value that does not parse or lies
// outside [min, max] fails flag parsing with the allowed range in the message.
type durationValue struct {
	target   *time.Duration
	min, max time.Duration // max 0: no upper bound
}

// durationFlag defines --name on flags, with value as its default, taking a duration in
// [min, max] (max 0: no upper bound).
func durationFlag(flags *pflag.FlagSet, target *time.Duration, name string, value, min, max time.Duration, usage string) {
	*target = value
	flags.Var(&durationValue{target: target, min: min, max: max}, name, usage)
}

// String is "0" for no duration, which pflag's help takes for "no default" ("0s" it shows).
func (d *durationValue) String() string {
	if *d.target == 0 {
		return "0"
	}
	return d.target.String()
}

func (d *durationValue) Type() string { return "duration" }
func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v < d.min || (d.max > 0 && v > d.max) {
		return fmt.Errorf("use %s", d.allowed())
	}
	*d.target = v
	return nil
}

func (d *durationValue) allowed() string {
	switch {
	case d.max > 0:
		return fmt.Sprintf("a duration from %s to %s, such as 1s or 500ms", d.min, d.max)
	case d.min == 0:
		return "a duration of 0 or more, such as 30s or 2m"
	}
	return fmt.Sprintf("a duration of at least %s, such as 30s or 2m", d.min)
}

// orList joins values as "a, b or c".
func orList(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}
