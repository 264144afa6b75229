//go:build !linux

package discovery

// becomeSubreaper is Linux-only; elsewhere orphans go to init.
func becomeSubreaper() error { return nil }
