package discovery

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
)

// memberlistLog turns memberlist's log lines ("[WARN] memberlist: …") into
// slog records at the same level, so a warning stays a warning. memberlist
// has no structured logger; its *log.Logger writes one line per Write.
//
// workaround: some conditions memberlist only logs, such as traffic dropped
// for a wrong cluster label or a key no installed key decrypts; it has no
// delegate or counter for them. observe sees every message (without its
// level prefix) so the agent can count them (Agent.classifyLog).
type memberlistLog struct {
	logger  *slog.Logger
	observe func(msg string)
}

func (w *memberlistLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\r\n"))
	level, msg := parseMemberlistLine(line)
	if w.observe != nil {
		w.observe(msg)
	}
	if w.logger.Enabled(context.Background(), level) {
		w.logger.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

// parseMemberlistLine splits "[LEVEL] memberlist: message" into a slog level
// and the message. Lines without a recognised prefix are Info, except
// memberlist's few "Err: …" lines, which are errors.
func parseMemberlistLine(line string) (slog.Level, string) {
	level := slog.LevelInfo
	rest := line
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			switch rest[1:end] {
			case "DEBUG", "TRACE":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			rest = strings.TrimLeft(rest[end+1:], " ")
		}
	} else if strings.HasPrefix(rest, "Err:") {
		level = slog.LevelError
		rest = strings.TrimLeft(rest[len("Err:"):], " ")
	}
	rest = strings.TrimPrefix(rest, "memberlist: ")
	return level, rest
}
