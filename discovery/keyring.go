package discovery

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// keyFiles is the content of a keyring directory: the primary key and every
// key (primary included), sorted so two reads of the same files compare
// equal.
type keyFiles struct {
	primary []byte
	all     [][]byte
}

// secretDataDir is the symlink through which a Kubernetes Secret volume
// shows its current files.
const secretDataDir = "..data"

// readKeyFiles reads every file in dir not starting with '.' as one
// base64-encoded key.
//
// A Kubernetes Secret volume keeps each version of its files in a
// timestamped directory, "..data" points at the current one, and each
// visible name is a symlink through "..data". The kubelet swaps versions by
// writing the new directory, pointing a "..data_tmp" symlink at it and
// renaming that over "..data" (then fixing the visible names and removing
// the old directory). Reading the visible names one by one can straddle a
// swap and mix two versions (a new primary without the old key the others
// still use), so when "..data" exists it is resolved once and every key is
// read from that one directory: one complete version. If that directory
// vanishes mid-read (the kubelet removed it after another swap), the read
// starts over, up to three times.
func readKeyFiles(dir, primaryName string) (keyFiles, error) {
	var err error
	for range 3 {
		var kf keyFiles
		var resolved string
		kf, resolved, err = readKeyDir(dir, primaryName)
		if err == nil || resolved == "" || !errors.Is(err, fs.ErrNotExist) {
			return kf, err
		}
		if now, _ := filepath.EvalSymlinks(filepath.Join(dir, secretDataDir)); now == resolved {
			return kf, err // not a swap: the file is really missing
		}
	}
	return keyFiles{}, err
}

// readKeyDir reads one version of the keys; resolved is the directory
// "..data" pointed at, or "" for a plain directory.
func readKeyDir(dir, primaryName string) (kf keyFiles, resolved string, err error) {
	if _, err := os.Lstat(filepath.Join(dir, secretDataDir)); err == nil {
		resolved, err = filepath.EvalSymlinks(filepath.Join(dir, secretDataDir))
		if err != nil {
			return keyFiles{}, "", fmt.Errorf("read keyring: %w", err)
		}
		dir = resolved
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return keyFiles{}, resolved, fmt.Errorf("read keyring: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		st, err := os.Stat(path) // a plain directory may hold symlinks too
		if err != nil {
			return keyFiles{}, resolved, fmt.Errorf("read keyring: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return keyFiles{}, resolved, fmt.Errorf("read keyring: %w", err)
		}
		if keyFileRead != nil {
			keyFileRead(e.Name())
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil {
			return keyFiles{}, resolved, fmt.Errorf("key file %s: not base64: %w", e.Name(), err)
		}
		if err := memberlist.ValidateKey(key); err != nil {
			return keyFiles{}, resolved, fmt.Errorf("key file %s: %w", e.Name(), err)
		}
		if e.Name() == primaryName {
			kf.primary = key
		}
		if !containsKey(kf.all, key) {
			kf.all = append(kf.all, key)
		}
	}
	if kf.primary == nil {
		return keyFiles{}, resolved, fmt.Errorf("read keyring: no primary key file %q in %s", primaryName, dir)
	}
	sort.Slice(kf.all, func(i, j int) bool { return bytes.Compare(kf.all[i], kf.all[j]) < 0 })
	return kf, resolved, nil
}

// keyFileRead, when set (tests), is called after each key file is read, so
// a test can swap the Secret's files mid-read.
var keyFileRead func(name string)

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
// remove keys whose files are gone. It then checks that the ring holds
// exactly kf's keys with kf's primary, and returns an error if not, so the
// caller retries.
func applyKeys(kr *memberlist.Keyring, kf keyFiles) error {
	for _, k := range kf.all {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("install key: %w", err)
		}
	}
	if err := kr.UseKey(kf.primary); err != nil {
		return fmt.Errorf("use primary key: %w", err)
	}
	// A copy: GetKeys returns the ring's own slice, which RemoveKey shifts
	// in place, so ranging over it skips the key after each one removed.
	for _, k := range slices.Clone(kr.GetKeys()) {
		if !containsKey(kf.all, k) {
			if err := kr.RemoveKey(k); err != nil {
				return fmt.Errorf("remove key: %w", err)
			}
		}
	}
	if live := liveKeys(kr); !live.equal(kf) {
		return fmt.Errorf("keyring holds %s, the key files %s", live, kf)
	}
	return nil
}

// liveKeys is what kr decrypts with (all) and encrypts with (primary), as
// copies sorted like readKeyFiles' result.
func liveKeys(kr *memberlist.Keyring) keyFiles {
	kf := keyFiles{primary: kr.GetPrimaryKey(), all: slices.Clone(kr.GetKeys())}
	sort.Slice(kf.all, func(i, j int) bool { return bytes.Compare(kf.all[i], kf.all[j]) < 0 })
	return kf
}

// String names the keys by fingerprint, never by value.
func (kf keyFiles) String() string {
	fps := make([]string, len(kf.all))
	for i, k := range kf.all {
		fps[i] = fingerprint(k)
	}
	return fmt.Sprintf("%d keys [%s] with primary %s", len(kf.all), strings.Join(fps, " "), fingerprint(kf.primary))
}

// gossipKeyring is the keyring memberlist encrypts and decrypts with,
// changed only through apply. Its lock keeps a scrape (keys) from reading
// the ring's slice while RemoveKey shifts it.
//
// memberlist reads that slice for every packet without this lock, so a
// packet decrypted at the moment of a removal may miss a key still
// installed and be dropped as undecryptable, as if it were lost: a
// memberlist gap this lock cannot close.
type gossipKeyring struct {
	mu sync.Mutex
	kr *memberlist.Keyring
}

func (g *gossipKeyring) apply(kf keyFiles) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return applyKeys(g.kr, kf)
}

// keys returns a copy of the live ring.
func (g *gossipKeyring) keys() keyFiles {
	g.mu.Lock()
	defer g.mu.Unlock()
	return liveKeys(g.kr)
}

// fingerprint names a key without revealing it: 8 hex digits of its SHA-256.
func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}
