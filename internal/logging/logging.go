// Package logging builds the slog logger both binaries use from their
// --log.level and --log.format flags.
package logging

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config is what the log flags set.
type Config struct {
	// Level is debug, info, warn or error. Default info.
	Level string
	// Format is logfmt or json. Default logfmt.
	Format string
}

// RegisterFlags adds --log.level and --log.format to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Level, "log.level", "info", "Log level: debug, info, warn or error.")
	fs.StringVar(&c.Format, "log.format", "logfmt", "Log format: logfmt or json.")
}

// New returns a logger writing to w.
func (c Config) New(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("--log.level %q: want debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "logfmt", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log.format %q: want logfmt or json", c.Format)
}
