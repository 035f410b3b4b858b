package projects

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/lexicons"
)

// lexProp is the part of a lexicon property these record types use.
type lexProp struct {
	Type         string
	Format       string
	Ref          string
	MinLength    *int
	MaxLength    *int
	MinGraphemes *int
	MaxGraphemes *int
}

type lexRecord struct {
	ID   string
	Defs struct {
		Main struct {
			Type   string
			Key    string
			Record struct {
				Required   []string
				Properties map[string]lexProp
			}
		}
	}
}

func readLexicon(t *testing.T, path string) lexRecord {
	t.Helper()
	b, err := fs.ReadFile(lexicons.FS, path)
	if err != nil {
		t.Fatal(err)
	}
	var doc lexRecord
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// validate checks rec against the lexicon the way a PDS would for these
// two simple schemas (strings with length limits and formats, a strongRef).
// indigo's atproto/lexicon validator needs a module not in go.sum
// (go-ipld-cbor), so this independent reading of the JSON stands in.
func (l lexRecord) validate(rec map[string]any) error {
	if rec["$type"] != l.ID {
		return fmt.Errorf("$type %v, want %s", rec["$type"], l.ID)
	}
	for _, name := range l.Defs.Main.Record.Required {
		if _, ok := rec[name]; !ok {
			return fmt.Errorf("%s is required", name)
		}
	}
	for name, p := range l.Defs.Main.Record.Properties {
		v, ok := rec[name]
		if !ok {
			continue
		}
		switch p.Type {
		case "string":
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s is not a string", name)
			}
			g := uniseg.GraphemeClusterCount(s)
			switch {
			case p.MinLength != nil && len(s) < *p.MinLength, p.MaxLength != nil && len(s) > *p.MaxLength:
				return fmt.Errorf("%s: %d bytes out of range", name, len(s))
			case p.MinGraphemes != nil && g < *p.MinGraphemes, p.MaxGraphemes != nil && g > *p.MaxGraphemes:
				return fmt.Errorf("%s: %d graphemes out of range", name, g)
			}
			if p.Format == "datetime" {
				if _, err := syntax.ParseDatetime(s); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
		case "ref":
			if p.Ref != "com.atproto.repo.strongRef" {
				return fmt.Errorf("%s: unexpected ref %s", name, p.Ref)
			}
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s is not an object", name)
			}
			u, _ := m["uri"].(string)
			c, _ := m["cid"].(string)
			if _, err := syntax.ParseATURI(u); err != nil {
				return fmt.Errorf("%s.uri: %w", name, err)
			}
			if _, err := syntax.ParseCID(c); err != nil {
				return fmt.Errorf("%s.cid: %w", name, err)
			}
		default:
			return fmt.Errorf("%s: unexpected type %s", name, p.Type)
		}
	}
	return nil
}

// The Go limits are the lexicons' limits.
func TestGoLimitsMirrorTheLexicons(t *testing.T) {
	pl, cl := readLexicon(t, "dev/skydm/project.json"), readLexicon(t, "dev/skydm/changeRequest.json")
	if pl.ID != DefaultAuthority+"."+ProjectRecordName || cl.ID != DefaultAuthority+"."+ChangeRequestRecordName {
		t.Errorf("lexicon ids %s %s", pl.ID, cl.ID)
	}
	if pl.Defs.Main.Key != "tid" || cl.Defs.Main.Key != "tid" {
		t.Errorf("record keys %s %s, want tid", pl.Defs.Main.Key, cl.Defs.Main.Key)
	}
	p, c := pl.Defs.Main.Record.Properties, cl.Defs.Main.Record.Properties
	for _, tc := range []struct {
		name     string
		p        lexProp
		f        field
		required bool
	}{
		{"project.name", p["name"], fieldName, true},
		{"project.description", p["description"], fieldDescription, false},
		{"changeRequest.title", c["title"], fieldTitle, true},
		{"changeRequest.body", c["body"], fieldBody, true},
	} {
		if tc.p.MaxGraphemes == nil || *tc.p.MaxGraphemes != tc.f.maxGraphemes {
			t.Errorf("%s: maxGraphemes lexicon %v, Go %d", tc.name, tc.p.MaxGraphemes, tc.f.maxGraphemes)
		}
		if tc.p.MaxLength == nil || *tc.p.MaxLength != tc.f.maxBytes {
			t.Errorf("%s: maxLength lexicon %v, Go %d", tc.name, tc.p.MaxLength, tc.f.maxBytes)
		}
		lexRequired := tc.p.MinGraphemes != nil && *tc.p.MinGraphemes == 1
		if lexRequired != tc.f.required {
			t.Errorf("%s: minGraphemes 1 in lexicon %v, required in Go %v", tc.name, lexRequired, tc.f.required)
		}
	}
}

// Records the Service writes are valid under the lexicons, and input the
// lexicon refuses is refused by Go validation too.
func TestRecordsValidateAgainstTheLexicons(t *testing.T) {
	pl, cl := readLexicon(t, "dev/skydm/project.json"), readLexicon(t, "dev/skydm/changeRequest.json")
	f := newFixture(t, nil)
	p := f.project(t, bob, strings.Repeat("n", ProjectNameMaxGraphemes))
	if err := pl.validate(f.pds.record(p.URI)); err != nil {
		t.Errorf("project record: %v", err)
	}
	c, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), alice, p.URI.String(),
		ChangeRequestInput{Title: strings.Repeat("t", TitleMaxGraphemes), Body: strings.Repeat("b", BodyMaxGraphemes)})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.validate(f.pds.record(c.URI)); err != nil {
		t.Errorf("change request record: %v", err)
	}

	family := "👩‍👩‍👧‍👦"
	for _, tc := range []struct {
		name  string
		title string
		body  string
	}{
		{"title too many graphemes", strings.Repeat("t", TitleMaxGraphemes+1), "b"},
		{"title too many bytes", strings.Repeat(family, TitleMaxBytes/len(family)+1), "b"},
		{"empty body", "t", ""},
		{"body too many graphemes", "t", strings.Repeat("b", BodyMaxGraphemes+1)},
		{"body too many bytes", "t", strings.Repeat(family, BodyMaxBytes/len(family)+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := map[string]any{"$type": "dev.skydm.changeRequest", "title": tc.title, "body": tc.body,
				"project":   map[string]any{"uri": p.URI.String(), "cid": p.CID},
				"createdAt": "2026-06-01T12:00:00.000Z"}
			lexErr := cl.validate(rec)
			_, goErr := ValidateChangeRequest(ChangeRequestInput{Title: tc.title, Body: tc.body})
			if lexErr == nil || goErr == nil {
				t.Errorf("lexicon: %v; Go: %v — both must refuse", lexErr, goErr)
			}
		})
	}
}
