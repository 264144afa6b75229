package discovery

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Identity
		err  bool
	}{
		{name: "web-0", want: Identity{Set: "web", Ordinal: 0}},
		{name: "web-12", want: Identity{Set: "web", Ordinal: 12}},
		{name: "my-db-3", want: Identity{Set: "my-db", Ordinal: 3}},
		{name: "web", err: true},
		{name: "web-", err: true},
		{name: "-1", err: true},
		{name: "web-01", err: true},
		{name: "web-+1", err: true},
		{name: "web-x", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseIdentity(tc.name)
			if tc.err {
				if !errors.Is(err, ErrNoOrdinal) {
					t.Fatalf("ParseIdentity(%q) = %+v, %v; want ErrNoOrdinal", tc.name, got, err)
				}
				return
			}
			if err != nil || got != tc.want || got.Name() != tc.name {
				t.Fatalf("ParseIdentity(%q) = %+v, %v; want %+v", tc.name, got, err, tc.want)
			}
		})
	}
}

func TestExpectedSet(t *testing.T) {
	s := ExpectedSet{Set: "web", Start: 1, N: 3}
	if diff := cmp.Diff([]string{"web-1", "web-2", "web-3"}, s.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	for name, want := range map[string]bool{
		"web-0": false, "web-1": true, "web-3": true, "web-4": false, "db-1": false, "web-01": false,
	} {
		if _, got := s.Contains(name); got != want {
			t.Errorf("Contains(%q) = %v, want %v", name, got, want)
		}
	}
}
