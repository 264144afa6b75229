// Package cli holds the command-line conventions both binaries share, built
// on the Prometheus family's libraries: kingpin flags with --help and
// --version, promslog's --log.level and --log.format, and exit code 2 with
// one line naming the flag for any bad flag value.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
)

// App is a program's command line.
type App struct {
	*kingpin.Application
	// Log is what --log.level and --log.format set.
	Log promslog.Config

	exited   bool
	exitCode int
}

// New returns the command line of program with --help (-h), --version,
// --log.level and --log.format defined. The caller adds its own flags, then
// calls ParseArgs.
func New(program, help string) *App {
	fillVersion()
	a := &App{Application: kingpin.New(program, help)}
	// kingpin calls terminate after --help and --version; record the code
	// instead of exiting, so ParseArgs returns it and tests can run.
	a.Terminate(func(code int) {
		if !a.exited {
			a.exited, a.exitCode = true, code
		}
	})
	a.Version(version.Print(program))
	a.HelpFlag.Short('h')
	promslogflag.AddFlags(a.Application, &a.Log)
	return a
}

// ParseArgs parses args (without the program name). When done is true the
// program should exit with code: 0 after --help or --version (printed to
// stdout), 2 after an unknown flag, a bad value or a stray argument (one
// line on stderr naming it).
func (a *App) ParseArgs(args []string, stdout, stderr io.Writer) (code int, done bool) {
	a.UsageWriter(stdout)
	a.ErrorWriter(stderr)
	a.nameValueErrors()
	args, err := a.boolValues(args)
	if err != nil {
		return a.Fail(err), true
	}
	_, err = a.Parse(args)
	if a.exited {
		return a.exitCode, true
	}
	if err != nil {
		return a.Fail(err), true
	}
	return 0, false
}

// Fail prints err as one line on the error writer and returns exit code 2,
// the code for a bad command line.
func (a *App) Fail(err error) int {
	a.Errorf("%v, try --help", err)
	return 2
}

// Logger returns the logger --log.level and --log.format ask for, writing
// to w.
func (a *App) Logger(w io.Writer) *slog.Logger {
	cfg := a.Log
	cfg.Writer = w
	return promslog.New(&cfg)
}

// FlagError is a flag value found invalid after parsing, for example a
// number out of range or a zone that is not a domain name. Programs exit 2
// on it, as on a value that did not parse.
type FlagError struct {
	// Flag is the flag's name without the dashes, e.g. "dns.ttl".
	Flag string
	Err  error
}

// Invalid returns a FlagError for flag with a formatted reason.
func Invalid(flag, format string, args ...any) error {
	return &FlagError{Flag: flag, Err: fmt.Errorf(format, args...)}
}

func (e *FlagError) Error() string { return "--" + e.Flag + ": " + e.Err.Error() }

func (e *FlagError) Unwrap() error { return e.Err }

// IsFlagError reports whether err is, or wraps, a FlagError.
func IsFlagError(err error) bool {
	var fe *FlagError
	return errors.As(err, &fe)
}

// nameValueErrors wraps every flag's value so that a value that does not
// parse is reported with the flag's name. Workaround: kingpin returns a
// Value's Set error as it is ("strconv.ParseUint: parsing \"x\": invalid
// syntax"), without saying which flag it came from.
func (a *App) nameValueErrors() {
	for _, f := range a.Model().Flags {
		if _, done := f.Value.(namedValue); done || f.Value == nil {
			continue
		}
		a.GetFlag(f.Name).SetValue(namedValue{name: f.Name, Value: f.Value})
	}
}

// namedValue is a kingpin.Value whose Set errors name the flag. It keeps
// the optional interfaces kingpin looks for (bool flags, repeatable flags).
type namedValue struct {
	name string
	kingpin.Value
}

func (v namedValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) {
			err = numErr.Err // "invalid syntax", without strconv's function name
		}
		return &FlagError{Flag: v.name, Err: fmt.Errorf("invalid value %q: %w", s, err)}
	}
	return nil
}

func (v namedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (v namedValue) IsCumulative() bool {
	c, ok := v.Value.(interface{ IsCumulative() bool })
	return ok && c.IsCumulative()
}

// boolValues rewrites --flag=true and --flag=false of boolean flags to
// --flag and --no-flag. Workaround: kingpin's boolean flags take no value
// and report "unexpected true", while Go's flag package, and so every
// command line written for peerdns before kingpin, accepts one.
func (a *App) boolValues(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for i, arg := range args {
		if arg == "--" {
			return append(out, args[i:]...), nil
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !ok || !strings.HasPrefix(arg, "--") {
			out = append(out, arg)
			continue
		}
		f := a.GetFlag(name)
		if f == nil || !f.Model().IsBoolFlag() {
			out = append(out, arg)
			continue
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil, Invalid(name, "invalid value %q: want true or false", value)
		}
		if b {
			out = append(out, "--"+name)
		} else {
			out = append(out, "--no-"+name)
		}
	}
	return out, nil
}

var fillVersionOnce sync.Once

// fillVersion sets the version, when the linker did not (a plain go build
// or go install), to the main module's version Go recorded (a tag, or a
// pseudo-version from the commit), else "dev".
func fillVersion() {
	fillVersionOnce.Do(func() {
		if version.Version != "" {
			return
		}
		version.Version = "dev"
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
			version.Version = info.Main.Version
		}
	})
}
