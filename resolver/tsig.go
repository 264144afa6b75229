package resolver

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/miekg/dns"
)

// TSIGKey is a TSIG key (RFC 8945): transfer requests must be signed with
// it, and every message of the reply is signed back.
type TSIGKey struct {
	// Name is the key's name, a domain name ("xfr-key.").
	Name string
	// Algorithm is the HMAC algorithm's name: "hmac-sha256." (as
	// tsig-keygen writes by default), "hmac-sha384.", "hmac-sha512.",
	// "hmac-sha224." or "hmac-sha1.".
	Algorithm string
	// Secret is the key's secret, in base64.
	Secret string
}

// tsigFudge is the time error, in seconds, a signature of ours permits
// (RFC 8945 §10 recommends 300).
const tsigFudge = 300

// maxKeyFile bounds the key file read: a BIND key statement is under 200
// bytes.
const maxKeyFile = 64 << 10

// ReadTSIGKey reads the key file path, in the format BIND's tsig-keygen
// writes:
//
//	key "name" {
//		algorithm hmac-sha256;
//		secret "base64";
//	};
//
// One key statement; comments (#, //, /* */) are ignored.
func ReadTSIGKey(path string) (*TSIGKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a key file", path, maxKeyFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseTSIGKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParseTSIGKey parses one BIND key statement (see ReadTSIGKey).
func ParseTSIGKey(text string) (*TSIGKey, error) {
	toks, err := keyTokens(text)
	if err != nil {
		return nil, err
	}
	next := func() string {
		if len(toks) == 0 {
			return ""
		}
		t := toks[0]
		toks = toks[1:]
		return t
	}
	expect := func(want string) error {
		if got := next(); got != want {
			return fmt.Errorf("key statement: %q where %q belongs", got, want)
		}
		return nil
	}
	if err := expect("key"); err != nil {
		return nil, err
	}
	k := &TSIGKey{Name: strings.Trim(next(), `"`)}
	if err := expect("{"); err != nil {
		return nil, err
	}
	for {
		switch field := next(); field {
		case "}":
			if t := next(); t != ";" && t != "" {
				return nil, fmt.Errorf("key statement: %q after the closing brace", t)
			}
			if len(toks) > 0 {
				return nil, errors.New("more than one key statement")
			}
			return k.validate()
		case "algorithm", "secret":
			v := strings.Trim(next(), `"`)
			if err := expect(";"); err != nil {
				return nil, err
			}
			if field == "algorithm" {
				k.Algorithm = v
			} else {
				k.Secret = v
			}
		case "":
			return nil, errors.New("key statement: no closing brace")
		default:
			return nil, fmt.Errorf("key statement: unknown field %q", field)
		}
	}
}

// keyTokens splits a key statement into words, quoted strings, braces and
// semicolons, without comments.
func keyTokens(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '#' || strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated comment")
			}
			i += end + 4
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, string(c))
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, errors.New("unterminated string")
			}
			toks = append(toks, s[i:i+end+2])
			i += end + 2
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune("{};\"", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

func (k *TSIGKey) validate() (*TSIGKey, error) {
	if _, ok := dns.IsDomainName(k.Name); !ok || k.Name == "" {
		return nil, fmt.Errorf("key name %q: not a domain name", k.Name)
	}
	k.Name = dns.CanonicalName(k.Name)
	k.Algorithm = dns.CanonicalName(k.Algorithm)
	switch k.Algorithm {
	case dns.HmacSHA1, dns.HmacSHA224, dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512:
	case ".":
		return nil, errors.New("key statement: no algorithm")
	default:
		return nil, fmt.Errorf("algorithm %q: not an HMAC algorithm of RFC 8945", k.Algorithm)
	}
	if raw, err := base64.StdEncoding.DecodeString(k.Secret); err != nil || len(raw) == 0 {
		return nil, errors.New("secret: not base64")
	}
	return k, nil
}

// tsigCheck is the outcome of checking a request's signature.
type tsigCheck struct {
	rcode  int    // 0: accepted
	err    uint16 // the TSIG error (RFC 8945 §5.2) when rcode is NOTAUTH
	reason string // the refusal's reason label
	mac    string // the request's MAC, which the first reply signs over
}

// checkTSIG verifies request q (wire form m) against key, which may be nil
// (no key configured). The library verifies the MAC and the time.
func checkTSIG(q []byte, m *dns.Msg, key *TSIGKey) tsigCheck {
	ts := m.IsTsig()
	switch {
	case ts == nil && key == nil:
		return tsigCheck{}
	case ts == nil:
		return tsigCheck{rcode: dns.RcodeRefused, reason: "unsigned"}
	case key == nil || dns.CanonicalName(ts.Hdr.Name) != key.Name || dns.CanonicalName(ts.Algorithm) != key.Algorithm:
		return tsigCheck{rcode: dns.RcodeNotAuth, err: dns.RcodeBadKey, reason: "bad_key"}
	}
	switch err := dns.TsigVerify(q, key.Secret, "", false); {
	case err == nil:
		return tsigCheck{mac: ts.MAC}
	case errors.Is(err, dns.ErrTime):
		return tsigCheck{rcode: dns.RcodeNotAuth, err: dns.RcodeBadTime, reason: "bad_time"}
	default:
		return tsigCheck{rcode: dns.RcodeNotAuth, err: dns.RcodeBadSig, reason: "bad_signature"}
	}
}

// tsigSigner signs the messages of one reply: the first over the request's
// MAC, each later one over the MAC before it with the timers only (RFC 8945
// §5.3.1), as miekg/dns's Transfer verifies them.
type tsigSigner struct {
	key  *TSIGKey
	mac  string
	next bool
	// err, when BADTIME, makes the signature a time error (RFC 8945
	// §5.2.3): the request's time signed (timeSigned), ours in other data.
	err        uint16
	timeSigned int64
}

// pack packs m, signed when there is a key.
func (s *tsigSigner) pack(m *dns.Msg) ([]byte, error) {
	if s == nil || s.key == nil {
		return m.Pack()
	}
	now := time.Now().Unix()
	if s.err == dns.RcodeBadTime {
		m.SetTsig(s.key.Name, s.key.Algorithm, tsigFudge, s.timeSigned)
		ts := m.Extra[len(m.Extra)-1].(*dns.TSIG)
		ts.Error, ts.OtherLen, ts.OtherData = s.err, 6, fmt.Sprintf("%012x", now)
	} else {
		m.SetTsig(s.key.Name, s.key.Algorithm, tsigFudge, now)
	}
	b, mac, err := dns.TsigGenerate(m, s.key.Secret, s.mac, s.next)
	if err != nil {
		return nil, err
	}
	s.mac, s.next = mac, true
	return b, nil
}
