package charts_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A value is documented by a comment block right above its key whose first
// line starts with "# --"; the block runs to the key. "# -- (type) text"
// overrides the type the table shows (for values whose default is null).
// A comment on a key documents the whole value, maps included; a map key
// without one must have every key below it documented.
const docMarker = "# --"

var chartsWithValues = []string{peerdnsChart, peeragentChart}

// valueDoc is one row of a chart's values table.
type valueDoc struct {
	key  string // dotted path: image.tag
	typ  string
	def  string // the default, as JSON
	text string
}

// parseValues reads a chart's values.yaml and returns its documented values,
// in file order, the keys left undocumented, and every key path it has.
func parseValues(t *testing.T, chart string) (docs []valueDoc, undocumented, paths []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatalf("%s/values.yaml: %v", chart, err)
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s/values.yaml is not a map", chart)
	}
	var walk func(prefix string, m *yaml.Node, documented bool)
	walk = func(prefix string, m *yaml.Node, documented bool) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			path := prefix + k.Value
			paths = append(paths, path)
			text, typ, ok := docComment(k.HeadComment)
			switch {
			case ok:
				var val any
				if err := v.Decode(&val); err != nil {
					t.Fatalf("%s/values.yaml: %s: %v", chart, path, err)
				}
				def, err := json.Marshal(val)
				if err != nil {
					t.Fatalf("%s/values.yaml: %s: %v", chart, path, err)
				}
				if typ == "" {
					typ = yamlType(v)
				}
				docs = append(docs, valueDoc{key: path, typ: typ, def: string(def), text: text})
			case documented:
			case v.Kind == yaml.MappingNode && len(v.Content) > 0:
			default:
				undocumented = append(undocumented, path)
			}
			if v.Kind == yaml.MappingNode {
				walk(path+".", v, documented || ok)
			}
		}
	}
	walk("", root.Content[0], false)
	return docs, undocumented, paths
}

// docComment extracts the "# --" block from a key's head comment.
func docComment(head string) (text, typ string, ok bool) {
	lines := strings.Split(head, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, docMarker) {
			start = i
		}
	}
	if start < 0 {
		return "", "", false
	}
	var words []string
	for i, l := range lines[start:] {
		if i == 0 {
			l = strings.TrimPrefix(l, docMarker)
		} else {
			l = strings.TrimPrefix(l, "#")
		}
		words = append(words, strings.TrimSpace(l))
	}
	text = strings.TrimSpace(strings.Join(words, " "))
	if rest, found := strings.CutPrefix(text, "("); found {
		if typ, after, found := strings.Cut(rest, ")"); found {
			return strings.TrimSpace(after), typ, true
		}
	}
	return text, "", true
}

func yamlType(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "object"
	}
	switch n.Tag {
	case "!!int":
		return "int"
	case "!!bool":
		return "bool"
	case "!!float":
		return "float"
	case "!!null":
		return "null"
	}
	return "string"
}

// valuesTable renders the Markdown table the README carries.
func valuesTable(docs []valueDoc) string {
	var b strings.Builder
	b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
	for _, d := range docs {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", d.key, d.typ, d.def, strings.ReplaceAll(d.text, "|", `\|`))
	}
	return b.String()
}

const (
	tableBegin = "<!-- values table: generated from values.yaml by `go test ./charts -run TestREADME -update`; do not edit -->\n"
	tableEnd   = "<!-- end of values table -->\n"
)

// TestREADME checks that each chart's README carries the values table
// generated from its values.yaml; -update rewrites it.
func TestREADME(t *testing.T) {
	for _, chart := range chartsWithValues {
		t.Run(chart, func(t *testing.T) {
			docs, _, _ := parseValues(t, chart)
			path := filepath.Join(chart, "README.md")
			readme, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			before, rest, ok1 := bytes.Cut(readme, []byte(tableBegin))
			_, after, ok2 := bytes.Cut(rest, []byte(tableEnd))
			if !ok1 || !ok2 {
				t.Fatalf("%s lacks the values table markers:\n%s%s", path, tableBegin, tableEnd)
			}
			want := string(before) + tableBegin + valuesTable(docs) + tableEnd + string(after)
			if want == string(readme) {
				return
			}
			if *update {
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Errorf("%s's values table is stale: run `go test ./charts -run TestREADME -update`", path)
		})
	}
}

// TestValuesDocumented checks that every value has a "# --" comment, on
// itself or on a map above it.
func TestValuesDocumented(t *testing.T) {
	for _, chart := range chartsWithValues {
		t.Run(chart, func(t *testing.T) {
			docs, undocumented, _ := parseValues(t, chart)
			for _, k := range undocumented {
				t.Errorf("%s/values.yaml: %s has no %q comment", chart, k, docMarker)
			}
			for _, d := range docs {
				if len(d.text) < 10 {
					t.Errorf("%s/values.yaml: %s: %q says too little", chart, d.key, d.text)
				}
			}
		})
	}
}

// TestSchemaMatchesValues checks the committed values.schema.json against
// values.yaml both ways: every documented value has a schema property (a
// strict schema would otherwise reject it once set), and every schema
// property is a value (a property without one is a leftover).
func TestSchemaMatchesValues(t *testing.T) {
	for _, chart := range chartsWithValues {
		t.Run(chart, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(chart, "values.schema.json"))
			if err != nil {
				t.Fatal(err)
			}
			var schema map[string]any
			if err := json.Unmarshal(data, &schema); err != nil {
				t.Fatalf("values.schema.json: %v", err)
			}
			if schema["additionalProperties"] != false {
				t.Error("values.schema.json allows unknown top-level values: a misspelt value would be ignored silently")
			}
			docs, _, paths := parseValues(t, chart)
			for _, d := range docs {
				if schemaAt(schema, d.key) == nil {
					t.Errorf("values.schema.json has no property for %s", d.key)
				}
			}
			have := map[string]bool{}
			for _, p := range paths {
				have[p] = true
			}
			for _, p := range schemaPaths(schema, schema, "") {
				// Keys a parent chart sets (an umbrella's `global`, and
				// `enabled` for a dependency's condition).
				if p != "global" && p != "enabled" && !have[p] {
					t.Errorf("values.schema.json describes %s, which values.yaml does not have", p)
				}
			}
		})
	}
}

// schemaAt returns the schema of the value at the dotted path, following
// local $refs, or nil.
func schemaAt(root map[string]any, path string) map[string]any {
	node := root
	for _, part := range strings.Split(path, ".") {
		props, _ := resolveRef(root, node)["properties"].(map[string]any)
		next, _ := props[part].(map[string]any)
		if next == nil {
			return nil
		}
		node = next
	}
	return resolveRef(root, node)
}

func resolveRef(root, node map[string]any) map[string]any {
	ref, _ := node["$ref"].(string)
	name, ok := strings.CutPrefix(ref, "#/definitions/")
	if !ok {
		return node
	}
	defs, _ := root["definitions"].(map[string]any)
	def, _ := defs[name].(map[string]any)
	return def
}

// schemaPaths lists the dotted paths of every property node describes, sorted.
func schemaPaths(root, node map[string]any, prefix string) []string {
	props, _ := resolveRef(root, node)["properties"].(map[string]any)
	var paths []string
	for name, p := range props {
		paths = append(paths, prefix+name)
		if child, ok := p.(map[string]any); ok {
			paths = append(paths, schemaPaths(root, child, prefix+name+".")...)
		}
	}
	sort.Strings(paths)
	return paths
}
