package plugin

import (
	"fmt"
	"io"
	"strings"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/templates"
	"github.com/spf13/pflag"
)

// templateValue is a --format flag of a listing (ps, history, network top): table, json
// or a Go template. A template that does not parse fails flag parsing, so it is a usage
// error before the engine is called; a field that does not exist fails in writeRows.
type templateValue struct{ target *string }

// templateFlag defines --format on flags, "table" by default.
func templateFlag(flags *pflag.FlagSet, target *string, usage string) {
	*target = formatter.TableFormatKey
	flags.Var(&templateValue{target: target}, "format", usage)
}

func (v *templateValue) String() string { return *v.target }
func (v *templateValue) Type() string   { return "string" }
func (v *templateValue) Set(s string) error {
	if s != formatter.TableFormatKey && s != formatter.JSONFormatKey {
		if _, err := templates.Parse(strings.TrimPrefix(s, formatter.TableFormatKey+" ")); err != nil {
			return fmt.Errorf("template parsing error: %w: use table, json or a Go template such as '{{.Name}}'", err)
		}
	}
	*v.target = s
	return nil
}

// writeRows prints rows with docker/cli's formatter, as `docker ps` does: "table" (or
// empty) uses tableFormat, "json" one object per line, anything else is a Go template.
// headerRow carries the column titles; a bad template is a usage error (125).
func writeRows(out io.Writer, format, tableFormat string, headerRow formatter.SubContext, rows []formatter.SubContext) error {
	switch format {
	case "", formatter.TableFormatKey:
		format = tableFormat
	case formatter.JSONFormatKey:
		format = formatter.JSONFormat
	}
	ctx := formatter.Context{Output: out, Format: formatter.Format(format)}
	err := ctx.Write(headerRow, func(write func(formatter.SubContext) error) error {
		for _, r := range rows {
			if err := write(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return usageError("invalid --format: %v", err)
	}
	return nil
}
