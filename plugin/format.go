package plugin

import (
	"fmt"
	"io"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command/formatter"
)

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
		return cli.StatusError{StatusCode: 125, Status: fmt.Sprintf("invalid --format: %v", err)}
	}
	return nil
}
