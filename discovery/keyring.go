package discovery

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/memberlist"
)

// keyFiles is the content of a keyring directory: the primary key and every
// key (primary included), sorted so two reads of the same files compare
// equal.
type keyFiles struct {
	primary []byte
	all     [][]byte
}

// readKeyFiles reads every file in dir not starting with '.' as one
// base64-encoded key. Dot-names are skipped because a Kubernetes Secret
// volume keeps its real files in "..data/" and "..<timestamp>/" and shows
// each key as a symlink into them; following the visible symlinks sees a
// complete old or complete new set, never half of each.
func readKeyFiles(dir, primaryName string) (keyFiles, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return keyFiles{}, fmt.Errorf("read keyring: %w", err)
	}
	var kf keyFiles
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		st, err := os.Stat(path) // follows the Secret's symlinks
		if err != nil {
			return keyFiles{}, fmt.Errorf("read keyring: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return keyFiles{}, fmt.Errorf("read keyring: %w", err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil {
			return keyFiles{}, fmt.Errorf("key file %s: not base64: %w", e.Name(), err)
		}
		if err := memberlist.ValidateKey(key); err != nil {
			return keyFiles{}, fmt.Errorf("key file %s: %w", e.Name(), err)
		}
		if e.Name() == primaryName {
			kf.primary = key
		}
		if !containsKey(kf.all, key) {
			kf.all = append(kf.all, key)
		}
	}
	if kf.primary == nil {
		return keyFiles{}, fmt.Errorf("read keyring: no primary key file %q in %s", primaryName, dir)
	}
	sort.Slice(kf.all, func(i, j int) bool { return bytes.Compare(kf.all[i], kf.all[j]) < 0 })
	return kf, nil
}

func (kf keyFiles) equal(o keyFiles) bool {
	if !bytes.Equal(kf.primary, o.primary) || len(kf.all) != len(o.all) {
		return false
	}
	for i := range kf.all {
		if !bytes.Equal(kf.all[i], o.all[i]) {
			return false
		}
	}
	return true
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// applyKeys brings kr to kf in the order that never leaves a member unable
// to read what it is sent: install new keys, then switch the primary, then
// remove keys whose files are gone.
func applyKeys(kr *memberlist.Keyring, kf keyFiles) error {
	for _, k := range kf.all {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("install key: %w", err)
		}
	}
	if err := kr.UseKey(kf.primary); err != nil {
		return fmt.Errorf("use primary key: %w", err)
	}
	for _, k := range kr.GetKeys() {
		if !containsKey(kf.all, k) {
			if err := kr.RemoveKey(k); err != nil {
				return fmt.Errorf("remove key: %w", err)
			}
		}
	}
	return nil
}

// fingerprint names a key without revealing it: 8 hex digits of its SHA-256.
func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}
