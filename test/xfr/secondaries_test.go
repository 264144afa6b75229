package xfr

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// secondary is one secondary server's way of being configured and run.
type secondary struct {
	name string
	bin  string // absolute path of the daemon
	conf *template.Template
	// args runs the daemon in the foreground with config file conf,
	// logging to stderr.
	args func(conf string) []string
}

// secondaryConfig is what a configuration template is filled with.
type secondaryConfig struct {
	Dir         string // a directory of the secondary's own
	Port        int    // where it answers, on 127.0.0.1
	PrimaryPort int    // peerdns's DNS port on 127.0.0.1
	KeyName     string // without the trailing dot
	Algorithm   string // "hmac-sha256"
	Secret      string
	Zones       []string // fully qualified
}

func (c secondaryConfig) Bare(zone string) string { return strings.TrimSuffix(zone, ".") }

var secondaries = []secondary{
	{
		name: "knot", bin: "/usr/sbin/knotd",
		args: func(conf string) []string { return []string{"-c", conf} },
		conf: template.Must(template.New("knot").Parse(`server:
    listen: 127.0.0.1@{{.Port}}
    rundir: "{{.Dir}}"
log:
  - target: stderr
    any: info
database:
    storage: "{{.Dir}}/db"
control:
    listen: "{{.Dir}}/knot.sock"
key:
  - id: {{.KeyName}}
    algorithm: {{.Algorithm}}
    secret: {{.Secret}}
remote:
  - id: peerdns
    address: 127.0.0.1@{{.PrimaryPort}}
    key: {{.KeyName}}
acl:
  - id: notify-from-peerdns
    address: 127.0.0.1
    key: {{.KeyName}}
    action: notify
template:
  - id: default
    storage: "{{.Dir}}/zones"
    zonefile-load: none
    zonefile-sync: -1
    journal-content: all
zone:
{{- range .Zones}}
  - domain: {{.}}
    master: peerdns
    acl: notify-from-peerdns
{{- end}}
`)),
	},
	{
		name: "nsd", bin: "/usr/sbin/nsd",
		args: func(conf string) []string { return []string{"-d", "-c", conf} },
		conf: template.Must(template.New("nsd").Parse(`server:
    ip-address: 127.0.0.1
    port: {{.Port}}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{{.Dir}}"
    database: ""
    zonelistfile: "{{.Dir}}/zone.list"
    xfrdfile: "{{.Dir}}/xfrd.state"
    xfrdir: "{{.Dir}}"
    pidfile: "{{.Dir}}/nsd.pid"
    verbosity: 2
remote-control:
    control-enable: no
key:
    name: "{{.KeyName}}"
    algorithm: {{.Algorithm}}
    secret: "{{.Secret}}"
{{- $c := .}}
{{- range .Zones}}
zone:
    name: "{{.}}"
    zonefile: "{{$c.Bare .}}.zone"
    request-xfr: 127.0.0.1@{{$c.PrimaryPort}} {{$c.KeyName}}
    allow-notify: 127.0.0.1 {{$c.KeyName}}
{{- end}}
`)),
	},
	{
		name: "bind", bin: "/usr/sbin/named",
		args: func(conf string) []string { return []string{"-g", "-c", conf} },
		conf: template.Must(template.New("bind").Parse(`options {
    directory "{{.Dir}}";
    listen-on port {{.Port}} { 127.0.0.1; };
    listen-on-v6 { none; };
    pid-file "{{.Dir}}/named.pid";
    session-keyfile "{{.Dir}}/session.key";
    managed-keys-directory "{{.Dir}}";
    recursion no;
    notify no;
    dnssec-validation no;
};
controls { };
key "{{.KeyName}}" { algorithm {{.Algorithm}}; secret "{{.Secret}}"; };
{{- $c := .}}
{{- range .Zones}}
zone "{{$c.Bare .}}" {
    type secondary;
    primaries { 127.0.0.1 port {{$c.PrimaryPort}} key "{{$c.KeyName}}"; };
    file "{{$c.Bare .}}.db";
};
{{- end}}
`)),
	},
}

// writeConfig writes s's configuration for c into c.Dir and returns its
// path.
func (s *secondary) writeConfig(c secondaryConfig) (string, error) {
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "db"), filepath.Join(c.Dir, "zones")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	path := filepath.Join(c.Dir, s.name+".conf")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := s.conf.Execute(f, c); err != nil {
		return "", fmt.Errorf("%s config: %w", s.name, err)
	}
	return path, f.Close()
}
