//go:build !unix

package discovery

import (
	"context"
	"log/slog"
	"os/exec"
)

func startInGroup(*exec.Cmd) {}

func endGroup(int) {}

func reapChildren(context.Context, *slog.Logger) {}
