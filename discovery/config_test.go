package discovery

import (
	"context"
	"errors"
	"testing"
	"time"
)

type fileSizeSource struct{}

func (fileSizeSource) Run(context.Context, func(Target), func(error)) {}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.NodeName, c.Expected, c.PeersSRV = "web-1", 3, "_gossip._tcp.web"
		return c
	}
	if err := func() error { c := base(); return c.validate() }(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"no ordinal", func(c *Config) { c.NodeName = "web" }},
		{"outside the admitted set", func(c *Config) { c.NodeName = "web-64" }},
		{"expected above max members", func(c *Config) { c.Expected = 65 }},
		{"two size sources", func(c *Config) { c.ExpectedFile, c.Size = "/n", fileSizeSource{} }},
		{"below ordinal start", func(c *Config) { c.OrdinalStart = 2 }},
		{"no expected size", func(c *Config) { c.Expected = 0 }},
		{"no peers", func(c *Config) { c.PeersSRV = "" }},
		{"listen host is a name", func(c *Config) { c.BindAddr = "localhost:7946" }},
		{"advertise a name", func(c *Config) { c.AdvertiseAddr = "web-1.web" }},
		{"probe timeout above interval", func(c *Config) { c.Timing.ProbeTimeout = 2 * c.Timing.ProbeInterval }},
		{"zero suspect timeout", func(c *Config) { c.Timing.SuspectTimeout = 0 }},
		{"negative hook shutdown grace", func(c *Config) { c.OnChangeShutdownGrace = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			if err := c.validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("validate() = %v, want ErrConfig", err)
			}
		})
	}
}
