package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/peerdns/peerdns/internal/testtools"
)

// serve starts a Server with webConfig (a web configuration file's text,
// or empty for none) and returns its address.
func serve(t *testing.T, webConfig string) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_up", Help: "1."})
	g.Set(1)
	reg.MustRegister(g)
	cfg := Config{ListenAddress: "127.0.0.1:0", Gatherer: reg, Ready: func() error { return nil }}
	if webConfig != "" {
		cfg.WebConfigFile = filepath.Join(t.TempDir(), "web.yml")
		if err := os.WriteFile(cfg.WebConfigFile, []byte(webConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s.Addr().String()
}

// get fetches url with client, with basic auth when user is set, and
// returns the status code and the body.
func get(t *testing.T, client *http.Client, url, user, password string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestPlainHTTP(t *testing.T) {
	addr := serve(t, "")
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		t.Run(path, func(t *testing.T) {
			code, body, err := get(t, http.DefaultClient, "http://"+addr+path, "", "")
			if err != nil || code != http.StatusOK {
				t.Fatalf("GET %s: %d %v\n%s", path, code, err, body)
			}
		})
	}
}

// TestWebConfigFile serves with TLS and basic auth from a web configuration
// file, as --web.config.file does, and scrapes /metrics as Prometheus would.
func TestWebConfigFile(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := testtools.SelfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\nbasic_auth_users:\n  prometheus: "+string(hash)+"\n")
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	for _, tc := range []struct {
		name           string
		client         *http.Client
		url            string
		user, password string
		code           int
		body           string
	}{
		{name: "scrape with the password", client: tlsClient, url: "https://" + addr + "/metrics",
			user: "prometheus", password: "s3cret", code: http.StatusOK, body: "test_up 1"},
		{name: "no password", client: tlsClient, url: "https://" + addr + "/metrics", code: http.StatusUnauthorized},
		{name: "wrong password", client: tlsClient, url: "https://" + addr + "/metrics",
			user: "prometheus", password: "guess", code: http.StatusUnauthorized},
		{name: "unknown user", client: tlsClient, url: "https://" + addr + "/metrics",
			user: "admin", password: "s3cret", code: http.StatusUnauthorized},
		{name: "probe without password", client: tlsClient, url: "https://" + addr + "/readyz", code: http.StatusUnauthorized},
		{name: "probe with the password", client: tlsClient, url: "https://" + addr + "/healthz",
			user: "prometheus", password: "s3cret", code: http.StatusOK, body: "ok"},
		// Go's server answers plain HTTP on a TLS port with a 400.
		{name: "plain HTTP", client: http.DefaultClient, url: "http://" + addr + "/metrics",
			user: "prometheus", password: "s3cret", code: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := get(t, tc.client, tc.url, tc.user, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s: %d, want %d with %q\n%s", tc.url, code, tc.code, tc.body, body)
			}
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		_, _, err := get(t, http.DefaultClient, "https://"+addr+"/metrics", "prometheus", "s3cret")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("GET with the system roots: %v, want an unknown authority error", err)
		}
	})
}

func TestListenRejectsBadWebConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(path, []byte("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Config{ListenAddress: "127.0.0.1:0", WebConfigFile: path}); err == nil {
		t.Error("Listen accepted a web config file naming missing files")
	}
}
