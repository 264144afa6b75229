package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// startEtcd runs a single-member etcd on loopback with its data in
// Dir/etcd and waits until it reports healthy.
func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", cp.etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", cp.etcdPeerPort)
	args := []string{
		"--name=peerdns-test",
		"--data-dir=" + filepath.Join(cp.dir, "etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=peerdns-test=" + peer,
		"--log-level=warn",
		// The data lives as long as the test: durability across power
		// loss buys nothing and fsync costs every write.
		"--unsafe-no-fsync=true",
	}
	p, err := cp.run(toolEtcd, args)
	if err != nil {
		return err
	}
	cp.mu.Lock()
	cp.etcd = p
	cp.mu.Unlock()
	return waitReady(ctx, p, 30*time.Second, func(ctx context.Context) error {
		var health struct {
			Health string `json:"health"`
		}
		if err := cp.etcdCall(ctx, http.MethodGet, "/health", nil, &health); err != nil {
			return err
		}
		if health.Health != "true" {
			return fmt.Errorf("etcd health %q", health.Health)
		}
		return nil
	})
}

// CompactEtcd compacts etcd at its current revision, physically, so that
// etcd forgets every older revision.
//
// kube-apiserver serves watches from its watch cache, which keeps its own
// window of history and does not notice a compaction made behind its back;
// so, to make a watch from an older resource version fail with 410 Gone the
// way it does after a long disconnect, CompactEtcd then restarts the API
// server (same port, same certificates), whose new watch cache starts at the
// compacted revision. Clients see a short outage.
func (cp *ControlPlane) CompactEtcd(ctx context.Context) error {
	rev, err := cp.etcdRevision(ctx)
	if err != nil {
		return fmt.Errorf("compact etcd: %w", err)
	}
	req := map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}
	if err := cp.etcdCall(ctx, http.MethodPost, "/v3/kv/compaction", req, nil); err != nil {
		return fmt.Errorf("compact etcd at revision %d: %w", rev, err)
	}
	cp.logger.Debug("compacted etcd", "revision", rev)
	if err := cp.StopAPIServer(); err != nil {
		return fmt.Errorf("compact etcd: %w", err)
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		return fmt.Errorf("compact etcd: %w", err)
	}
	return nil
}

// etcdRevision returns etcd's current revision, read from the header of a
// range request (for any key).
func (cp *ControlPlane) etcdRevision(ctx context.Context) (int64, error) {
	var resp struct {
		Header struct {
			Revision string `json:"revision"` // the gateway writes int64 as a string
		} `json:"header"`
	}
	// key "AA==" is the single byte 0x00; limit 1 keeps the answer small.
	if err := cp.etcdCall(ctx, http.MethodPost, "/v3/kv/range", map[string]any{"key": "AA==", "limit": 1}, &resp); err != nil {
		return 0, fmt.Errorf("read etcd revision: %w", err)
	}
	rev, err := strconv.ParseInt(resp.Header.Revision, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read etcd revision: parse %q: %w", resp.Header.Revision, err)
	}
	return rev, nil
}

// etcdCall calls etcd's JSON gateway: the etcd Go client is not a
// dependency of this module, and these two calls do not need it.
func (cp *ControlPlane) etcdCall(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("http://127.0.0.1:%d%s", cp.etcdPort, path), r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cp.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}
