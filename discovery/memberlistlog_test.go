package discovery

import (
	"log/slog"
	"testing"
)

func TestParseMemberlistLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=1.2.3.4:5", slog.LevelDebug, "Stream connection from=1.2.3.4:5"},
		{"[INFO] memberlist: Suspect web-1 has failed, no acks received", slog.LevelInfo, "Suspect web-1 has failed, no acks received"},
		{"[WARN] memberlist: Refuting a suspect message (from: web-2)", slog.LevelWarn, "Refuting a suspect message (from: web-2)"},
		{"[ERR] memberlist: Conflicting address for web-1.", slog.LevelError, "Conflicting address for web-1."},
		{"[ERROR] memberlist: Failed to compress payload", slog.LevelError, "Failed to compress payload"},
		{"[ERR] Failed to shutdown transport: x", slog.LevelError, "Failed to shutdown transport: x"},
		{"Err: Could not set the deadline: x", slog.LevelError, "Could not set the deadline: x"},
		{"something else", slog.LevelInfo, "something else"},
	} {
		level, msg := parseMemberlistLine(tc.line)
		if level != tc.level || msg != tc.msg {
			t.Errorf("parseMemberlistLine(%q) = %v, %q; want %v, %q", tc.line, level, msg, tc.level, tc.msg)
		}
	}
}
