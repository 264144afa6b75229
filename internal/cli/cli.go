// Package cli holds the command-line conventions both binaries share.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/peerdns/peerdns/internal/version"
)

// Parse parses args into fs, which must use flag.ContinueOnError. When done
// is true the program should exit with code: after --help (0), a bad flag or
// a stray argument (2, the message already printed), or --version when
// printVersion is set (0, the version printed to stdout).
func Parse(fs *flag.FlagSet, args []string, printVersion *bool, stdout, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return 2, true
	}
	if printVersion != nil && *printVersion {
		fmt.Fprintf(stdout, "%s %s (revision %s)\n", fs.Name(), version.Version, version.Revision())
		return 0, true
	}
	return 0, false
}
